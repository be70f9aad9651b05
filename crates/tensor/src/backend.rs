//! The contract between tensors and compute: a [`Backend`] owns device memory ([`Storage`])
//! and runs the primitive kernels. Everything above it (shapes, broadcasting rules, autodiff,
//! which kernel a backward pass calls) lives in this crate once, so a backend is only kernels.
//!
//! Storage is contiguous, row-major f32. Kernels never mutate their inputs: each returns new
//! storage, which keeps recorded autodiff graphs valid without copy-on-write bookkeeping.

use crate::error::Result;
use crate::shape::{
    BroadcastSpec, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec, NarrowSpec, Pool2dSpec, PoolKind,
    ReduceSpec,
};
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

/// A backend's buffer of f32 values. Backends downcast it to their own type with `as_any`.
pub trait BackendStorage: Any + Send + Sync + Debug {
    /// Number of f32 elements.
    fn len(&self) -> usize;
    /// Whether the buffer holds no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// For downcasting to the backend's concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// Shared, immutable device memory.
pub type Storage = Arc<dyn BackendStorage>;

/// Elementwise functions of one input. Their derivatives are computed by
/// [`Backend::unary_backward`] from the input `x`, the output `y` and the incoming gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `max(x, 0)`; the derivative at 0 is taken as 0.
    Relu,
    /// `tanh(x)`
    Tanh,
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `exp(x)`
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `x * x`
    Square,
    /// `|x|`; the derivative at 0 is taken as 0.
    Abs,
    /// `x * scale + shift`
    Affine {
        /// Multiplier.
        scale: f32,
        /// Added after scaling.
        shift: f32,
    },
    /// `min(max(x, min), max)`; the gradient passes only strictly inside the range.
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

/// Elementwise functions of two broadcast inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Maximum,
    /// `min(a, b)`
    Minimum,
    /// `1.0` where `a == b`, else `0.0` (not differentiable).
    Equal,
    /// `1.0` where `a >= b`, else `0.0` (not differentiable).
    GreaterEqual,
}

/// Reductions over one (merged) axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the values.
    Sum,
    /// Largest value.
    Max,
}

/// A compute backend. One graph runs on any implementation unchanged; `kernels-cpu` and
/// `kernels-wgpu` provide the two shipped ones. Shapes arrive fully resolved in the `*Spec`
/// structs of [`crate::shape`]; a kernel may assume its inputs have the lengths a spec implies
/// (the tensor layer checks them), but must return an error rather than panic on a resource
/// failure.
pub trait Backend: Send + Sync + Debug {
    /// A short human-readable name, e.g. `"cpu"` or `"wgpu (NVIDIA H100, Vulkan)"`.
    fn name(&self) -> String;

    /// Copies host data to new device storage.
    fn upload(&self, data: &[f32]) -> Result<Storage>;
    /// Copies device storage back to the host.
    fn download(&self, storage: &Storage) -> Result<Vec<f32>>;
    /// New storage of `len` elements, all equal to `value`.
    fn fill(&self, len: usize, value: f32) -> Result<Storage>;

    /// `C = op(A) op(B)` (+ `bias` of length `n` added to every row of each product).
    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, spec: &MatmulSpec) -> Result<Storage>;

    /// `f(x)` elementwise.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage>;
    /// `dy * f'(x)` elementwise, where `y = f(x)` is passed too so derivatives that are
    /// cheaper from the output (tanh, sigmoid, exp, sqrt) need not recompute `f`.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage>;
    /// `a op b` with broadcasting; the output is contiguous with `spec.dims`.
    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, spec: &BroadcastSpec) -> Result<Storage>;
    /// `a + alpha * b` elementwise over two buffers of the same length: an SGD step
    /// (`alpha = -learning_rate`) in one pass over memory instead of two. Rounds like
    /// [`Backend::unary`] (`Affine`) then [`Backend::binary`] (`Add`), which is the default.
    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage> {
        let scaled = self.unary(UnaryOp::Affine { scale: alpha, shift: 0.0 }, b)?;
        let spec = BroadcastSpec { dims: vec![a.len()], a_strides: vec![1], b_strides: vec![1] };
        self.binary(BinaryOp::Add, a, &scaled, &spec)
    }
    /// Materialises `x` read with `spec.a_strides` (0 on broadcast axes) into a contiguous
    /// output of `spec.dims`; `spec.b_strides` is ignored.
    fn expand(&self, x: &Storage, spec: &BroadcastSpec) -> Result<Storage>;
    /// Reduces `[outer, reduced, inner]` to `[outer, inner]`.
    fn reduce(&self, op: ReduceOp, x: &Storage, spec: &ReduceSpec) -> Result<Storage>;
    /// Index of the largest value of each row of `[rows, cols]` (the first one on ties), as f32.
    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage>;

    /// Softmax (or log-softmax when `log`) over each row of `[rows, cols]`, max-subtracted.
    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage>;
    /// Gradient of [`Backend::softmax`] from its output `y` and the incoming gradient `dy`.
    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Result<Storage>;
    /// Fused, numerically stable `-sum(labels * log_softmax(logits))` per row of
    /// `[rows, cols]`. Returns `(loss per row [rows], softmax(logits) [rows, cols])`; the
    /// probabilities are what the backward pass needs (`probs - labels`).
    fn softmax_cross_entropy(
        &self,
        logits: &Storage,
        labels: &Storage,
        rows: usize,
        cols: usize,
    ) -> Result<(Storage, Storage)>;

    /// 2-D convolution, NHWC input and HWIO filter, plus an optional per-channel bias.
    fn conv2d(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &Conv2dSpec,
    ) -> Result<Storage>;
    /// Gradient of the convolution with respect to its input.
    fn conv2d_backward_input(&self, dy: &Storage, filter: &Storage, spec: &Conv2dSpec) -> Result<Storage>;
    /// Gradient of the convolution with respect to its filter (HWIO).
    fn conv2d_backward_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage>;

    /// 2-D pooling over NHWC input.
    fn pool2d(&self, kind: PoolKind, x: &Storage, spec: &Pool2dSpec) -> Result<Storage>;
    /// Gradient of [`Backend::pool2d`]; max pooling sends each window's gradient to its first
    /// maximum.
    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        spec: &Pool2dSpec,
    ) -> Result<Storage>;

    /// Convolution (plus bias) followed by max pooling (and a ReLU where `spec.relu`), as one
    /// op: returns `(pooled, saved)`, where `saved` is whatever this backend's
    /// [`Backend::conv2d_max_pool_backward`] needs.
    /// The default runs [`Backend::conv2d`] then [`Backend::pool2d`] and saves the
    /// convolution's output; a backend can instead keep each window's winner and never write
    /// the full-size output to memory (on an MNIST network's first layer that output is 4x
    /// the pooled one and, written, read and differentiated, dominates the layer's time).
    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &ConvPoolSpec,
    ) -> Result<(Storage, Storage)> {
        conv2d_max_pool_unfused(self, x, filter, bias, spec)
    }
    /// Gradients of [`Backend::conv2d_max_pool`], each only where `args.needs` asks.
    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads> {
        conv2d_max_pool_backward_unfused(self, args)
    }

    /// Concatenates parts `[outer, part_inner[i]]` into `[outer, sum]`.
    fn concat(&self, parts: &[&Storage], spec: &ConcatSpec) -> Result<Storage>;
    /// Columns `offset..offset+len` of `[outer, inner]`.
    fn narrow(&self, x: &Storage, spec: &NarrowSpec) -> Result<Storage>;
    /// Rows `indices[i]` of `x` viewed as `[rows, row_len]`, stacked into
    /// `[indices.len(), row_len]`. Lets a training loop keep the whole data set on the device
    /// and send only the batch's indices each step. An index past the last row is an error.
    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage>;

    /// Dropout scaling mask: element `i` is `1 / (1 - rate)` if
    /// [`crate::random::uniform`]`(seed, i) >= rate`, else 0. Counter-based, so every backend
    /// draws the same mask for the same seed.
    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage>;
}

/// What [`Backend::conv2d_max_pool_backward`] receives.
#[derive(Clone, Copy, Debug)]
pub struct ConvPoolBackward<'a> {
    /// The convolution's input.
    pub x: &'a Storage,
    /// The filter.
    pub filter: &'a Storage,
    /// The pooled output of the forward pass.
    pub pooled: &'a Storage,
    /// What the forward pass saved (backend-specific).
    pub saved: &'a Storage,
    /// Gradient of the loss with respect to the pooled output.
    pub dpooled: &'a Storage,
    /// The shapes.
    pub spec: &'a ConvPoolSpec,
    /// Which gradients are wanted: input, filter, bias.
    pub needs: [bool; 3],
}

/// Gradients of a fused convolution + max pooling; `None` where not asked for.
#[derive(Debug, Default)]
pub struct ConvPoolGrads {
    /// With respect to the convolution's input (NHWC).
    pub input: Option<Storage>,
    /// With respect to the filter (HWIO).
    pub filter: Option<Storage>,
    /// With respect to the bias (`[out_c]`).
    pub bias: Option<Storage>,
}

/// [`Backend::conv2d_max_pool`] from the unfused kernels (the trait's default, and a fused
/// backend's fallback for shapes its kernel does not take). Saves the convolution's output.
pub fn conv2d_max_pool_unfused<B: Backend + ?Sized>(
    backend: &B,
    x: &Storage,
    filter: &Storage,
    bias: Option<&Storage>,
    spec: &ConvPoolSpec,
) -> Result<(Storage, Storage)> {
    let y = backend.conv2d(x, filter, bias, &spec.conv)?;
    let pooled = backend.pool2d(PoolKind::Max, &y, &spec.pool)?;
    let pooled = if spec.relu { backend.unary(UnaryOp::Relu, &pooled)? } else { pooled };
    Ok((pooled, y))
}

/// [`Backend::conv2d_max_pool_backward`] from the unfused kernels, for a `saved` made by
/// [`conv2d_max_pool_unfused`] (the convolution's output).
pub fn conv2d_max_pool_backward_unfused<B: Backend + ?Sized>(
    backend: &B,
    args: &ConvPoolBackward<'_>,
) -> Result<ConvPoolGrads> {
    let (spec, [input, filter, bias]) = (&args.spec.conv, args.needs);
    // The ReLU passes gradient where its output is positive. (Max pooling's gradient finds
    // each window's winner in the convolution's output, so the pooled values it is handed
    // may be after the ReLU.)
    let relu_grad;
    let dpooled = if args.spec.relu {
        relu_grad = backend.unary_backward(UnaryOp::Relu, args.pooled, args.pooled, args.dpooled)?;
        &relu_grad
    } else {
        args.dpooled
    };
    let dy = backend.pool2d_backward(PoolKind::Max, args.saved, args.pooled, dpooled, &args.spec.pool)?;
    let sum_spec = ReduceSpec { outer: 1, reduced: spec.batch * spec.out_h * spec.out_w, inner: spec.out_c };
    Ok(ConvPoolGrads {
        input: input.then(|| backend.conv2d_backward_input(&dy, args.filter, spec)).transpose()?,
        filter: filter.then(|| backend.conv2d_backward_filter(args.x, &dy, spec)).transpose()?,
        bias: bias.then(|| backend.reduce(ReduceOp::Sum, &dy, &sum_spec)).transpose()?,
    })
}
