//! GPU kernels for the `tensor` crate through wgpu (Vulkan, Metal, DX12): a [`WgpuBackend`]
//! implementing [`tensor::Backend`] with the WGSL compute shaders in the workspace's
//! `shaders/` folder, one file per kernel family (see [`Shader`]).
//!
//! Execution model: every kernel is recorded into one pending command encoder (one ordered
//! stream), which is submitted only when the host needs data ([`tensor::MemoryOps::download`],
//! [`WgpuBackend::sync`]), before an upload into a reused buffer, or when many commands have
//! piled up. Nothing reads back inside an op. Per dispatch the CPU does little: consecutive
//! kernels share one compute pass, their uniforms are slots of one buffer per submission
//! (dynamic offsets), and bind groups of pooled buffers are cached.
//! Pipelines are compiled once per entry point; freed storages return their buffer to a pool
//! keyed by size class. Device errors (validation, out of memory, device lost) and buffers
//! beyond the adapter's limits come back as [`TensorError::Backend`], never as panics.
//!
//! ```no_run
//! use kernels_wgpu::WgpuBackend;
//! use tensor::{Device, Tensor};
//! let device = Device::new(WgpuBackend::new()?);
//! let x = Tensor::from_slice(&[1.0, 2.0, 3.0], [3], &device)?;
//! assert_eq!(x.square()?.to_vec()?, vec![1.0, 4.0, 9.0]);
//! # Ok::<(), tensor::TensorError>(())
//! ```

mod buffers;
mod context;
mod faults;
mod ops;
mod params;
mod shaders;
mod tile;

pub use buffers::WgpuStorage;
pub use shaders::Shader;

use context::Context;
use std::sync::Arc;
use tensor::{Backend, Capabilities, MemoryOps, Result, Storage, TensorError};

/// Construction options of a [`WgpuBackend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WgpuOptions {
    /// Fill every new output buffer with NaN before its kernel runs, so an element a kernel
    /// fails to write shows up in tests. Costs one extra dispatch per output.
    pub poison_outputs: bool,
    /// Which GEMM tile matmul and convolution use (tests force each one).
    pub gemm_tile: GemmTile,
    /// The adapter to open: the `i`-th of [`adapter_names`]' list (hardware GPUs first), as
    /// a rank of data-parallel training picks its machine's GPU; `None`, the high-performance
    /// one.
    pub adapter: Option<usize>,
}

/// The machine's adapters (name and graphics API) in the order [`WgpuOptions::adapter`] counts
/// them: discrete GPUs, then integrated ones, then the rest (software renderers last).
pub fn adapter_names() -> Vec<String> {
    let instance = instance();
    pollster::block_on(ranked_adapters(&instance))
        .iter()
        .map(|a| {
            let info = a.get_info();
            format!("{} ({:?})", info.name, info.backend)
        })
        .collect()
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    wgpu::Instance::new(desc)
}

async fn ranked_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let mut adapters = instance.enumerate_adapters(backends).await;
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 3,
    };
    // Stable: the driver's order within a kind.
    adapters.sort_by_key(rank);
    adapters
}

/// The output tile of one workgroup in the matmul / convolution GEMMs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GemmTile {
    /// 128x128 for products with enough such tiles to fill a big GPU, 32x32 k-grouped for
    /// those with at most 32 rows and columns, 128x32 for those with at most 32 columns, else
    /// 64x64.
    #[default]
    Auto,
    /// Always 64x64 (4x4 outputs per invocation).
    Small,
    /// Always 128x32 (4x4 outputs per invocation), the automatic choice for products with
    /// at most 32 columns.
    Narrow,
    /// Always 32x32, each k-slice shared among four groups of the workgroup's invocations
    /// whose sums are added at the end: the automatic choice for products with at most 32
    /// rows and columns (a first layer's filter gradient, 25 x 20 over every position).
    KGroups,
    /// Always 128x128 (8x8 outputs per invocation, double-buffered), where the adapter has the
    /// workgroup memory for it.
    Large,
}

/// The wgpu backend: one device and queue, shared by every storage it creates. Cloning is
/// cheap and shares the device.
#[derive(Clone)]
pub struct WgpuBackend {
    context: Arc<Context>,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBackend").field("adapter", &self.context.info.name).finish()
    }
}

impl WgpuBackend {
    /// The high-performance adapter of any backend (or those named by the `WGPU_BACKEND`
    /// environment variable, e.g. `vulkan`), with default options.
    pub fn new() -> Result<Self> {
        Self::with_options(WgpuOptions::default())
    }

    /// Like [`WgpuBackend::new`], with `options`.
    pub fn with_options(options: WgpuOptions) -> Result<Self> {
        pollster::block_on(Self::create(options))
    }

    async fn create(options: WgpuOptions) -> Result<Self> {
        let instance = instance();
        let adapter = match options.adapter {
            Some(index) => {
                let mut adapters = ranked_adapters(&instance).await;
                let count = adapters.len();
                if index >= count {
                    return Err(TensorError::Backend(format!(
                        "wgpu: adapter {index} asked for, but this machine has {count}"
                    )));
                }
                adapters.swap_remove(index)
            }
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                })
                .await
                .map_err(|e| TensorError::Backend(format!("wgpu: no GPU adapter found: {e}")))?,
        };
        let info = adapter.get_info();
        // The adapter's own limits, not wgpu's portable defaults (128 MiB bindings, 16 KiB of
        // workgroup memory), which would cap tensor sizes far below what the GPU can do.
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("kernels-wgpu"),
                required_features: wgpu::Features::empty(),
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| TensorError::Backend(format!("wgpu: cannot open {}: {e}", info.name)))?;
        Ok(WgpuBackend { context: Context::new(device, queue, info, options) })
    }

    /// The adapter this backend runs on (name, vendor, driver, graphics API).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.context.info
    }

    /// Whether the adapter is a software renderer running on the CPU (e.g. Mesa's lavapipe).
    pub fn is_software(&self) -> bool {
        self.context.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The device limits in force (the adapter's).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.context.limits
    }

    /// Submits every pending kernel and waits until the device has finished them (for timing).
    pub fn sync(&self) -> Result<()> {
        self.context.sync()
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later operation
    /// (kernel, upload, download) returns a [`TensorError::Backend`] saying the device was
    /// lost. For tests of what callers do when a GPU goes away; there is no way back.
    pub fn destroy_device(&self) {
        self.context.destroy();
    }

    /// Releases the free buffers the pool keeps for reuse.
    pub fn clear_buffer_pool(&self) {
        self.context.pool.clear();
    }

    /// Bytes held by free buffers in the pool.
    pub fn pooled_bytes(&self) -> u64 {
        self.context.pool.bytes()
    }
}

/// A [`tensor::Device`] on a new [`WgpuBackend`] (default options).
pub fn wgpu_device() -> Result<tensor::Device> {
    Ok(tensor::Device::new(WgpuBackend::new()?))
}

impl Backend for WgpuBackend {
    fn name(&self) -> String {
        format!("wgpu ({}, {:?})", self.context.info.name, self.context.info.backend)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // A read submits the pending commands and waits for the GPU to finish them.
            read_waits_for_queued_work: true,
            loss_check_interval: LOSS_CHECK_INTERVAL,
            fused_conv_pool: true,
            // The normalization's kernels read a dense gradient; the tensor op composes.
            fused_norm_pool: false,
        }
    }
}

/// Steps between a training loop's reads of the loss ([`Capabilities::loss_check_interval`]):
/// each read drains the GPU's queue, and a hundred steps of queued work keep it busy while the
/// host records more.
pub const LOSS_CHECK_INTERVAL: usize = 100;

impl MemoryOps for WgpuBackend {
    fn upload(&self, data: &[f32]) -> Result<Storage> {
        let storage = self.context.upload(data)?;
        self.context.store(storage)
    }

    fn download(&self, storage: &Storage) -> Result<Vec<f32>> {
        let s = context::wgpu_storage(storage, &self.context, "download")?;
        self.context.read(s.buffer(), s.len())
    }

    fn fill(&self, len: usize, value: f32) -> Result<Storage> {
        ops::elementwise::fill(&self.context, len, value)
    }
}
