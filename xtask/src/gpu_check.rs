//! `cargo xtask gpu-check`: the one prepared check for a machine with a GPU. It
//! 1. runs every kernel workload of the MNIST models (`benches`: dense products, convolutions
//!    and their gradients, pooling, the fused conv-pool) on the wgpu backend and on the CPU
//!    backend, with the same inputs, and fails if any result differs by more than 1e-4
//!    (largest difference over the largest magnitude of the CPU's result);
//! 2. times square matrix products on the GPU (TFLOP/s);
//! 3. trains model5 with the lecture's settings on the GPU at each batch size and reports
//!    milliseconds per step and seconds per epoch, both from the fastest epoch after the first
//!    (which also compiles the pipelines);
//!
//! then prints one markdown table. `--train-images`, `--squares` and `--batch` shrink it for
//! a software adapter (CI runs it on lavapipe).

use std::time::Instant;

use benches::{conv_pool_workloads, matmul_workloads, square_matmul, Workload};
use kernels_cpu::CpuBackend;
use kernels_wgpu::WgpuBackend;
use nn::{Device, FitOptions};
use tensor::backend::prelude::*;
use tensor::Backend;

use crate::args::Args;
use crate::data;

/// Largest normalized difference a GPU kernel may show against the CPU's result.
const TOLERANCE: f64 = 1e-4;

pub fn gpu_check(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(
        argv,
        &["epochs", "batch-sizes", "squares", "train-images", "batch", "data", "seed"],
        &[],
    )?;
    let epochs: usize = args.get("epochs", 3)?;
    // Every flag is parsed before the first kernel runs, so a typo fails at once.
    let train_images: Option<usize> = args.optional("train-images")?;
    let kernel_batch: usize = args.get("batch", 128)?;
    let seed: u64 = args.get("seed", 1)?;
    let list = |name: &str, default: &str| -> Result<Vec<usize>, String> {
        let values: Vec<usize> = args.list(name, default)?;
        if values.contains(&0) {
            return Err(format!("--{name}: '0' is not a positive number"));
        }
        Ok(values)
    };
    let batch_sizes = list("batch-sizes", "128,1024")?;
    let squares = list("squares", "1024,4096")?;
    if epochs == 0 || kernel_batch == 0 {
        return Err("--epochs and --batch must be positive".into());
    }
    // The data first, so that a missing file or a bad --train-images fails before any work.
    let mnist = data::load(
        args.value("data"),
        nn::datasets::DatasetKind::Mnist,
        nn::zoo::input_shape("model5"),
        false,
    )?;
    let (x, y) = mnist.first_train(train_images)?;
    let images = x.len();
    let gpu = WgpuBackend::new().map_err(|e| format!("no wgpu adapter: {e}"))?;
    let cpu = CpuBackend::new();
    println!("device: {}", gpu.name());
    let mut rows = Vec::new();

    // 1. Kernels against the CPU.
    let (count, worst, worst_name) = compare_kernels(&gpu, &cpu, kernel_batch)?;
    let verdict = if worst <= TOLERANCE { "all within" } else { "FAILS" };
    rows.push(format!(
        "| {count} kernels vs CPU at batch {kernel_batch}: largest difference | {worst:.1e} ({worst_name}; {verdict} {TOLERANCE:.0e}) |"
    ));
    if worst > TOLERANCE {
        print_table(&rows);
        return Err(format!("{worst_name} differs from the CPU by {worst:.1e} (more than {TOLERANCE:.0e})"));
    }

    // 2. Square products.
    for &n in &squares {
        let w = square_matmul(&gpu, n).map_err(|e| e.to_string())?;
        let seconds = fastest(&w, &gpu, 5)?;
        let rate = w.flops / seconds;
        let rate = if rate >= 1e12 {
            format!("{:.1} TFLOP/s", rate / 1e12)
        } else {
            format!("{:.1} GFLOP/s", rate / 1e9)
        };
        rows.push(format!("| matmul {n}^3 | {rate} ({:.3} ms) |", seconds * 1e3));
    }

    // 3. model5 training.
    let device = Device::new(gpu.clone());
    for &batch in &batch_sizes {
        let mut model = data::lecture_model("model5", &device, seed)?;
        let fit = FitOptions::new().epochs(epochs).batch_size(batch).verbose(0).seed(seed);
        let history = model.fit(&x, &y, &fit).map_err(|e| e.to_string())?;
        let seconds = &history.epoch_seconds;
        let steady = seconds.iter().skip(1).copied().fold(f64::INFINITY, f64::min);
        let (epoch, which) = if steady.is_finite() {
            (steady, "fastest after the first")
        } else {
            (seconds[0], "the only one")
        };
        let steps = images.div_ceil(batch);
        let scores = model.evaluate(&mnist.x_test, &mnist.y_test, 1024).map_err(|e| e.to_string())?;
        let accuracy = scores.get("accuracy").copied().unwrap_or(f32::NAN);
        rows.push(format!(
            "| model5, batch {batch}, {images} images, {epochs} epoch(s) | {:.2} ms/step, {epoch:.3} s/epoch ({which}); test accuracy {:.4} |",
            epoch / steps as f64 * 1e3,
            accuracy
        ));
    }
    print_table(&rows);
    Ok(())
}

fn print_table(rows: &[String]) {
    println!("\n| check | result |\n|---|---|");
    for row in rows {
        println!("{row}");
    }
}

/// Runs every MNIST-shape workload on both backends (the same deterministic inputs) and
/// returns how many there were and the largest normalized difference, with its workload.
fn compare_kernels(
    gpu: &WgpuBackend,
    cpu: &CpuBackend,
    batch: usize,
) -> Result<(usize, f64, String), String> {
    let build = |b: &dyn Backend| -> Result<Vec<Workload>, String> {
        let mut w = matmul_workloads(b, batch).map_err(|e| e.to_string())?;
        w.extend(conv_pool_workloads(b, batch).map_err(|e| e.to_string())?);
        Ok(w)
    };
    let (on_gpu, on_cpu) = (build(gpu)?, build(cpu)?);
    let mut worst = (0.0f64, String::new());
    for (g, c) in on_gpu.iter().zip(&on_cpu) {
        let got = gpu.download(&g.run(gpu).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let want = cpu.download(&c.run(cpu).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        if got.len() != want.len() {
            return Err(format!("{}: {} values on the GPU, {} on the CPU", g.name, got.len(), want.len()));
        }
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)).max(f64::MIN_POSITIVE);
        // NaN (an unwritten or poisoned element) compares as the largest difference.
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| {
                ((a - b).abs() as f64 / scale).max(if a.is_nan() != b.is_nan() { f64::INFINITY } else { 0.0 })
            })
            .fold(0.0f64, f64::max);
        if diff >= worst.0 {
            worst = (diff, g.name.clone());
        }
    }
    Ok((on_gpu.len(), worst.0, worst.1))
}

/// The fastest of `samples` samples of `w`, each ten back-to-back runs and one wait, per run
/// (as `bench-kernels` times: the submission latency is spread over the runs, as in a
/// training step).
fn fastest(w: &Workload, gpu: &WgpuBackend, samples: usize) -> Result<f64, String> {
    const RUNS: usize = 10;
    w.run(gpu).map_err(|e| e.to_string())?;
    gpu.sync().map_err(|e| e.to_string())?;
    let mut best = f64::INFINITY;
    for _ in 0..samples {
        let start = Instant::now();
        for _ in 0..RUNS {
            w.run(gpu).map_err(|e| e.to_string())?;
        }
        gpu.sync().map_err(|e| e.to_string())?;
        best = best.min(start.elapsed().as_secs_f64() / RUNS as f64);
    }
    Ok(best)
}
