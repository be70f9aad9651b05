//! CPU kernels for the `tensor` crate: a [`CpuBackend`] implementing [`tensor::Backend`].
//!
//! Storage is a plain `Vec<f32>` ([`CpuStorage`]). The kernels live in one module per family
//! and work on slices, so they can also be called (and benchmarked) directly:
//!
//! - [`matmul`]: (batched) matrix products through the `gemm` crate, transposes for free.
//! - [`conv2d`]: NHWC/HWIO convolution and its two gradients, im2col + GEMM over cache-sized
//!   groups of images.
//! - [`pool`]: max / average / L2 pooling and their gradients.
//! - [`elementwise`]: unary and broadcast binary maps, `expand`, `fill`.
//! - [`reduce`]: sum / max over an axis, row argmax.
//! - [`softmax`]: (log-)softmax, its gradient, fused softmax cross-entropy.
//! - [`layout`]: concatenation, slicing, dropout masks.
//!
//! Parallelism uses rayon (the global pool, or a dedicated one from
//! [`CpuBackend::with_threads`]); small tensors stay single-threaded. Every reduction sums in
//! an order fixed by the shapes alone, so results are bit-identical whatever the thread count.
//!
//! The crate is compiled for baseline x86-64 and picks faster code at run time: `gemm` has
//! AVX-512 kernels, and the single-channel convolution (an MNIST network's first layer) and
//! the dropout hash have AVX2 versions. Large output buffers are recycled between kernels
//! (see [`clear_buffer_cache`]) instead of being returned to the system and page-faulted in
//! again on every step.

mod buffers;
pub mod conv2d;
#[cfg(target_arch = "x86_64")]
mod conv2d_direct;
#[cfg(target_arch = "x86_64")]
mod conv2d_pool;
#[cfg(target_arch = "x86_64")]
mod conv2d_winograd;
mod dispatch;
pub mod elementwise;
mod fast_math;
pub mod image;
mod isa;
pub mod layout;
pub mod matmul;
#[cfg(target_arch = "x86_64")]
mod matmul_narrow;
mod matrix;
pub mod norm;
mod norm_blocks;
mod norm_pool;
#[cfg(target_arch = "x86_64")]
mod norm_registers;
pub mod pool;
mod pool_2x2;
pub mod reduce;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
mod winners;

pub use buffers::{cached_bytes, clear_buffer_cache};

use std::any::Any;
use std::sync::Arc;
use tensor::{Backend, BackendStorage, Capabilities, MemoryOps, Result, Storage, TensorError};

/// Elementwise work below this many elements runs on the calling thread: splitting it across
/// threads would cost more than it saves.
pub(crate) const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// Elements per rayon task for elementwise work (64 KiB of f32: big enough to amortise the
/// task, small enough to balance two to a few dozen cores).
pub(crate) const PARALLEL_CHUNK: usize = 1 << 14;

/// A CPU buffer: contiguous row-major f32 values. Dropping a large one hands its memory to the
/// backend's buffer pool for reuse (see [`clear_buffer_cache`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuStorage(Vec<f32>);

impl CpuStorage {
    /// Wraps the values.
    pub fn new(values: Vec<f32>) -> Self {
        CpuStorage(values)
    }
    /// The values.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }
    /// Takes the values out.
    pub fn into_vec(mut self) -> Vec<f32> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        buffers::recycle(std::mem::take(&mut self.0));
    }
}

impl BackendStorage for CpuStorage {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Wraps kernel output as shared storage.
pub(crate) fn store(values: Vec<f32>) -> Storage {
    Arc::new(CpuStorage(values))
}

/// The values of `storage`, or a [`TensorError::Backend`] when it belongs to another backend.
pub fn cpu_slice<'a>(storage: &'a Storage, op: &str) -> Result<&'a [f32]> {
    storage.as_any().downcast_ref::<CpuStorage>().map(CpuStorage::as_slice).ok_or_else(|| {
        TensorError::Backend(format!("{op}: storage is not a CPU buffer (it belongs to another backend)"))
    })
}

/// The CPU backend. Cheap to construct; by default it runs on rayon's global thread pool.
#[derive(Debug, Default, Clone)]
pub struct CpuBackend {
    /// A dedicated pool, when the caller asked for a thread count.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl CpuBackend {
    /// A backend on rayon's global thread pool (one thread per core unless `RAYON_NUM_THREADS`
    /// says otherwise).
    pub fn new() -> Self {
        CpuBackend { pool: None }
    }

    /// A backend with its own pool of `threads` threads (1 makes every kernel sequential).
    pub fn with_threads(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("kernels-cpu-{i}"))
            .build()
            .map_err(|e| TensorError::Backend(format!("cannot start CPU thread pool: {e}")))?;
        Ok(CpuBackend { pool: Some(Arc::new(pool)) })
    }

    /// Number of threads kernels may use.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Runs `f` on this backend's pool (directly, when it uses the global one).
    pub(crate) fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }
}

/// A [`tensor::Device`] backed by a new [`CpuBackend`] on the global thread pool.
pub fn cpu_device() -> tensor::Device {
    tensor::Device::new(CpuBackend::new())
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({} threads)", self.threads())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Values live in host memory: reading one waits for nothing.
            read_waits_for_queued_work: false,
            loss_check_interval: 1,
            fused_conv_pool: cfg!(target_arch = "x86_64"),
            fused_norm_pool: true,
        }
    }

    /// On a worker of this backend's pool (rayon's global one by default): each kernel's
    /// tasks then start on this thread and the other workers, still spinning from the last
    /// kernel, steal theirs, where a call from outside hands every kernel over to sleeping
    /// workers and sleeps until woken (docs/performance.md measures the difference).
    fn run_host_loop(&self, work: &mut (dyn FnMut() + Send)) {
        self.run(|| rayon::scope(|_| work()))
    }
}

impl MemoryOps for CpuBackend {
    fn upload(&self, data: &[f32]) -> Result<Storage> {
        let mut values = buffers::take(data.len());
        values.extend_from_slice(data);
        Ok(store(values))
    }

    fn download(&self, storage: &Storage) -> Result<Vec<f32>> {
        Ok(cpu_slice(storage, "download")?.to_vec())
    }

    fn fill(&self, len: usize, value: f32) -> Result<Storage> {
        Ok(store(elementwise::fill(len, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::backend::prelude::*;

    #[test]
    fn round_trips_and_rejects_foreign_storage() {
        #[derive(Debug)]
        struct Foreign;
        impl BackendStorage for Foreign {
            fn len(&self) -> usize {
                0
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
        }
        let backend = CpuBackend::new();
        let s = backend.upload(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(backend.download(&s).unwrap(), vec![1.0, 2.0, 3.0]);
        let foreign: Storage = Arc::new(Foreign);
        let err = backend.download(&foreign).unwrap_err();
        assert!(matches!(err, TensorError::Backend(ref m) if m.contains("not a CPU buffer")));
        assert!(backend.unary(tensor::UnaryOp::Relu, &foreign).is_err());
    }

    #[test]
    fn bad_arguments_a_kernel_checks_itself_are_errors() {
        let backend = CpuBackend::with_threads(2).unwrap();
        assert!(backend.dropout_mask(10, 1.0, 3).is_err());
        let caps = backend.capabilities();
        assert!(!caps.read_waits_for_queued_work && caps.loss_check_interval == 1);
    }
}
