//! The CPU backend against the conformance suite every backend runs (`tensor::conformance`):
//! each op forward against the f64 reference and backward against finite differences, on odd
//! shapes, with one and with two threads (the kernels split work differently).

use kernels_cpu::CpuBackend;
use tensor::conformance::{self, Tolerances};
use tensor::Device;

#[test]
fn the_cpu_backend_conforms() {
    for threads in [1, 2] {
        let device = Device::new(CpuBackend::with_threads(threads).unwrap());
        let failures = conformance::run(&device, &Tolerances::default());
        assert!(
            failures.is_empty(),
            "{threads} thread(s): {} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
