//! `cargo xtask bench-kernels`: a quick GFLOP/s table of the kernels at the MNIST shapes
//! (model4/model5's layers and model6's 3x3 convolutions) on the CPU or the wgpu backend.
//! criterion (`cargo bench -p benches`) gives the careful numbers.

use std::time::Instant;

use benches::{conv_pool_workloads, matmul_workloads, model6_conv_workloads, square_matmul, Workload};
use kernels_cpu::CpuBackend;
#[cfg(feature = "wgpu")]
use kernels_wgpu::WgpuBackend;
use tensor::Backend;

use crate::args::Args;

/// Waits until the backend has finished the work recorded so far.
type SyncFn = dyn Fn() -> Result<(), String>;

/// Median and fastest time per call over `samples` samples after a warm-up. A sample is
/// `inner` back-to-back calls then `sync` (waiting for a GPU to finish), divided by `inner`,
/// so a GPU's submit latency is spread over the calls as in a training step. On a busy
/// machine the fastest sample is the better estimate of the kernel's own speed.
fn time_runs(
    w: &Workload,
    backend: &dyn Backend,
    sync: &SyncFn,
    samples: usize,
    inner: usize,
) -> Result<(f64, f64), String> {
    w.run(backend).map_err(|e| e.to_string())?;
    sync()?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..inner {
            w.run(backend).map_err(|e| e.to_string())?;
        }
        sync()?;
        times.push(t.elapsed().as_secs_f64() / inner as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

pub fn bench_kernels(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["batch", "repeats", "threads", "filter", "backend", "square"], &[])?;
    let batch = args.get("batch", 128usize)?;
    let repeats = args.get("repeats", 30usize)?.max(1);
    let filter = args.value("filter").unwrap_or("");
    let squares: Vec<usize> = args.list("square", "1024")?;
    let (backend, sync, inner): (Box<dyn Backend>, Box<SyncFn>, usize) =
        match args.value("backend").unwrap_or("cpu") {
            "cpu" => {
                let cpu = match args.value("threads") {
                    Some(_) => {
                        CpuBackend::with_threads(args.get("threads", 1usize)?).map_err(|e| e.to_string())?
                    }
                    None => CpuBackend::new(),
                };
                (Box::new(cpu), Box::new(|| Ok(())), 1)
            }
            #[cfg(feature = "wgpu")]
            "wgpu" => {
                let gpu = WgpuBackend::new().map_err(|e| format!("--backend wgpu: {e}"))?;
                let handle = gpu.clone();
                (Box::new(gpu), Box::new(move || handle.sync().map_err(|e| e.to_string())), 10)
            }
            other => return Err(format!("--backend: unknown backend '{other}' (cpu or wgpu)")),
        };
    let backend = backend.as_ref();
    let mut workloads = matmul_workloads(backend, batch).map_err(|e| e.to_string())?;
    for &n in &squares {
        workloads.push(square_matmul(backend, n).map_err(|e| e.to_string())?);
    }
    workloads.extend(conv_pool_workloads(backend, batch).map_err(|e| e.to_string())?);
    workloads.extend(model6_conv_workloads(backend, batch).map_err(|e| e.to_string())?);
    println!("backend: {}", backend.name());
    println!("| kernel | median ms | GFLOP/s | best ms | GFLOP/s |\n|---|---:|---:|---:|---:|");
    for w in workloads.iter().filter(|w| w.name.contains(filter)) {
        let (median, best) = time_runs(w, backend, sync.as_ref(), repeats, inner)?;
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
