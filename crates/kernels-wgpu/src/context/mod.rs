//! The device and everything a [`crate::WgpuBackend`]'s kernels share, one job per file:
//!
//! - here: the device, its queue and limits, and its faults ([`crate::faults`]) as `Err`s;
//! - `memory.rs`: allocation (from [`crate::buffers`]' pool), uploads and read-back;
//! - `pipelines.rs`: shader modules and compiled pipelines, cached;
//! - `bind_groups.rs`: the bind-group cache;
//! - `stream.rs`: the one ordered command stream every kernel is recorded into, and its
//!   submission.

mod bind_groups;
mod memory;
mod pipelines;
mod stream;

pub(crate) use memory::wgpu_storage;
pub(crate) use pipelines::Access;

use crate::buffers::BufferPool;
use crate::faults::DeviceFaults;
use crate::tile::Tile;
use crate::{GemmTile, WgpuOptions};
use pipelines::Pipelines;
use std::sync::{Arc, Mutex, MutexGuard};
use stream::Pending;
use tensor::Result;

/// Threads per workgroup of the one-dimensional kernels (elementwise, layout, pooling);
/// `shaders/*.wgsl` use the same number.
pub(crate) const WORKGROUP: u32 = 256;

/// Everything a [`crate::WgpuBackend`] and its storages share.
pub(crate) struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// Buffers for reuse; shared with every [`crate::buffers::WgpuStorage`], which returns
    /// its buffer here when dropped.
    pub(crate) pool: Arc<BufferPool>,
    /// Fill every new output with NaN before its kernel runs (tests: an element a kernel
    /// forgets to write then shows up).
    pub(crate) poison: bool,
    /// The GEMM tile policy.
    pub(crate) gemm_tile: GemmTile,
    /// Commands recorded but not yet submitted (`stream.rs`).
    pending: Mutex<Pending>,
    /// Params chunks whose last submission has completed.
    free_chunks: Arc<Mutex<Vec<wgpu::Buffer>>>,
    pipelines: Pipelines,
    /// Errors the device reported outside an error scope, and its loss; returned by the next
    /// operation (a loss by every later one).
    faults: DeviceFaults,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        options: WgpuOptions,
    ) -> Arc<Self> {
        let faults = DeviceFaults::watch(&device);
        let limits = device.limits();
        Arc::new(Context {
            device,
            queue,
            info,
            limits,
            pool: Arc::new(BufferPool::default()),
            poison: options.poison_outputs,
            gemm_tile: options.gemm_tile,
            pending: Mutex::new(Pending::default()),
            free_chunks: Arc::new(Mutex::new(Vec::new())),
            pipelines: Pipelines::default(),
            faults,
        })
    }

    /// The error the device reported since the last check, if any; once the device is lost,
    /// always that.
    pub(crate) fn check(&self) -> Result<()> {
        self.faults.check()
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later operation
    /// fails with the device-lost error.
    pub(crate) fn destroy(&self) {
        // Nothing recorded may be submitted to a destroyed device.
        *lock(&self.pending) = Pending::default();
        self.device.destroy();
        // wgpu reports the loss when it next looks at the device.
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// The GEMM tile for `products` independent products (or split-K slices) of `m x n`,
    /// under this context's policy and the adapter's workgroup memory.
    pub(crate) fn gemm_tile(&self, products: usize, m: usize, n: usize) -> Tile {
        Tile::choose(self.gemm_tile, self.limits.max_compute_workgroup_storage_size, products, m, n)
    }

    /// Workgroup counts covering `threads` invocations of a [`WORKGROUP`]-wide kernel, folded
    /// into two dimensions when they exceed the per-dimension limit. The shaders rebuild the
    /// linear index from `workgroup_id` and `num_workgroups`.
    pub(crate) fn grid_1d(&self, threads: u64) -> (u32, u32, u32) {
        self.grid_groups(threads.div_ceil(WORKGROUP as u64))
    }

    /// `groups` workgroups as an `(x, y, 1)` grid within the per-dimension limit.
    pub(crate) fn grid_groups(&self, groups: u64) -> (u32, u32, u32) {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let groups = groups.max(1);
        if groups <= max {
            return (groups as u32, 1, 1);
        }
        let y = groups.div_ceil(max);
        let x = groups.div_ceil(y);
        (x as u32, y.min(max) as u32, 1)
    }
}
