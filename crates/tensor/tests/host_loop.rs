//! `Device::run_host_loop`: where a training loop runs on the CPU backend, what it gives back,
//! and the graph-recording mode it keeps.

use kernels_cpu::CpuBackend;
use tensor::{is_grad_enabled, no_grad, Device, Tensor};

fn device(threads: usize) -> Device {
    Device::new(CpuBackend::with_threads(threads).unwrap())
}

#[test]
fn a_cpu_host_loop_runs_on_a_worker_of_the_backends_pool() {
    let device = device(3);
    let caller = std::thread::current().id();
    let (thread, name) = device.run_host_loop(|| {
        let me = std::thread::current();
        (me.id(), me.name().map(str::to_string))
    });
    assert_ne!(thread, caller);
    let name = name.expect("the pool names its threads");
    assert!(name.starts_with("kernels-cpu-"), "ran on {name}");
}

#[test]
fn kernels_in_the_loop_give_what_they_give_outside_it() {
    let device = device(2);
    let x = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0], [2, 2], &device).unwrap();
    let inside = device.run_host_loop(|| x.matmul(&x).unwrap().to_vec().unwrap());
    assert_eq!(inside, vec![7.0, 10.0, 15.0, 22.0]);
    assert_eq!(inside, x.matmul(&x).unwrap().to_vec().unwrap());
}

#[test]
fn the_loop_records_graphs_as_its_caller_does() {
    let device = device(2);
    assert!(device.run_host_loop(is_grad_enabled));
    assert!(!no_grad(|| device.run_host_loop(is_grad_enabled)));
    // And the worker's own mode is back as it was: recording.
    assert!(device.run_host_loop(is_grad_enabled));
    let w = Tensor::from_slice(&[3.0], [1], &device).unwrap().to_variable();
    let grad = device.run_host_loop(|| {
        let loss = w.mul(&w).unwrap().sum_all().unwrap();
        loss.backward().unwrap().get(&w).unwrap().to_vec().unwrap()
    });
    assert_eq!(grad, vec![6.0]);
}
