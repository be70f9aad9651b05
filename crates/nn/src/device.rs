//! Which backend a model runs on: the CPU (cargo feature `cpu`, on by default), a GPU through
//! wgpu (feature `wgpu`), or the best one available, chosen at run time.

use std::str::FromStr;

use tensor::{Device, TensorError};

use crate::error::{Error, Result};

/// A backend to run on, as a user names it (`"cpu"`, `"wgpu"`, `"best"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// The CPU backend (rayon + SIMD kernels).
    Cpu,
    /// The wgpu backend: Vulkan, Metal or DX12, whichever the machine has.
    Wgpu,
    /// A GPU if this build has the wgpu backend and the machine has an adapter, else the CPU.
    Best,
}

impl FromStr for DeviceKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "wgpu" | "gpu" => Ok(DeviceKind::Wgpu),
            "best" | "auto" => Ok(DeviceKind::Best),
            other => Err(Error::Data(format!("unknown backend '{other}' (cpu, wgpu or best)"))),
        }
    }
}

/// The device for `kind`; an error says why it is not available (feature not compiled in,
/// no GPU adapter).
pub fn select(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => cpu_checked(),
        DeviceKind::Wgpu => wgpu(),
        DeviceKind::Best => Ok(best_available()),
    }
}

/// The GPU when there is one (and this build has the `wgpu` feature), else the CPU.
pub fn best_available() -> Device {
    match wgpu() {
        Ok(device) => device,
        Err(_) => cpu_checked().unwrap_or_else(|e| panic!("{e}")),
    }
}

/// The CPU backend (rayon + SIMD kernels), shared by every model that asks for it.
#[cfg(feature = "cpu")]
pub fn cpu() -> Device {
    use std::sync::OnceLock;
    static CPU: OnceLock<Device> = OnceLock::new();
    CPU.get_or_init(kernels_cpu::cpu_device).clone()
}

fn cpu_checked() -> Result<Device> {
    #[cfg(feature = "cpu")]
    return Ok(cpu());
    #[cfg(not(feature = "cpu"))]
    Err(unavailable("the CPU backend is not compiled in: enable nn's `cpu` feature"))
}

/// The wgpu backend on the machine's high-performance adapter (created once, then shared).
/// `WGPU_BACKEND=vulkan` (or `metal`, `dx12`) restricts which APIs are tried.
pub fn wgpu() -> Result<Device> {
    #[cfg(feature = "wgpu")]
    {
        use std::sync::OnceLock;
        static WGPU: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
        WGPU.get_or_init(|| kernels_wgpu::wgpu_device().map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| unavailable(&format!("no wgpu device: {e}")))
    }
    #[cfg(not(feature = "wgpu"))]
    Err(unavailable("the wgpu backend is not compiled in: enable nn's `wgpu` feature"))
}

/// The wgpu backend on the machine's `index`-th adapter, counting discrete GPUs first, then
/// integrated ones, then the rest (a new device each call). Data-parallel training opens one
/// GPU per rank this way: `wgpu_adapter(local_rank % gpus)`, [`wgpu_adapters`] giving `gpus`.
pub fn wgpu_adapter(index: usize) -> Result<Device> {
    #[cfg(feature = "wgpu")]
    {
        let options = kernels_wgpu::WgpuOptions { adapter: Some(index), ..Default::default() };
        kernels_wgpu::WgpuBackend::with_options(options)
            .map(Device::new)
            .map_err(|e| unavailable(&format!("no wgpu device: {e}")))
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = index;
        Err(unavailable("the wgpu backend is not compiled in: enable nn's `wgpu` feature"))
    }
}

/// The machine's wgpu adapters (name and graphics API), in [`wgpu_adapter`]'s order; empty
/// without the `wgpu` feature.
pub fn wgpu_adapters() -> Vec<String> {
    #[cfg(feature = "wgpu")]
    return kernels_wgpu::adapter_names();
    #[cfg(not(feature = "wgpu"))]
    Vec::new()
}

fn unavailable(message: &str) -> Error {
    Error::Tensor(TensorError::Backend(message.to_string()))
}

/// The device models use unless given one: the CPU when compiled in, else the GPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cpu")]
    return cpu();
    #[cfg(not(feature = "cpu"))]
    wgpu().unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_unknown_names_are_errors() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("wgpu".parse::<DeviceKind>().unwrap(), DeviceKind::Wgpu);
        assert_eq!("best".parse::<DeviceKind>().unwrap(), DeviceKind::Best);
        let err = "cuda".parse::<DeviceKind>().unwrap_err().to_string();
        assert!(err.contains("cuda") && err.contains("wgpu"), "{err}");
    }

    #[cfg(feature = "cpu")]
    #[test]
    fn cpu_is_selectable_and_shared() {
        assert!(select(DeviceKind::Cpu).unwrap().same(&cpu()));
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_says_how_to_enable_it() {
        let err = select(DeviceKind::Wgpu).unwrap_err().to_string();
        assert!(err.contains("`wgpu` feature"), "{err}");
    }
}
