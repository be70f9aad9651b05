//! Device memory: [`WgpuStorage`] and the pool its buffers go back to when dropped.
//!
//! Allocating a GPU buffer costs far more than a kernel on small tensors, and a training step
//! frees and allocates the same sizes over and over, so freed buffers are kept per size class
//! and handed out again. Reuse is safe without waiting for the GPU because every kernel is
//! recorded into one ordered command stream: wgpu puts a barrier between the last use of a
//! buffer and its next writer.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tensor::BackendStorage;

/// Smallest buffer handed out, in bytes; also what an empty tensor gets (wgpu cannot bind a
/// zero-sized buffer).
const MIN_BYTES: u64 = 256;

/// Free buffers kept at most, in bytes, beyond which dropped buffers are released.
const POOL_LIMIT_BYTES: u64 = 1 << 30;

/// Usages of every storage buffer: bound to kernels, and copied in and out.
pub(crate) const STORAGE_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// The size class of a request of `bytes`: a power of two up to 64 KiB, above that a multiple of
/// an eighth of the next power of two (at most 12.5% waste).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(MIN_BYTES);
    let pow2 = bytes.next_power_of_two();
    if pow2 <= 1 << 16 {
        return pow2;
    }
    let step = pow2 / 8;
    bytes.div_ceil(step) * step
}

/// Free buffers by size class.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<PoolState>,
    /// Bumped whenever the pool lets buffers go, so caches holding bind groups of pooled
    /// buffers (which keep them alive) know to drop them.
    released: AtomicU64,
}

#[derive(Default)]
struct PoolState {
    by_class: HashMap<u64, Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl BufferPool {
    /// A free buffer of exactly `class` bytes, if one is kept.
    pub(crate) fn take(&self, class: u64) -> Option<wgpu::Buffer> {
        let mut state = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = state.by_class.get_mut(&class)?.pop()?;
        state.bytes -= class;
        Some(buffer)
    }

    /// Keeps `buffer` for reuse, or releases it when the pool is full.
    pub(crate) fn give(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        let mut state = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if state.bytes + class > POOL_LIMIT_BYTES {
            self.released.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.bytes += class;
        state.by_class.entry(class).or_default().push(buffer);
    }

    /// Releases every kept buffer.
    pub(crate) fn clear(&self) {
        let mut state = self.free.lock().unwrap_or_else(|e| e.into_inner());
        state.by_class.clear();
        state.bytes = 0;
        self.released.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the pool has let buffers go (see `released`).
    pub(crate) fn generation(&self) -> u64 {
        self.released.load(Ordering::Relaxed)
    }

    /// Bytes held by free buffers.
    pub(crate) fn bytes(&self) -> u64 {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// A tensor's values on the GPU: `len` f32 values at the start of a pooled buffer (which may
/// be larger). Dropping it returns the buffer to its backend's pool.
pub struct WgpuStorage {
    buffer: Option<wgpu::Buffer>,
    len: usize,
    /// The pool of the backend that made it (and whose device can read it).
    pool: Arc<BufferPool>,
}

impl WgpuStorage {
    pub(crate) fn new(buffer: wgpu::Buffer, len: usize, pool: Arc<BufferPool>) -> Self {
        WgpuStorage { buffer: Some(buffer), len, pool }
    }

    /// Number of f32 values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the storage holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying buffer (its size is the size class, at least `4 * len` bytes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer is only taken in drop")
    }

    /// Whether this storage was made by the backend owning `pool`.
    pub(crate) fn belongs_to(&self, pool: &Arc<BufferPool>) -> bool {
        Arc::ptr_eq(&self.pool, pool)
    }
}

impl fmt::Debug for WgpuStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WgpuStorage").field("len", &self.len).field("bytes", &self.buffer().size()).finish()
    }
}

impl Drop for WgpuStorage {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give(buffer);
        }
    }
}

impl BackendStorage for WgpuStorage {
    fn len(&self) -> usize {
        self.len
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
