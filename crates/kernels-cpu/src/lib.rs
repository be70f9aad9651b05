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
pub mod elementwise;
mod fast_math;
pub mod layout;
pub mod matmul;
#[cfg(target_arch = "x86_64")]
mod matmul_narrow;
pub mod pool;
mod pool_2x2;
pub mod reduce;
pub mod softmax;

pub use buffers::{cached_bytes, clear_buffer_cache};

use std::any::Any;
use std::sync::Arc;
use tensor::shape::{
    BroadcastSpec, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec, NarrowSpec, Pool2dSpec, PoolKind,
    ReduceSpec,
};
use tensor::{
    Backend, BackendStorage, BinaryOp, ConvPoolBackward, ConvPoolGrads, ReduceOp, Result, Storage,
    TensorError, UnaryOp,
};

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
fn store(values: Vec<f32>) -> Storage {
    Arc::new(CpuStorage(values))
}

/// The values of `storage`, or a [`TensorError::Backend`] when it belongs to another backend.
pub fn cpu_slice<'a>(storage: &'a Storage, op: &str) -> Result<&'a [f32]> {
    storage.as_any().downcast_ref::<CpuStorage>().map(CpuStorage::as_slice).ok_or_else(|| {
        TensorError::Backend(format!("{op}: storage is not a CPU buffer (it belongs to another backend)"))
    })
}

/// [`cpu_slice`] plus a length check, so a kernel never indexes out of bounds.
fn input<'a>(storage: &'a Storage, op: &str, what: &str, expected: usize) -> Result<&'a [f32]> {
    let values = cpu_slice(storage, op)?;
    if values.len() != expected {
        return Err(TensorError::Backend(format!(
            "{op}: {what} has {} elements but the spec needs {expected}",
            values.len()
        )));
    }
    Ok(values)
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
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
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

    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, spec: &MatmulSpec) -> Result<Storage> {
        let op = "matmul";
        let a = input(a, op, "lhs", spec.batch * spec.m * spec.k)?;
        let b = input(b, op, "rhs", spec.batch * spec.k * spec.n)?;
        let bias = bias.map(|s| input(s, op, "bias", spec.n)).transpose()?;
        Ok(store(self.run(|| matmul::matmul(a, b, bias, spec))))
    }

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let x = cpu_slice(x, "unary")?;
        Ok(store(self.run(|| elementwise::unary(op, x))))
    }

    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        let name = "unary_backward";
        let x = cpu_slice(x, name)?;
        let y = input(y, name, "y", x.len())?;
        let dy = input(dy, name, "dy", x.len())?;
        Ok(store(self.run(|| elementwise::unary_backward(op, x, y, dy))))
    }

    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let a = cpu_slice(a, "binary")?;
        let b = cpu_slice(b, "binary")?;
        spec.check_reads("binary", "a", a.len(), false)?;
        spec.check_reads("binary", "b", b.len(), true)?;
        Ok(store(self.run(|| elementwise::binary(op, a, b, spec))))
    }

    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage> {
        let a = cpu_slice(a, "scaled_add")?;
        let b = input(b, "scaled_add", "b", a.len())?;
        Ok(store(self.run(|| elementwise::scaled_add(a, b, alpha))))
    }

    fn expand(&self, x: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let x = cpu_slice(x, "expand")?;
        spec.check_reads("expand", "x", x.len(), false)?;
        Ok(store(self.run(|| elementwise::expand(x, spec))))
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, spec: &ReduceSpec) -> Result<Storage> {
        let x = input(x, "reduce", "x", spec.outer * spec.reduced * spec.inner)?;
        Ok(store(self.run(|| reduce::reduce(op, x, spec))))
    }

    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        let x = input(x, "argmax", "x", rows * cols)?;
        Ok(store(self.run(|| reduce::argmax(x, rows, cols))))
    }

    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage> {
        let x = input(x, "softmax", "x", rows * cols)?;
        Ok(store(self.run(|| softmax::softmax(x, rows, cols, log))))
    }

    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Result<Storage> {
        let name = "softmax_backward";
        let y = input(y, name, "y", rows * cols)?;
        let dy = input(dy, name, "dy", rows * cols)?;
        Ok(store(self.run(|| softmax::softmax_backward(y, dy, rows, cols, log))))
    }

    fn softmax_cross_entropy(
        &self,
        logits: &Storage,
        labels: &Storage,
        rows: usize,
        cols: usize,
    ) -> Result<(Storage, Storage)> {
        let name = "softmax_cross_entropy";
        let logits = input(logits, name, "logits", rows * cols)?;
        let labels = input(labels, name, "labels", rows * cols)?;
        let (loss, probs) = self.run(|| softmax::softmax_cross_entropy(logits, labels, rows, cols));
        Ok((store(loss), store(probs)))
    }

    fn conv2d(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &Conv2dSpec,
    ) -> Result<Storage> {
        let op = "conv2d";
        let x = input(x, op, "input", spec.input_shape().numel())?;
        let filter = input(filter, op, "filter", spec.filter_shape().numel())?;
        let bias = bias.map(|s| input(s, op, "bias", spec.out_c)).transpose()?;
        Ok(store(self.run(|| conv2d::conv2d_forward(x, filter, bias, spec))))
    }

    fn conv2d_backward_input(&self, dy: &Storage, filter: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let op = "conv2d_backward_input";
        let dy = input(dy, op, "dy", spec.output_shape().numel())?;
        let filter = input(filter, op, "filter", spec.filter_shape().numel())?;
        Ok(store(self.run(|| conv2d::conv2d_backward_input(dy, filter, spec))))
    }

    fn conv2d_backward_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let op = "conv2d_backward_filter";
        let x = input(x, op, "input", spec.input_shape().numel())?;
        let dy = input(dy, op, "dy", spec.output_shape().numel())?;
        Ok(store(self.run(|| conv2d::conv2d_backward_filter(x, dy, spec))))
    }

    fn pool2d(&self, kind: PoolKind, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        let x = input(x, "pool2d", "input", pool::input_len(spec))?;
        Ok(store(self.run(|| pool::pool2d(kind, x, spec))))
    }

    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        spec: &Pool2dSpec,
    ) -> Result<Storage> {
        let op = "pool2d_backward";
        let x = input(x, op, "input", pool::input_len(spec))?;
        let y = input(y, op, "y", spec.output_shape().numel())?;
        let dy = input(dy, op, "dy", spec.output_shape().numel())?;
        Ok(store(self.run(|| pool::pool2d_backward(kind, x, y, dy, spec))))
    }

    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &ConvPoolSpec,
    ) -> Result<(Storage, Storage)> {
        #[cfg(target_arch = "x86_64")]
        if conv2d_pool::fuses(spec) {
            let (op, conv) = ("conv2d_max_pool", &spec.conv);
            let x = input(x, op, "input", conv.input_shape().numel())?;
            let filter = input(filter, op, "filter", conv.filter_shape().numel())?;
            let bias = bias.map(|s| input(s, op, "bias", conv.out_c)).transpose()?;
            let (pooled, winners) = self.run(|| conv2d_pool::forward(x, filter, bias, spec));
            return Ok((store(pooled), store(winners)));
        }
        tensor::backend::conv2d_max_pool_unfused(self, x, filter, bias, spec)
    }

    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads> {
        #[cfg(target_arch = "x86_64")]
        if conv2d_pool::fuses(args.spec) {
            let (op, spec) = ("conv2d_max_pool_backward", args.spec);
            let x = input(args.x, op, "input", spec.conv.input_shape().numel())?;
            let filter = input(args.filter, op, "filter", spec.conv.filter_shape().numel())?;
            let winners = input(args.saved, op, "saved winners", conv2d_pool::saved_len(spec))?;
            let dpooled = input(args.dpooled, op, "dy", spec.pool.output_shape().numel())?;
            let [dx, dw, db] =
                self.run(|| conv2d_pool::backward(x, filter, winners, dpooled, spec, args.needs));
            return Ok(ConvPoolGrads { input: dx.map(store), filter: dw.map(store), bias: db.map(store) });
        }
        tensor::backend::conv2d_max_pool_backward_unfused(self, args)
    }

    fn concat(&self, parts: &[&Storage], spec: &ConcatSpec) -> Result<Storage> {
        spec.check_part_count(parts.len())?;
        let parts = parts
            .iter()
            .zip(&spec.part_inner)
            .map(|(part, &inner)| input(part, "concat", "part", spec.outer * inner))
            .collect::<Result<Vec<_>>>()?;
        Ok(store(self.run(|| layout::concat(&parts, spec))))
    }

    fn narrow(&self, x: &Storage, spec: &NarrowSpec) -> Result<Storage> {
        let x = input(x, "narrow", "x", spec.outer * spec.inner)?;
        if spec.offset + spec.len > spec.inner {
            return Err(TensorError::Backend(format!(
                "narrow: columns {}..{} exceed the row length {}",
                spec.offset,
                spec.offset + spec.len,
                spec.inner
            )));
        }
        Ok(store(self.run(|| layout::narrow(x, spec))))
    }

    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage> {
        let x = cpu_slice(x, "gather_rows")?;
        let rows = x.len().checked_div(row_len).unwrap_or(0);
        if row_len == 0 || x.len() % row_len != 0 {
            return Err(TensorError::Backend(format!(
                "gather_rows: {} elements are not whole rows of {row_len}",
                x.len()
            )));
        }
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= rows) {
            return Err(TensorError::Backend(format!("gather_rows: row {bad} of {rows} is out of range")));
        }
        Ok(store(self.run(|| layout::gather_rows(x, row_len, indices))))
    }

    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage> {
        let mask = self.run(|| layout::dropout_mask(len, rate, seed))?;
        Ok(store(mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(backend.unary(UnaryOp::Relu, &foreign).is_err());
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        let backend = CpuBackend::with_threads(2).unwrap();
        let a = backend.upload(&[1.0; 6]).unwrap();
        let spec = MatmulSpec { batch: 1, m: 2, k: 3, n: 4, trans_a: false, trans_b: false };
        assert!(backend.matmul(&a, &a, None, &spec).is_err());
        let spec = BroadcastSpec { dims: vec![7], a_strides: vec![1], b_strides: vec![0] };
        assert!(backend.binary(BinaryOp::Add, &a, &a, &spec).is_err());
        assert!(backend.dropout_mask(10, 1.0, 3).is_err());
        assert!(backend.name().starts_with("cpu"));
    }
}
