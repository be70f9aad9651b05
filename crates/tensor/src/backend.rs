//! The contract between tensors and compute: a [`Backend`] owns device memory ([`Storage`])
//! and runs the primitive kernels. Everything above it (shapes, broadcasting rules, autodiff,
//! which kernel a backward pass calls) lives in this crate once, so a backend is only kernels.
//!
//! Storage is contiguous, row-major f32. Kernels never mutate their inputs: each returns new
//! storage, which keeps recorded autodiff graphs valid without copy-on-write bookkeeping.

use crate::error::Result;
use crate::shape::{
    AffineTransformSpec, BroadcastSpec, ChannelSpec, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec,
    NarrowSpec, PermuteSpec, Pool2dSpec, PoolKind, ReduceSpec,
};
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

/// Every op-family trait, to call a backend's kernels directly:
/// `use tensor::backend::prelude::*;`.
pub mod prelude {
    pub use super::{
        Backend, ConvOps, ElementwiseOps, ImageOps, LayoutOps, MatmulOps, MemoryOps, NormOps, PoolOps,
        ReduceOps, SoftmaxOps,
    };
}

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
/// [`ElementwiseOps::unary_backward`] from the input `x`, the output `y` and the incoming
/// gradient.
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
    /// `ln(1 + exp(x))`, computed as `max(x, 0) + ln(1 + exp(-|x|))` so it neither overflows
    /// nor loses the small values; its derivative is `sigmoid(x)`.
    Softplus,
    /// `x` for `x >= 0`, else `negative_slope * x` (the derivative at 0 is taken as 1, as
    /// JAX and TensorFlow take it).
    LeakyRelu {
        /// Slope below zero (Keras' activation default: 0.2).
        negative_slope: f32,
    },
    /// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
    Elu {
        /// Scale of the negative part (Keras' default: 1).
        alpha: f32,
    },
    /// `x * Phi(x)` with `Phi` the standard normal distribution function, through `erf`
    /// (Keras' `gelu`, `approximate=False`).
    Gelu,
    /// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))` (Keras' `gelu(approximate=True)`).
    GeluTanh,
    /// `x * sigmoid(x)` (Keras' `silu`, also named `swish`).
    Silu,
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

/// A compute backend: the op families below, each written once per backend. One graph runs on
/// any implementation unchanged; `kernels-cpu` and `kernels-wgpu` provide the two shipped ones.
///
/// Shapes arrive fully resolved in the `*Spec` structs of [`crate::shape`], and every storage
/// has the length its spec implies: the tensor layer checks shapes once, before it dispatches
/// (a caller of a backend directly must keep to that too). A kernel must return an error rather
/// than panic on a resource failure (memory, a lost device).
pub trait Backend:
    MemoryOps
    + ElementwiseOps
    + ReduceOps
    + SoftmaxOps
    + MatmulOps
    + ConvOps
    + PoolOps
    + LayoutOps
    + ImageOps
    + NormOps
    + Send
    + Sync
    + Debug
{
    /// A short human-readable name, e.g. `"cpu (2 threads)"` or `"wgpu (NVIDIA H100, Vulkan)"`.
    fn name(&self) -> String;
    /// What the backend can do and how it is best driven (see [`Capabilities`]).
    fn capabilities(&self) -> Capabilities;
    /// Runs `work`, a host loop that calls this backend's kernels one after another (a
    /// training run), on the thread where such calls cost least. The default runs it on the
    /// calling thread; the CPU backend runs it on one of its worker threads (see
    /// [`Device::run_host_loop`](crate::Device::run_host_loop)).
    fn run_host_loop(&self, work: &mut (dyn FnMut() + Send)) {
        work()
    }
}

/// What a training loop may ask of a backend instead of guessing from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether reading a value back ([`MemoryOps::download`]) waits for all the work queued
    /// before it, as on a GPU; on the CPU a read is free.
    pub read_waits_for_queued_work: bool,
    /// Steps between reads of the loss that a training loop should use to watch for NaN:
    /// 1 where reads are free, more where each read stalls the device's queue.
    pub loss_check_interval: usize,
    /// Whether [`ConvOps::conv2d_max_pool`] runs fused (no full-size convolution output) for
    /// 2x2 windows that do not overlap; where it is `false`, the op still works, unfused.
    pub fused_conv_pool: bool,
    /// Whether [`NormOps::channel_affine_relu_max_pool`] and a pooled [`ChannelGrad`] run
    /// fused; where it is `false`, [`Tensor::batch_norm_relu_max_pool`](crate::Tensor) composes
    /// a normalization with its ReLU and a separate max pooling instead.
    pub fused_norm_pool: bool,
}

/// Device memory: upload, download, fill.
pub trait MemoryOps {
    /// Copies host data to new device storage.
    fn upload(&self, data: &[f32]) -> Result<Storage>;
    /// Copies device storage back to the host.
    fn download(&self, storage: &Storage) -> Result<Vec<f32>>;
    /// New storage of `len` elements, all equal to `value`.
    fn fill(&self, len: usize, value: f32) -> Result<Storage>;
}

/// Elementwise maps of one or two (broadcast) inputs. Forward and backward of each op:
/// `tensor/src/ops/{unary,binary}.rs`.
pub trait ElementwiseOps {
    /// `f(x)` elementwise.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage>;
    /// `dy * f'(x)` elementwise, where `y = f(x)` is passed too so derivatives that are
    /// cheaper from the output (tanh, sigmoid, exp, sqrt) need not recompute `f`.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage>;
    /// `a op b` with broadcasting; the output is contiguous with `spec.dims`.
    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, spec: &BroadcastSpec) -> Result<Storage>;
    /// `a + alpha * b` elementwise over two buffers of the same length: an SGD step
    /// (`alpha = -learning_rate`) in one pass over memory. Must round like
    /// [`ElementwiseOps::unary`] (`Affine`) then [`ElementwiseOps::binary`] (`Add`).
    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage>;
    /// Materialises `x` read with `spec.a_strides` (0 on broadcast axes) into a contiguous
    /// output of `spec.dims`; `spec.b_strides` is ignored.
    fn expand(&self, x: &Storage, spec: &BroadcastSpec) -> Result<Storage>;
}

/// Reductions over one axis: `tensor/src/ops/reduce.rs`.
pub trait ReduceOps {
    /// Reduces `[outer, reduced, inner]` to `[outer, inner]`.
    fn reduce(&self, op: ReduceOp, x: &Storage, spec: &ReduceSpec) -> Result<Storage>;
    /// Index of the largest value of each row of `[rows, cols]` (the first one on ties), as f32.
    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage>;
}

/// Softmax and the fused softmax cross-entropy: `tensor/src/ops/softmax.rs`.
pub trait SoftmaxOps {
    /// Softmax (or log-softmax when `log`) over each row of `[rows, cols]`, max-subtracted.
    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage>;
    /// Gradient of [`SoftmaxOps::softmax`] from its output `y` and the incoming gradient `dy`.
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
}

/// Matrix products: `tensor/src/ops/matmul.rs`.
pub trait MatmulOps {
    /// `C = op(A) op(B)` (+ `bias` of length `n` added to every row of each product).
    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, spec: &MatmulSpec) -> Result<Storage>;
}

/// Convolutions, alone and fused with the max pooling after them: `tensor/src/ops/conv.rs`
/// and `conv_pool.rs`.
pub trait ConvOps {
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
    /// Convolution (plus bias) followed by max pooling (and a ReLU where `spec.relu`), as one
    /// op: the pooled output and what the backward pass needs ([`ConvPoolSaved`]). A backend
    /// that cannot fuse a shape runs [`conv2d_max_pool_unfused`]; a fused kernel keeps each
    /// window's winner and never writes the full-size output to memory (on an MNIST network's
    /// first layer that output is 4x the pooled one and, written, read and differentiated,
    /// dominates the layer's time).
    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &ConvPoolSpec,
    ) -> Result<(Storage, ConvPoolSaved)>;
    /// Gradients of [`ConvOps::conv2d_max_pool`], each only where `args.needs` asks; a
    /// [`ConvPoolSaved::ConvOutput`] goes to [`conv2d_max_pool_backward_unfused`].
    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads>;
}

/// Pooling: `tensor/src/ops/pool.rs`.
pub trait PoolOps {
    /// 2-D pooling over NHWC input.
    fn pool2d(&self, kind: PoolKind, x: &Storage, spec: &Pool2dSpec) -> Result<Storage>;
    /// Gradient of [`PoolOps::pool2d`]; max pooling sends each window's gradient to its first
    /// maximum.
    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        spec: &Pool2dSpec,
    ) -> Result<Storage>;
}

/// Moving data: joining, slicing, gathering rows, dropout masks: `tensor/src/ops/layout.rs`.
pub trait LayoutOps {
    /// Concatenates parts `[outer, part_inner[i]]` into `[outer, sum]`.
    fn concat(&self, parts: &[&Storage], spec: &ConcatSpec) -> Result<Storage>;
    /// Columns `offset..offset+len` of `[outer, inner]`.
    fn narrow(&self, x: &Storage, spec: &NarrowSpec) -> Result<Storage>;
    /// Rows `indices[i]` of `x` viewed as `[rows, row_len]`, stacked into
    /// `[indices.len(), row_len]` (every index is a row of `x`). Lets a training loop keep the
    /// whole data set on the device and send only the batch's indices each step.
    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage>;
    /// Dropout scaling mask: element `i` is `1 / (1 - rate)` if
    /// [`crate::random::uniform`]`(seed, i) >= rate`, else 0. Counter-based, so every backend
    /// draws the same mask for the same seed.
    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage>;
    /// The input with its axes permuted: output element `i` is input element
    /// [`PermuteSpec::source`]`(i)`.
    fn permute(&self, x: &Storage, spec: &PermuteSpec) -> Result<Storage>;
}

/// Per-channel statistics and maps for normalization layers (`BatchNormalization`):
/// `tensor/src/ops/norm.rs`. Tensors are viewed as `[outer, channels, inner]`
/// ([`ChannelSpec`]); statistics run over `outer` and `inner`. Each is one pass over memory, so
/// a normalization costs a few passes rather than a chain of broadcasts and reductions.
pub trait NormOps {
    /// Each channel's mean and biased variance (divided by the count), as one `[2, channels]`
    /// storage: the means, then the variances. Must be accurate for data far from zero
    /// (no `E[x^2] - E[x]^2` over the whole channel in f32).
    fn channel_moments(&self, x: &Storage, spec: &ChannelSpec) -> Result<Storage>;
    /// `x * scale[c] + shift[c]`, with `scale` and `shift` of `[channels]`; then `max(0, .)`
    /// when `relu` (a normalization and the ReLU after it in one pass).
    fn channel_affine(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        relu: bool,
        spec: &ChannelSpec,
    ) -> Result<Storage>;
    /// Per channel, `sum(g * (x - center[c]))` and `sum(g)` as one `[2, channels]` storage,
    /// with `g` the [`ChannelGrad`] (no `center`: 0). With `center` the channel's mean, these
    /// are batch normalization's gradients of `gamma` (times the standard deviation) and
    /// `beta`; without, those of [`NormOps::channel_affine`]'s `scale` and `shift`.
    fn channel_sums(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        center: Option<&Storage>,
        spec: &ChannelSpec,
    ) -> Result<Storage>;
    /// `g * g_scale[c] + x * x_scale[c] + shift[c]`, with `g` the [`ChannelGrad`]: batch
    /// normalization's input gradient in one pass.
    fn channel_affine_pair(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        coefficients: ChannelCoefficients<'_>,
        spec: &ChannelSpec,
    ) -> Result<Storage>;
    /// `maxpool(max(0, x * scale[c] + shift[c]))` of the NHWC `x` by `pool` (2x2 windows
    /// tiling it: [`Pool2dSpec::tiles_2x2`]), without the full-size map in memory: a
    /// normalization, its ReLU and the max pooling after them. The map is
    /// [`NormOps::channel_affine`]'s f32 arithmetic and the pooling keeps the first maximum in
    /// scan order, so the output is theirs bit for bit. Returns the pooled output and, for
    /// each pooled value, which element of its window won, in the backend's own encoding
    /// (none where the ReLU cut the maximum to 0): the [`PooledGrad`] of the backward pass. A
    /// backend that does not fuse this ([`Capabilities::fused_norm_pool`]) refuses with
    /// [`TensorError::Unsupported`](crate::TensorError::Unsupported).
    fn channel_affine_relu_max_pool(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        pool: &Pool2dSpec,
    ) -> Result<(Storage, Storage)>;
}

/// The channels-last [`ChannelSpec`] of a pooling's NHWC input.
pub fn pool_channels(pool: &Pool2dSpec) -> ChannelSpec {
    ChannelSpec { outer: pool.batch * pool.in_h * pool.in_w, channels: pool.channels, inner: 1 }
}

/// The gradient a normalization's backward pass starts from: `dy`, or, when a ReLU followed
/// the normalization in the same op, `dy` where the ReLU's output was positive and 0
/// elsewhere; or, when a max pooling followed that ReLU too, the pooled gradient `dy` at each
/// window's winner (where positive) and 0 elsewhere.
#[derive(Clone, Copy)]
pub struct ChannelGrad<'a> {
    /// The gradient of the op's output.
    pub dy: &'a Storage,
    /// When a ReLU was fused: the forward map's `[2, channels]` coefficients, its scales then
    /// its shifts. `dy` counts where `x * scale[c] + shift[c] > 0`, the ReLU's input computed
    /// again from `x` (which both kernels read anyway) in the forward kernel's f32 arithmetic,
    /// so the mask is the output's, at one tensor read less than reading the output.
    pub relu_gate: Option<&'a Storage>,
    /// When a 2x2 max pooling followed the ReLU in the same op
    /// ([`NormOps::channel_affine_relu_max_pool`]): `dy` is then the pooled gradient, and
    /// the gradient of the normalization's output at a pixel is `dy` of its window where the
    /// pixel is the window's winner and the ReLU passed it, else 0: what the pooling's and the
    /// ReLU's backward passes would hand it, never written out.
    pub pooled: Option<PooledGrad<'a>>,
}

/// The pooling of a [`ChannelGrad`]: its shapes and the winners the forward pass recorded.
#[derive(Clone, Copy)]
pub struct PooledGrad<'a> {
    /// The pooling (2x2 windows tiling the input: [`Pool2dSpec::tiles_2x2`]).
    pub pool: &'a Pool2dSpec,
    /// What [`NormOps::channel_affine_relu_max_pool`] returned beside the pooled output.
    pub winners: &'a Storage,
}

impl ChannelGrad<'_> {
    /// The gradient `dy` of a normalization not followed by a ReLU.
    pub fn plain(dy: &Storage) -> ChannelGrad<'_> {
        ChannelGrad { dy, relu_gate: None, pooled: None }
    }

    /// Checks that the gate, if any, holds `[2, channels]` values for `spec`, and that a
    /// pooling, if any, pools `spec`'s channels-last tensor in 2x2 windows into `dy` and has a
    /// winner for each pooled value: each backend calls this before its kernels index the
    /// gate by channel.
    pub fn check_gate(&self, spec: &ChannelSpec, op: &str) -> Result<()> {
        let invalid = |why: String| Err(crate::TensorError::InvalidArgument(format!("{op}: {why}")));
        if let Some(gate) = self.relu_gate.filter(|g| g.len() != 2 * spec.channels) {
            return invalid(format!(
                "the ReLU gate holds {} values, not 2 x {} channels",
                gate.len(),
                spec.channels
            ));
        }
        let Some(PooledGrad { pool, winners }) = self.pooled else { return Ok(()) };
        if !pool.tiles_2x2() || pool_channels(pool) != *spec {
            return invalid(format!("a pooled gradient needs 2x2 windows tiling {spec:?}, not {pool}"));
        }
        let pooled = pool.output_shape().numel();
        for (what, len) in [("pooled gradient", self.dy.len()), ("winners", winners.len())] {
            if len != pooled {
                return invalid(format!("the {what} holds {len} values, not the {pooled} of {pool}"));
            }
        }
        Ok(())
    }

    /// Refuses a pooled gradient, for a backend that does not fuse the pooling (see
    /// [`Capabilities::fused_norm_pool`]).
    pub fn refuse_pooled(&self, op: &str) -> Result<()> {
        match self.pooled {
            Some(PooledGrad { pool, .. }) => Err(crate::TensorError::Unsupported(format!(
                "{op}: a gradient pooled by {pool} (the backend does not fuse normalization and pooling)"
            ))),
            None => Ok(()),
        }
    }
}

/// The three `[channels]` coefficients of [`NormOps::channel_affine_pair`].
#[derive(Clone, Copy)]
pub struct ChannelCoefficients<'a> {
    /// Multiplies the gradient.
    pub g_scale: &'a Storage,
    /// Multiplies `x`.
    pub x_scale: &'a Storage,
    /// Added.
    pub shift: &'a Storage,
}

/// Image resampling for augmentation: `tensor/src/ops/image.rs`.
pub trait ImageOps {
    /// Resamples each NHWC image through its transform (`transforms` is
    /// `[batch, TRANSFORM_LEN]`): output pixel `(y, x)` reads the input at
    /// [`AffineTransformSpec::source`], interpolated and filled as `spec` says
    /// ([`crate::shape::FillMode::index`] for each tap).
    fn affine_transform(
        &self,
        x: &Storage,
        transforms: &Storage,
        spec: &AffineTransformSpec,
    ) -> Result<Storage>;
}

/// What a fused convolution + max pooling keeps for its backward pass; the variant says which
/// path the forward pass took, so the backward pass need not work it out again.
#[derive(Clone, Debug)]
pub enum ConvPoolSaved {
    /// The convolution's full output (the unfused path, [`conv2d_max_pool_unfused`]).
    ConvOutput(Storage),
    /// For each pooled output, which element of its window won (its index in scan order, in
    /// the backend's own encoding): all a fused kernel keeps.
    Winners(Storage),
}

/// What [`ConvOps::conv2d_max_pool_backward`] receives.
#[derive(Clone, Copy, Debug)]
pub struct ConvPoolBackward<'a> {
    /// The convolution's input.
    pub x: &'a Storage,
    /// The filter.
    pub filter: &'a Storage,
    /// The pooled output of the forward pass.
    pub pooled: &'a Storage,
    /// What the forward pass saved.
    pub saved: &'a ConvPoolSaved,
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

/// [`ConvOps::conv2d_max_pool`] from the unfused kernels: what a backend runs for the shapes
/// its fused kernel does not take. Saves the convolution's output.
pub fn conv2d_max_pool_unfused<B: Backend + ?Sized>(
    backend: &B,
    x: &Storage,
    filter: &Storage,
    bias: Option<&Storage>,
    spec: &ConvPoolSpec,
) -> Result<(Storage, ConvPoolSaved)> {
    let y = backend.conv2d(x, filter, bias, &spec.conv)?;
    let pooled = backend.pool2d(PoolKind::Max, &y, &spec.pool)?;
    let pooled = if spec.relu { backend.unary(UnaryOp::Relu, &pooled)? } else { pooled };
    Ok((pooled, ConvPoolSaved::ConvOutput(y)))
}

/// [`ConvOps::conv2d_max_pool_backward`] from the unfused kernels, for the convolution's
/// output `conv_output` that [`conv2d_max_pool_unfused`] saved.
pub fn conv2d_max_pool_backward_unfused<B: Backend + ?Sized>(
    backend: &B,
    args: &ConvPoolBackward<'_>,
    conv_output: &Storage,
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
    let dy = backend.pool2d_backward(PoolKind::Max, conv_output, args.pooled, dpooled, &args.spec.pool)?;
    let sum_spec = ReduceSpec { outer: 1, reduced: spec.batch * spec.out_h * spec.out_w, inner: spec.out_c };
    Ok(ConvPoolGrads {
        input: input.then(|| backend.conv2d_backward_input(&dy, args.filter, spec)).transpose()?,
        filter: filter.then(|| backend.conv2d_backward_filter(args.x, &dy, spec)).transpose()?,
        bias: bias.then(|| backend.reduce(ReduceOp::Sum, &dy, &sum_spec)).transpose()?,
    })
}
