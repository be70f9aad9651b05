//! Which backend a model runs on.

use tensor::Device;

/// The CPU backend (rayon + SIMD kernels), shared by every model that asks for it.
pub fn cpu() -> Device {
    use std::sync::OnceLock;
    static CPU: OnceLock<Device> = OnceLock::new();
    CPU.get_or_init(kernels_cpu::cpu_device).clone()
}

/// The device models use unless given one: the CPU.
pub fn default_device() -> Device {
    cpu()
}
