//! Shapes and the shape arithmetic every backend shares: broadcasting, reductions,
//! convolution and pooling geometry. Kernels receive fully resolved specs from here,
//! so no backend ever recomputes (or disagrees about) an output size or a padding.

mod channels;
mod describe;
mod image;
mod permute;

pub use channels::ChannelSpec;
pub use image::{AffineTransformSpec, FillMode, Interpolation, COORDINATE_LIMIT, TRANSFORM_LEN};
pub use permute::{PermuteSpec, MAX_PERMUTE_RANK};

use crate::error::{Result, TensorError};
use std::fmt;

/// The dimensions of a row-major tensor. Images are NHWC, convolution kernels HWIO (Keras' layouts).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }
    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// Resolves a possibly negative axis (-1 is the last) against this rank.
    pub fn axis(&self, axis: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(TensorError::InvalidAxis { axis, shape: self.clone() });
        }
        Ok(resolved as usize)
    }
    /// Splits the shape around `axis` into (product before, the axis, product after).
    pub fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.0[..axis].iter().product();
        let inner = self.0[axis + 1..].iter().product();
        (outer, self.0[axis], inner)
    }
    /// Size of the last dimension and the product of all others (rows, cols).
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.0.split_last() {
            Some((&cols, rest)) => (rest.iter().product(), cols),
            None => (1, 1),
        }
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<&Shape> for Shape {
    fn from(v: &Shape) -> Self {
        v.clone()
    }
}

/// How an elementwise binary op reads its two inputs. The output is contiguous with
/// dimensions `dims`; `a_strides` / `b_strides` are element strides into each input, 0 along a
/// broadcast dimension. Adjacent dimensions that can be merged are merged, so most specs have
/// one to three dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastSpec {
    /// Output dimensions after merging.
    pub dims: Vec<usize>,
    /// Element strides into `a`.
    pub a_strides: Vec<usize>,
    /// Element strides into `b`.
    pub b_strides: Vec<usize>,
}

impl BroadcastSpec {
    /// Number of output elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Checks that every offset the `a` side (`b` when `side_b`) can read lies inside an
    /// input of `len` elements, so a backend rejects a bad spec instead of reading past a
    /// buffer. `op` and `what` name the kernel and operand in the error.
    pub fn check_reads(&self, op: &str, what: &str, len: usize, side_b: bool) -> crate::Result<()> {
        let strides = if side_b { &self.b_strides } else { &self.a_strides };
        if self.dims.len() != strides.len() {
            return Err(crate::TensorError::Backend(format!(
                "{op}: {} dims but {} strides for {what}",
                self.dims.len(),
                strides.len()
            )));
        }
        if self.dims.contains(&0) {
            return Ok(());
        }
        let last: usize = self.dims.iter().zip(strides).map(|(&d, &s)| (d - 1) * s).sum();
        if last >= len {
            return Err(crate::TensorError::Backend(format!(
                "{op}: the broadcast reads {what} up to element {last} but it has {len}"
            )));
        }
        Ok(())
    }
    /// Maps an output linear index to the input offsets (a, b). Reference path for kernels.
    pub fn offsets(&self, mut linear: usize) -> (usize, usize) {
        let (mut ia, mut ib) = (0, 0);
        for d in (0..self.dims.len()).rev() {
            let i = linear % self.dims[d];
            linear /= self.dims[d];
            ia += i * self.a_strides[d];
            ib += i * self.b_strides[d];
        }
        (ia, ib)
    }
}

/// NumPy broadcasting of two shapes: the output shape and how each input is read.
pub fn broadcast(a: &Shape, b: &Shape) -> Result<(Shape, BroadcastSpec)> {
    let rank = a.rank().max(b.rank());
    let pad = |s: &Shape| -> Vec<usize> {
        let mut v = vec![1; rank - s.rank()];
        v.extend_from_slice(s.dims());
        v
    };
    let (ad, bd) = (pad(a), pad(b));
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let d = match (ad[i], bd[i]) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(TensorError::ShapeMismatch { op: "broadcast", lhs: a.clone(), rhs: b.clone() }),
        };
        out.push(d);
    }
    let strides_of = |d: &[usize]| -> Vec<usize> {
        let mut s = vec![0; rank];
        let mut acc = 1;
        for i in (0..rank).rev() {
            s[i] = if d[i] == 1 { 0 } else { acc };
            acc *= d[i];
        }
        s
    };
    let (sa, sb) = (strides_of(&ad), strides_of(&bd));
    // Merge dimension i into i+1 (its inner neighbour) when both inputs step through them
    // as one contiguous run; drop size-1 dimensions.
    let mut dims: Vec<usize> = Vec::new();
    let mut a_strides: Vec<usize> = Vec::new();
    let mut b_strides: Vec<usize> = Vec::new();
    for i in 0..rank {
        if out[i] == 1 {
            continue;
        }
        if let Some(last) = dims.len().checked_sub(1) {
            let merges = |prev_stride: usize, stride: usize| prev_stride == stride * out[i];
            if merges(a_strides[last], sa[i]) && merges(b_strides[last], sb[i]) {
                dims[last] *= out[i];
                a_strides[last] = sa[i];
                b_strides[last] = sb[i];
                continue;
            }
        }
        dims.push(out[i]);
        a_strides.push(sa[i]);
        b_strides.push(sb[i]);
    }
    if dims.is_empty() {
        dims.push(1);
        a_strides.push(0);
        b_strides.push(0);
    }
    Ok((Shape(out), BroadcastSpec { dims, a_strides, b_strides }))
}

/// A reduction over the middle axis of an input viewed as `[outer, reduced, inner]`;
/// the output is `[outer, inner]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceSpec {
    /// Product of the dimensions before the reduced ones.
    pub outer: usize,
    /// Product of the reduced dimensions.
    pub reduced: usize,
    /// Product of the dimensions after the reduced ones.
    pub inner: usize,
}

/// A matrix product `C[batch, m, n] = op(A)[batch, m, k] * op(B)[batch, k, n]`, where `op`
/// transposes an operand stored as `[k, m]` (A) or `[n, k]` (B) when its flag is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulSpec {
    /// Number of independent products; both operands hold `batch` matrices back to back.
    pub batch: usize,
    /// Rows of the output.
    pub m: usize,
    /// The contracted dimension.
    pub k: usize,
    /// Columns of the output.
    pub n: usize,
    /// A is stored `[k, m]`.
    pub trans_a: bool,
    /// B is stored `[n, k]`.
    pub trans_b: bool,
}

impl MatmulSpec {
    /// Floating-point operations of the product (2 per multiply-add).
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.m * self.k * self.n) as f64
    }
}

/// Keras padding modes for convolution and pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: windows lie wholly inside the input.
    Valid,
    /// Zero padding so that the output is `ceil(input / stride)`; TensorFlow puts the odd
    /// extra row/column at the bottom/right.
    Same,
}

/// Output length and leading padding of one spatial axis, as Keras/TensorFlow compute them.
pub fn window_geometry(
    input: usize,
    window: usize,
    stride: usize,
    padding: Padding,
) -> Result<(usize, usize)> {
    if window == 0 || stride == 0 {
        return Err(TensorError::InvalidArgument(format!(
            "window {window} and stride {stride} must be positive"
        )));
    }
    match padding {
        Padding::Valid => {
            if input < window {
                return Err(TensorError::InvalidArgument(format!(
                    "window {window} is larger than the input {input} with 'valid' padding"
                )));
            }
            Ok(((input - window) / stride + 1, 0))
        }
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + window).saturating_sub(input);
            Ok((out, total / 2))
        }
    }
}

/// A 2-D convolution, fully resolved: input NHWC `[batch, in_h, in_w, in_c]`, filter HWIO
/// `[kernel_h, kernel_w, in_c, out_c]`, output NHWC `[batch, out_h, out_w, out_c]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels (filters).
    pub out_c: usize,
    /// Filter height.
    pub kernel_h: usize,
    /// Filter width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
}

impl Conv2dSpec {
    /// Resolves a convolution of `input` (NHWC) with `filter` (HWIO).
    pub fn new(input: &Shape, filter: &Shape, strides: (usize, usize), padding: Padding) -> Result<Self> {
        let (&[batch, in_h, in_w, in_c], &[kernel_h, kernel_w, f_in, out_c]) = (input.dims(), filter.dims())
        else {
            return Err(TensorError::ShapeMismatch {
                op: "conv2d (input must be NHWC, filter HWIO)",
                lhs: input.clone(),
                rhs: filter.clone(),
            });
        };
        if f_in != in_c {
            return Err(TensorError::ShapeMismatch {
                op: "conv2d (filter input channels must equal image channels)",
                lhs: input.clone(),
                rhs: filter.clone(),
            });
        }
        let (out_h, pad_top) = window_geometry(in_h, kernel_h, strides.0, padding)?;
        let (out_w, pad_left) = window_geometry(in_w, kernel_w, strides.1, padding)?;
        Ok(Conv2dSpec {
            batch,
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c,
            kernel_h,
            kernel_w,
            stride_h: strides.0,
            stride_w: strides.1,
            pad_top,
            pad_left,
        })
    }
    /// Output shape, NHWC.
    pub fn output_shape(&self) -> Shape {
        Shape(vec![self.batch, self.out_h, self.out_w, self.out_c])
    }
    /// Input shape, NHWC.
    pub fn input_shape(&self) -> Shape {
        Shape(vec![self.batch, self.in_h, self.in_w, self.in_c])
    }
    /// Filter shape, HWIO.
    pub fn filter_shape(&self) -> Shape {
        Shape(vec![self.kernel_h, self.kernel_w, self.in_c, self.out_c])
    }
    /// Length of one im2col row: the filter's receptive field.
    pub fn patch_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.in_c
    }
    /// Floating-point operations of the forward pass (each backward pass costs the same).
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_h * self.out_w * self.out_c * self.patch_len()) as f64
    }
}

/// The pooling reductions Keras offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Largest value of the window (padding never wins).
    Max,
    /// Mean of the window's in-bounds values (padding not counted, as in TensorFlow).
    Average,
    /// Euclidean norm of the window's values: `sqrt(sum x^2)`.
    L2,
}

/// A 2-D pooling, fully resolved, over NHWC input `[batch, in_h, in_w, channels]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels (pooled independently).
    pub channels: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Window height.
    pub pool_h: usize,
    /// Window width.
    pub pool_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Rows of padding above.
    pub pad_top: usize,
    /// Columns of padding on the left.
    pub pad_left: usize,
}

impl Pool2dSpec {
    /// Resolves a pooling of `input` (NHWC).
    pub fn new(
        input: &Shape,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Self> {
        let &[batch, in_h, in_w, channels] = input.dims() else {
            return Err(TensorError::InvalidArgument(format!(
                "pooling needs an NHWC input of rank 4, got {input}"
            )));
        };
        let (out_h, pad_top) = window_geometry(in_h, pool.0, strides.0, padding)?;
        let (out_w, pad_left) = window_geometry(in_w, pool.1, strides.1, padding)?;
        Ok(Pool2dSpec {
            batch,
            in_h,
            in_w,
            channels,
            out_h,
            out_w,
            pool_h: pool.0,
            pool_w: pool.1,
            stride_h: strides.0,
            stride_w: strides.1,
            pad_top,
            pad_left,
        })
    }
    /// Output shape, NHWC.
    pub fn output_shape(&self) -> Shape {
        Shape(vec![self.batch, self.out_h, self.out_w, self.channels])
    }
    /// Whether the windows are 2x2 with stride 2 and no padding and tile the input exactly
    /// (even height and width): Keras' default `MaxPooling2D()` on even sizes.
    pub fn tiles_2x2(&self) -> bool {
        (self.pool_h, self.pool_w, self.stride_h, self.stride_w) == (2, 2, 2, 2)
            && (self.pad_top, self.pad_left) == (0, 0)
            && self.in_h == 2 * self.out_h
            && self.in_w == 2 * self.out_w
    }
    /// The in-bounds input rows `[start, end)` of output row `oy` (same for columns).
    pub fn window_rows(&self, oy: usize) -> (usize, usize) {
        window_range(oy, self.stride_h, self.pad_top, self.pool_h, self.in_h)
    }
    /// The in-bounds input columns `[start, end)` of output column `ox`.
    pub fn window_cols(&self, ox: usize) -> (usize, usize) {
        window_range(ox, self.stride_w, self.pad_left, self.pool_w, self.in_w)
    }
}

/// Where a pooling's windows go: size, strides and padding (Keras' `pool_size`, `strides`,
/// `padding`), before the input shape is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolWindow {
    /// Window (height, width).
    pub size: (usize, usize),
    /// (vertical, horizontal) step between windows.
    pub strides: (usize, usize),
    /// `Valid` or `Same`, as for convolutions.
    pub padding: Padding,
}

/// A convolution followed by max pooling of its output, and optionally a ReLU of the pooled
/// values, all resolved (see [`ConvOps::conv2d_max_pool`](crate::ConvOps::conv2d_max_pool)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvPoolSpec {
    /// The convolution.
    pub conv: Conv2dSpec,
    /// The max pooling of the convolution's output.
    pub pool: Pool2dSpec,
    /// Whether a ReLU follows the pooling (equal to one between convolution and pooling,
    /// since both are monotonic: a `Conv2D(activation="relu")` then `MaxPooling2D`).
    pub relu: bool,
}

impl ConvPoolSpec {
    /// Resolves a convolution of `input` by `filter`, then a pooling of its output.
    pub fn new(
        input: &Shape,
        filter: &Shape,
        strides: (usize, usize),
        padding: Padding,
        pool: PoolWindow,
    ) -> Result<Self> {
        let conv = Conv2dSpec::new(input, filter, strides, padding)?;
        let pool = Pool2dSpec::new(&conv.output_shape(), pool.size, pool.strides, pool.padding)?;
        Ok(ConvPoolSpec { conv, pool, relu: false })
    }

    /// The same, with a ReLU of the pooled values.
    pub fn with_relu(self) -> Self {
        ConvPoolSpec { relu: true, ..self }
    }

    /// Pixel index of window (`oy`, `ox`)'s top-left element in one image's convolution
    /// output (row-major over `conv.out_h x conv.out_w`), padding aside.
    pub fn window_corner(&self, oy: usize, ox: usize) -> usize {
        oy * self.pool.stride_h * self.conv.out_w + ox * self.pool.stride_w
    }

    /// Whether the pooling windows lie inside the convolution's output without overlapping
    /// (stride = window, no padding on any side): then every convolution output belongs to at
    /// most one window, which is what a fused kernel that keeps only each window's winner
    /// relies on. Keras' default `MaxPooling2D()` after a convolution is such a pooling.
    pub fn windows_disjoint(&self) -> bool {
        let p = &self.pool;
        (p.stride_h, p.stride_w) == (p.pool_h, p.pool_w)
            && (p.pad_top, p.pad_left) == (0, 0)
            && p.out_h * p.pool_h <= p.in_h
            && p.out_w * p.pool_w <= p.in_w
    }
}

fn window_range(o: usize, stride: usize, pad: usize, window: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + window as isize).min(len as isize);
    (start.max(0) as usize, end.max(0) as usize)
}

/// Concatenation along one axis: every part is viewed as `[outer, part_inner[i]]` and the
/// output as `[outer, sum(part_inner)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcatSpec {
    /// Product of the dimensions before the axis.
    pub outer: usize,
    /// Per part: its axis length times the product of the dimensions after the axis.
    pub part_inner: Vec<usize>,
}

impl ConcatSpec {
    /// Checks that a backend got one part per spec entry.
    pub fn check_part_count(&self, parts: usize) -> crate::Result<()> {
        if parts != self.part_inner.len() {
            return Err(crate::TensorError::Backend(format!(
                "concat: {parts} parts but the spec describes {}",
                self.part_inner.len()
            )));
        }
        Ok(())
    }
}

/// A slice along one axis: input viewed as `[outer, inner]`, output `[outer, len]` taken from
/// columns `offset..offset + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NarrowSpec {
    /// Product of the dimensions before the axis.
    pub outer: usize,
    /// Axis length times the product of the dimensions after it, in the input.
    pub inner: usize,
    /// First column taken.
    pub offset: usize,
    /// Columns taken.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_bias_merges_to_two_dims() {
        let (out, spec) = broadcast(&Shape::new([4, 5, 6, 3]), &Shape::new([3])).unwrap();
        assert_eq!(out.dims(), &[4, 5, 6, 3]);
        assert_eq!(spec.dims, vec![120, 3]);
        assert_eq!(spec.a_strides, vec![3, 1]);
        assert_eq!(spec.b_strides, vec![0, 1]);
    }

    #[test]
    fn broadcast_same_shape_is_one_dim() {
        let (_, spec) = broadcast(&Shape::new([2, 3, 4]), &Shape::new([2, 3, 4])).unwrap();
        assert_eq!(spec.dims, vec![24]);
        assert_eq!(spec.a_strides, vec![1]);
        assert_eq!(spec.b_strides, vec![1]);
    }

    #[test]
    fn broadcast_column_and_row() {
        let (out, spec) = broadcast(&Shape::new([3, 1]), &Shape::new([1, 4])).unwrap();
        assert_eq!(out.dims(), &[3, 4]);
        assert_eq!(spec.offsets(5), (1, 1));
        assert_eq!(spec.offsets(11), (2, 3));
    }

    #[test]
    fn broadcast_rejects_incompatible() {
        assert!(broadcast(&Shape::new([3, 2]), &Shape::new([3])).is_err());
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        // 7 wide, window 3, stride 2: out 4, total pad 2 -> 1 left.
        assert_eq!(window_geometry(7, 3, 2, Padding::Same).unwrap(), (4, 1));
        // 28 wide, window 5, stride 1: out 28, pad 4 -> 2 left.
        assert_eq!(window_geometry(28, 5, 1, Padding::Same).unwrap(), (28, 2));
        // 9, window 2, stride 2: out 5, pad 1 -> 0 left, 1 right.
        assert_eq!(window_geometry(9, 2, 2, Padding::Same).unwrap(), (5, 0));
        assert_eq!(window_geometry(28, 5, 1, Padding::Valid).unwrap(), (24, 0));
        assert_eq!(window_geometry(25, 2, 2, Padding::Valid).unwrap(), (12, 0));
        assert!(window_geometry(3, 5, 1, Padding::Valid).is_err());
    }

    #[test]
    fn conv_spec_checks_channels() {
        let x = Shape::new([2, 8, 8, 3]);
        assert!(Conv2dSpec::new(&x, &Shape::new([3, 3, 4, 5]), (1, 1), Padding::Valid).is_err());
        let s = Conv2dSpec::new(&x, &Shape::new([3, 3, 3, 5]), (2, 2), Padding::Same).unwrap();
        assert_eq!(s.output_shape().dims(), &[2, 4, 4, 5]);
    }
}
