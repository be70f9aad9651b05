//! wgpu kernel benchmarks at the MNIST model shapes, plus square matmuls. Throughput is
//! reported in elements/s where one element is one floating-point operation, so `Gelem/s`
//! reads as GFLOP/s. Every iteration waits for the GPU to finish ([`WgpuBackend::sync`]), so
//! the time is the kernel's, not its recording's. Without a GPU adapter it prints a notice and
//! measures nothing.

use benches::{conv_pool_workloads, matmul_workloads, square_matmul, Workload};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kernels_wgpu::WgpuBackend;
use tensor::Backend;

fn bench_all(c: &mut Criterion, group: &str, workloads: Vec<Workload>, backend: &WgpuBackend) {
    let mut g = c.benchmark_group(group);
    for w in &workloads {
        if w.flops > 0.0 {
            g.throughput(Throughput::Elements(w.flops as u64));
        }
        g.bench_function(&w.name, |b| {
            b.iter(|| {
                let out = w.run(backend).expect("kernel failed");
                backend.sync().expect("GPU sync failed");
                out
            })
        });
    }
    g.finish();
}

fn wgpu(c: &mut Criterion) {
    let backend = match WgpuBackend::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("wgpu_kernels: no GPU adapter ({e}); nothing to measure");
            return;
        }
    };
    eprintln!("wgpu_kernels on {}", backend.name());
    bench_all(c, "wgpu_matmul", matmul_workloads(&backend, 128).unwrap(), &backend);
    // A software renderer (lavapipe) takes seconds per large product.
    let sizes: &[usize] = if backend.is_software() { &[256] } else { &[1024, 2048, 4096] };
    let squares = sizes.iter().map(|&n| square_matmul(&backend, n).unwrap()).collect();
    bench_all(c, "wgpu_matmul_square", squares, &backend);
    bench_all(c, "wgpu_conv_pool", conv_pool_workloads(&backend, 128).unwrap(), &backend);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = wgpu
}
criterion_main!(benches);
