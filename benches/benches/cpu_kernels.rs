//! CPU kernel benchmarks at the MNIST model shapes. Throughput is reported in elements/s where
//! one element is one floating-point operation, so `Gelem/s` reads as GFLOP/s.

use benches::{
    augmentation_workloads, conv_pool_workloads, matmul_workloads, model6_conv_workloads, square_matmul,
    Workload,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kernels_cpu::CpuBackend;
use tensor::Backend;

fn bench_all(c: &mut Criterion, group: &str, workloads: Vec<Workload>, backend: &dyn Backend) {
    let mut g = c.benchmark_group(group);
    for w in &workloads {
        if w.flops > 0.0 {
            g.throughput(Throughput::Elements(w.flops as u64));
        }
        g.bench_function(&w.name, |b| b.iter(|| w.run(backend).expect("kernel failed")));
    }
    g.finish();
}

fn cpu(c: &mut Criterion) {
    let backend = CpuBackend::new();
    bench_all(c, "cpu_matmul", matmul_workloads(&backend, 128).unwrap(), &backend);
    bench_all(c, "cpu_matmul_square", vec![square_matmul(&backend, 1024).unwrap()], &backend);
    bench_all(c, "cpu_conv_pool", conv_pool_workloads(&backend, 128).unwrap(), &backend);
    bench_all(c, "cpu_conv_model6", model6_conv_workloads(&backend, 128).unwrap(), &backend);
    bench_all(c, "cpu_augmentation", augmentation_workloads(&backend, 128).unwrap(), &backend);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = cpu
}
criterion_main!(benches);
