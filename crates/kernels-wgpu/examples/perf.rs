//! Times the wgpu kernels and checks the large products against an f64 reference:
//! `cargo run --release -p mnist-rs-kernels-wgpu --example perf [quick]`.
//!
//! Each measurement records `reps` calls back to back and waits once, so the device never
//! idles between them (the way a training step runs); the time per call is the total over
//! `reps`. `quick` uses small sizes (for software renderers).

use kernels_wgpu::{GemmTile, WgpuBackend, WgpuOptions};
use std::time::Instant;
use tensor::backend::prelude::*;
use tensor::shape::{Conv2dSpec, MatmulSpec, Pool2dSpec, Shape};
use tensor::{Backend, BinaryOp, Padding, PoolKind, Result, Storage};

fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u32).map(|i| tensor::random::uniform(seed, i) * 2.0 - 1.0).collect()
}

/// Seconds per call of `f`, after one warm-up call.
fn time(backend: &WgpuBackend, reps: usize, mut f: impl FnMut() -> Result<Storage>) -> Result<f64> {
    drop(f()?);
    backend.sync()?;
    let start = Instant::now();
    for _ in 0..reps {
        drop(f()?);
    }
    backend.sync()?;
    Ok(start.elapsed().as_secs_f64() / reps as f64)
}

/// Largest relative error of 64 sampled entries of `c = a b` against f64 dot products.
fn check_matmul(a: &[f32], b: &[f32], c: &[f32], m: usize, k: usize, n: usize) -> f64 {
    let mut worst = 0.0f64;
    for s in 0..64 {
        let (i, j) = ((s * 7919) % m, (s * 104_729) % n);
        let want: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        worst = worst.max((c[i * n + j] as f64 - want).abs() / want.abs().max(1.0));
    }
    worst
}

/// Prints the time per dispatch of 1-element kernels recorded back to back with one wait at
/// the end: the per-dispatch cost on the CPU (recording, binding, submitting) plus the device's
/// launch floor.
fn overhead(backend: &WgpuBackend) -> Result<()> {
    let a = backend.upload(&[1.0])?;
    let b = backend.upload(&[2.0])?;
    let (_, spec) = tensor::shape::broadcast(&Shape::new([1]), &Shape::new([1]))?;
    for _ in 0..3 {
        let n = 2000;
        let t = time(backend, n, || backend.fill(1, 0.5))?;
        let u = time(backend, n, || backend.binary(BinaryOp::Add, &a, &b, &spec))?;
        // Recording alone: batches of 200, fewer than are submitted at once, so the device is
        // idle while they are recorded (a software renderer shares the CPU).
        let mut recording = 0.0;
        for _ in 0..10 {
            let start = Instant::now();
            for _ in 0..200 {
                drop(backend.binary(BinaryOp::Add, &a, &b, &spec)?);
            }
            recording += start.elapsed().as_secs_f64();
            backend.sync()?;
        }
        let r = recording / 2000.0;
        println!(
            "overhead: fill {:6.2} us/dispatch, add {:6.2} us/dispatch (recording only {:6.2} us)",
            t * 1e6,
            u * 1e6,
            r * 1e6
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "quick");
    let make = |gemm_tile| {
        WgpuBackend::with_options(WgpuOptions { poison_outputs: false, gemm_tile, adapter: None })
    };
    let auto = make(GemmTile::Auto)?;
    overhead(&auto)?;
    if std::env::args().any(|a| a == "overhead") {
        return Ok(());
    }
    let limits = auto.limits();
    println!(
        "{} | workgroup storage {} B, storage binding {} B",
        auto.name(),
        limits.max_compute_workgroup_storage_size,
        limits.max_storage_buffer_binding_size
    );
    let tiles =
        [("64x64", make(GemmTile::Small)?), ("128x128", make(GemmTile::Large)?), ("auto", auto.clone())];
    let sizes: &[usize] = if quick { &[256] } else { &[1024, 2048, 4096] };
    for &size in sizes {
        let (a, b) = (values(size * size, 1), values(size * size, 2));
        let spec = MatmulSpec { batch: 1, m: size, k: size, n: size, trans_a: false, trans_b: false };
        for (label, backend) in &tiles {
            let (da, db) = (backend.upload(&a)?, backend.upload(&b)?);
            let c = backend.download(&backend.matmul(&da, &db, None, &spec)?)?;
            let err = check_matmul(&a, &b, &c, size, size, size);
            let reps = if quick { 3 } else { (20 * 1024 * 1024 * 1024 / (size * size * size)).clamp(5, 50) };
            let t = time(backend, reps, || backend.matmul(&da, &db, None, &spec))?;
            println!(
                "matmul {size}^3 {label:>8}: {:8.3} ms  {:7.2} TFLOP/s  (max rel err {err:.1e})",
                t * 1e3,
                spec.flops() / t / 1e12
            );
        }
    }
    // The MNIST models' shapes at batch 128 (benches/lib.rs).
    let backend = &auto;
    let reps = if quick { 3 } else { 50 };
    for (inputs, units) in [(784, 100), (2880, 100), (1000, 100), (100, 10)] {
        for (pass, spec) in [
            ("fwd", MatmulSpec { batch: 1, m: 128, k: inputs, n: units, trans_a: false, trans_b: false }),
            ("bwd_w", MatmulSpec { batch: 1, m: inputs, k: 128, n: units, trans_a: true, trans_b: false }),
            ("bwd_x", MatmulSpec { batch: 1, m: 128, k: units, n: inputs, trans_a: false, trans_b: true }),
        ] {
            let x = backend.upload(&values(spec.m * spec.k, 3))?;
            let w = backend.upload(&values(spec.k * spec.n, 4))?;
            let t = time(backend, reps, || backend.matmul(&x, &w, None, &spec))?;
            println!(
                "matmul_{pass} 128x{inputs}x{units}: {:8.1} us  {:7.3} TFLOP/s",
                t * 1e6,
                spec.flops() / t / 1e12
            );
        }
    }
    let batch = if quick { 16 } else { 128 };
    for (x_dims, f_dims) in [([batch, 28, 28, 1], [5, 5, 1, 20]), ([batch, 12, 12, 20], [3, 3, 20, 40])] {
        let spec = Conv2dSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), (1, 1), Padding::Valid)?;
        let x = backend.upload(&values(spec.input_shape().numel(), 5))?;
        let f = backend.upload(&values(spec.filter_shape().numel(), 6))?;
        let bias = backend.upload(&values(spec.out_c, 7))?;
        let dy = backend.upload(&values(spec.output_shape().numel(), 8))?;
        let label = format!("{x_dims:?} * {f_dims:?}");
        let fl = spec.flops();
        let t = time(backend, reps, || backend.conv2d(&x, &f, Some(&bias), &spec))?;
        println!("conv2d_fwd {label}: {:8.1} us  {:7.3} TFLOP/s", t * 1e6, fl / t / 1e12);
        let t = time(backend, reps, || backend.conv2d_backward_input(&dy, &f, &spec))?;
        println!("conv2d_bwd_input {label}: {:8.1} us  {:7.3} TFLOP/s", t * 1e6, fl / t / 1e12);
        let t = time(backend, reps, || backend.conv2d_backward_filter(&x, &dy, &spec))?;
        println!("conv2d_bwd_filter {label}: {:8.1} us  {:7.3} TFLOP/s", t * 1e6, fl / t / 1e12);
        let pool = Pool2dSpec::new(&spec.output_shape(), (2, 2), (2, 2), Padding::Valid)?;
        let px = backend.upload(&values(spec.output_shape().numel(), 9))?;
        let py = backend.pool2d(PoolKind::Max, &px, &pool)?;
        let pdy = backend.upload(&values(pool.output_shape().numel(), 10))?;
        let t = time(backend, reps, || backend.pool2d(PoolKind::Max, &px, &pool))?;
        println!("maxpool2x2_fwd {:?}: {:8.1} us", spec.output_shape(), t * 1e6);
        let t = time(backend, reps, || backend.pool2d_backward(PoolKind::Max, &px, &py, &pdy, &pool))?;
        println!("maxpool2x2_bwd {:?}: {:8.1} us", spec.output_shape(), t * 1e6);
    }
    Ok(())
}
