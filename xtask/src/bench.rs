//! `cargo xtask bench-kernels`: a quick GFLOP/s table of the CPU kernels at the MNIST shapes
//! (median of repeated runs). criterion (`cargo bench -p benches`) gives the careful numbers.

use std::time::Instant;

use benches::{conv_pool_workloads, matmul_workloads, square_matmul, Workload};
use kernels_cpu::CpuBackend;
use tensor::Backend;

use crate::args::Args;

/// Median and fastest of `repeats` timed runs after a warm-up. On a busy machine the fastest
/// run is the better estimate of the kernel's own speed.
fn time_runs(w: &Workload, backend: &dyn Backend, repeats: usize) -> Result<(f64, f64), String> {
    w.run(backend).map_err(|e| e.to_string())?; // warm-up
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        w.run(backend).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

pub fn bench_kernels(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["batch", "repeats", "threads", "filter"], &[])?;
    let batch = args.get("batch", 128usize)?;
    let repeats = args.get("repeats", 30usize)?.max(1);
    let filter = args.value("filter").unwrap_or("");
    let backend = match args.value("threads") {
        Some(_) => CpuBackend::with_threads(args.get("threads", 1usize)?).map_err(|e| e.to_string())?,
        None => CpuBackend::new(),
    };
    let mut workloads = matmul_workloads(&backend, batch).map_err(|e| e.to_string())?;
    workloads.push(square_matmul(&backend, 1024).map_err(|e| e.to_string())?);
    workloads.extend(conv_pool_workloads(&backend, batch).map_err(|e| e.to_string())?);
    println!("backend: {}", backend.name());
    println!("| kernel | median ms | GFLOP/s | best ms | GFLOP/s |\n|---|---:|---:|---:|---:|");
    for w in workloads.iter().filter(|w| w.name.contains(filter)) {
        let (median, best) = time_runs(w, &backend, repeats)?;
        let rate = |s: f64| if w.flops > 0.0 { format!("{:.1}", w.flops / s / 1e9) } else { "-".into() };
        println!(
            "| {} | {:.3} | {} | {:.3} | {} |",
            w.name,
            median * 1e3,
            rate(median),
            best * 1e3,
            rate(best)
        );
    }
    Ok(())
}
