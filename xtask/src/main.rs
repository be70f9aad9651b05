//! `cargo xtask <command>`: the project's jobs.
//!
//! - `train-mnist`: trains a lecture model on MNIST and reports test accuracy.
//! - `summary --model NAME`: prints a lecture model's summary.
//! - `bench-kernels`: times the CPU or wgpu kernels at the MNIST shapes and prints a GFLOP/s table.
//! - `feature-maps`: PNG grids of a model's first filters and of one image's feature maps.
//! - `predict`: classifies a PNG of a digit with a saved model.
//! - `profile-step`: milliseconds per CPU training step, kernel by kernel.
//! - `gpu-table`: the lecture's CPU-vs-GPU training-time table on this machine.
//! - `gpu-check`: the prepared GPU check: kernels against the CPU, GEMM rate, model5 training.
//! - `compare-backends`: the same training on the CPU and on wgpu, and the accuracy gap.
//! - `import-loops`: fails where a crate's modules import each other in a loop.
//! - `allreduce-bench`: under `mpirun`, the all-reduce's cost per training step.
//! - `bucket-bench`: under `mpirun`, a step with one fused all-reduce against gradient buckets.

mod args;
mod bench;
mod bucket_bench;
mod compare;
mod confusion;
mod data;
#[cfg(feature = "wgpu")]
mod gpu_check;
mod gpu_table;
mod import_loops;
mod maps;
mod predict;
mod profile;
mod ranks;
mod train;

const USAGE: &str = "usage: cargo xtask <command> [flags]
       cargo xtask-gpu <command> [flags]   (the same, with the wgpu backend compiled in: needed by
                                            --backend wgpu, gpu-table, gpu-check, compare-backends)

commands:
  train-mnist    [--model model1|model4|model5|model6] [--functional] [--epochs N] [--batch-size N]
                 [--optimizer sgd|adam|adam-cosine] [--lr F] [--backend cpu|wgpu|best] [--data DIR]
                 [--dataset mnist|fashion] [--seed N] [--verbose 0|1|2] [--normalize]
                 [--report FILE.json] [--validate] [--min-accuracy F]
                 [--save FILE.safetensors] [--save-weights FILE.safetensors]
                 [--checkpoint FILE.safetensors] [--resume FILE.safetensors]
                 [--early-stopping PATIENCE] [--reduce-lr-on-plateau] [--csv FILE.csv]
                 [--plot FILE.png|svg] [--history FILE.json|csv]
                 [--distributed [--fail-at RANK:STEP] [--bucket-kb N|fused]] [--adapter N]
                 (--distributed: under mpirun/srun, built with --features mpi)
  summary        [--model model1|model4|model5|model6] [--functional]
  bench-kernels  [--backend cpu|wgpu] [--batch N] [--repeats N] [--threads N]
                 [--filter TEXT] [--square 1024,4096]
  feature-maps   [--model model4|model5] [--image N] [--weights FILE] [--out DIR] [--data DIR]
                 [--normalize] [--seed N]
  predict        --weights FILE [--normalize] IMAGE.png
  confusion      --weights FILE [--normalize] [--png FILE.png] [--data DIR] [--dataset mnist|fashion]
  profile-step   [--model model1|model4|model5] [--steps N] [--batch-size N] [--data DIR]
                 [--seed N]
  gpu-table      [--epochs N] [--sizes 50000,250000] [--backends cpu,wgpu] [--batch-size N]
                 [--data DIR] [--seed N]
  gpu-check      [--epochs N] [--batch-sizes 128,1024] [--squares 1024,4096]
                 [--train-images N] [--batch N] [--data DIR] [--seed N]
  compare-backends [--model NAME] [--epochs N] [--batch-size N] [--train-images N]
                 [--normalize] [--seed N] [--max-gap POINTS] [--data DIR]
  import-loops   SRC_DIR...  (e.g. crates/kernels-cpu/src crates/kernels-wgpu/src)
  allreduce-bench [--repeats N]  (under mpirun, built with --features mpi)
  bucket-bench   [--models model4,model5] [--buckets fused,0,64,256,1024] [--rounds N] [--steps N]
                 [--batch-size N] [--data DIR] [--seed N]  (under mpirun, built with --features mpi)";

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
        "feature-maps" => maps::feature_maps(rest),
        "predict" => predict::predict(rest),
        "confusion" => confusion::confusion(rest),
        "gpu-table" => gpu_table::gpu_table(rest),
        #[cfg(feature = "wgpu")]
        "gpu-check" => gpu_check::gpu_check(rest),
        #[cfg(not(feature = "wgpu"))]
        "gpu-check" => Err("gpu-check needs the wgpu backend".into()),
        "compare-backends" => compare::compare_backends(rest),
        "profile-step" => profile::profile_step(rest),
        "import-loops" => import_loops::import_loops(rest),
        "allreduce-bench" => ranks::allreduce_bench(rest),
        "bucket-bench" => bucket_bench::bucket_bench(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    if let Err(mut e) = result {
        if !cfg!(feature = "wgpu") && e.contains("wgpu") {
            e += "\n(`cargo xtask` is built without the GPU backend; `cargo xtask-gpu ...` runs the same \
                  command with it)";
        }
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
