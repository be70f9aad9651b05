//! Shared test support: the CPU device and a seeded generator. (The op-by-op checks against
//! an f64 reference are the conformance suite, `tensor::conformance`, which every backend runs
//! from its own tests.)
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::SeedableRng;
use tensor::Device;

/// One CPU device shared by the whole test binary (tensors on different backend instances
/// are on different devices and refuse to mix).
pub fn device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE.get_or_init(kernels_cpu::cpu_device).clone()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
