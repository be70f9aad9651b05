//! `cargo xtask <command>`: the project's jobs.
//!
//! - `train-mnist`: trains a lecture model on MNIST and reports test accuracy.
//! - `summary --model NAME`: prints a lecture model's summary.
//! - `bench-kernels`: times the CPU or wgpu kernels at the MNIST shapes and prints a GFLOP/s table.

mod args;
mod bench;
mod train;

const USAGE: &str = "usage: cargo xtask <command> [flags]

commands:
  train-mnist    [--model model1|model4|model5] [--epochs N] [--batch-size N]
                 [--optimizer sgd|adam] [--lr F] [--backend cpu|wgpu|best] [--data DIR]
                 [--dataset mnist|fashion] [--seed N] [--verbose 0|1|2] [--normalize]
                 [--report FILE.json] [--validate] [--min-accuracy F]
                 [--save FILE.safetensors] [--checkpoint FILE.safetensors]
                 [--resume FILE.safetensors]
  summary        [--model model1|model4|model5]
  bench-kernels  [--backend cpu|wgpu] [--batch N] [--repeats N] [--threads N]
                 [--filter TEXT] [--square 1024,4096]";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let result = match command.as_str() {
        "train-mnist" => train::train_mnist(rest),
        "summary" => train::summary(rest),
        "bench-kernels" => bench::bench_kernels(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
