//! Which CPU kernel runs for which shape and instruction set: the one table.
//!
//! Every op with more than one kernel asks here, once per call, and gets a plan naming the
//! kernel and its build ([`Build`], from the instruction sets [`crate::isa`] detected once).
//! The kernels' own `takes` functions say what a kernel *can* compute; the rules below say
//! which of those that can is chosen, first match wins, each with its reason:
//!
//! | op | kernel | when |
//! |---|---|---|
//! | conv2d forward | `conv2d_winograd::plain` | AVX-512, 3x3, stride 1, at least [`MIN_WINOGRAD_CHANNELS`] input and output channels; F(4x4, 3x3) or F(2x2, 3x3) by [`plain_tile`] |
//! | | `conv2d_direct` | the widest build takes the layer; several input channels only up to [`MAX_DIRECT_IN_C`] |
//! | | im2col + GEMM (`conv2d`) | otherwise |
//! | conv2d filter gradient | `conv2d_winograd::plain` | as its forward pass |
//! | | `conv2d_direct` | one input channel and the widest build takes the layer |
//! | | im2col + GEMM | otherwise |
//! | conv2d input gradient | `conv2d_winograd::plain` | as its forward pass |
//! | | im2col + GEMM (col2im) | otherwise |
//! | conv2d + max pool | unfused (conv2d, then pool2d) | windows overlap, pad, exceed [`MAX_WINDOW`], or the direct forward kernel does not take the convolution |
//! | | `conv2d_direct::batch_lanes` | AVX-512, one input channel, 2x2 windows, at least 16 images |
//! | | `conv2d_winograd` | AVX-512, several input channels, 3x3 stride 1, 2x2 windows |
//! | | `conv2d_direct` pooled in registers (`pool_tiles`) | 2x2 windows whose tile fits the registers |
//! | | `conv2d_direct`, pooled from scratch | other disjoint windows |
//! | its backward | `conv2d_direct::PooledBackward` (winners only) | input gradient; filter gradient with several input channels |
//! | | `conv2d_direct` filter gradient, window by window (`window_gradient`) | one input channel, 2x2 windows |
//! | | `conv2d_direct` filter gradient from a rebuilt output gradient | one input channel, other windows |
//! | max pool (and gradient) | `pool_2x2` | 2x2 windows, stride 2, no padding, even sizes |
//! | | `pool` | otherwise |
//! | channel moments and sums (normalization), per block | `norm_registers` | AVX-512, channels-last rows of 16, 32, 64 or 128 channels (`norm_registers::vectors`) |
//! | | `norm`'s portable blocks (built for AVX2 where the CPU has it) | otherwise |
//! | matrix product | `matmul_narrow` | AVX-512, transposed `A`, contiguous `B`, `8 <= k`, `n <= 128` |
//! | | the `gemm` crate | otherwise |
//!
//! Loops that are one kernel compiled twice, plain and with AVX2 enabled (`pool_2x2`,
//! `layout`'s dropout mask, `conv2d_pool`'s gradient expansion), pick their build from
//! [`crate::isa::features`] where they are called: there is nothing to choose but the
//! instruction set.

#[cfg(target_arch = "x86_64")]
pub(crate) use crate::conv2d_winograd::plain::Tile;
use crate::isa::Build;
use crate::matrix::MatrixRef;
#[cfg(target_arch = "x86_64")]
use crate::{
    conv2d_direct, conv2d_winograd::plain, conv2d_winograd::WinogradPool, matmul_narrow, winners::MAX_WINDOW,
};
use tensor::shape::{Conv2dSpec, ConvPoolSpec, Pool2dSpec};

/// With several input channels the direct forward kernel (AVX-512 only) is chosen only while
/// the channels are few: on model5's second layer (20 -> 40 channels, 3x3) it is a little
/// faster than im2col + GEMM; with many channels GEMM's blocking wins.
pub(crate) const MAX_DIRECT_IN_C: usize = 64;

/// Winograd (F(2x2, 3x3) or F(4x4, 3x3), see [`plain_tile`]) for a plain 3x3 convolution's three passes from this many input
/// and output channels on: on model6's layers (32 to 128 channels) each pass measured 1.2
/// to 2.1x as fast as the direct kernels or im2col + GEMM, and at 16 channels it still won;
/// with 8 input channels the direct forward kernel was faster (docs/performance.md).
pub(crate) const MIN_WINOGRAD_CHANNELS: usize = 16;

/// How a convolution's forward pass or filter gradient runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conv {
    /// The direct kernels (`conv2d_direct`) in this build.
    #[cfg(target_arch = "x86_64")]
    Direct(Build),
    /// Winograd's F(2x2, 3x3) or F(4x4, 3x3) (`conv2d_winograd::plain`).
    #[cfg(target_arch = "x86_64")]
    Winograd(Tile),
    /// im2col + GEMM, for any shape.
    Im2col,
}

/// Whether a plain convolution's passes run by Winograd's algorithm (see
/// [`MIN_WINOGRAD_CHANNELS`]), and with which tiles; the fused convolution + pooling has its
/// own rules.
#[cfg(target_arch = "x86_64")]
fn plain_winograd(spec: &Conv2dSpec) -> Option<Tile> {
    let takes = Build::Avx512.runs_here()
        && spec.in_c >= MIN_WINOGRAD_CHANNELS
        && spec.out_c >= MIN_WINOGRAD_CHANNELS
        && plain::takes(spec);
    takes.then(|| plain_tile(spec))
}

/// F(4x4, 3x3) takes 36 products per 4x4 tile where F(2x2, 3x3) takes 16 per 2x2 tile
/// (1.78x fewer), but its tiles of 4 waste more of an image whose side is not a multiple of
/// 4. It runs where it needs at most 3/4 of F(2x2)'s products: model6's 28x28 and 7x7
/// layers (0.56) and its 14x14 ones (covered as 16x16: 0.73). There `tiles_on_model6`
/// (`plain_tests.rs`, Zen 5 EPYC; docs/performance.md) timed every pass 1.05-1.4x faster
/// with F(4x4) but one, the input gradient of 14x14 32 -> 64, 4% slower: one rule beats a
/// case for 0.05 ms. 10x10 (covered as 12x12: 0.81) keeps F(2x2).
#[cfg(target_arch = "x86_64")]
fn plain_tile(spec: &Conv2dSpec) -> Tile {
    let products =
        |size: usize| (size + 2) * (size + 2) * spec.out_h.div_ceil(size) * spec.out_w.div_ceil(size);
    if 4 * products(4) <= 3 * products(2) {
        Tile::F4
    } else {
        Tile::F2
    }
}

/// The direct kernels' build for a convolution's forward pass, where they are chosen over
/// im2col (plain or fused with pooling).
#[cfg(target_arch = "x86_64")]
fn direct_forward(spec: &Conv2dSpec) -> Option<Build> {
    // Only the widest build: where it does not take the layer, a narrower one does not
    // either (AVX2's kernels take a subset of AVX-512's shapes).
    let build = Build::widest()?;
    (spec.in_c <= MAX_DIRECT_IN_C && conv2d_direct::takes(build, spec)).then_some(build)
}

/// The direct kernels' build for a convolution's filter gradient, where they are chosen over
/// im2col.
#[cfg(target_arch = "x86_64")]
fn direct_filter_gradient(spec: &Conv2dSpec) -> Option<Build> {
    // With several input channels the direct filter gradient measured at half GEMM's
    // speed: patch rows are long enough for im2col to pay.
    let build = Build::widest()?;
    (spec.in_c == 1 && conv2d_direct::takes(build, spec)).then_some(build)
}

/// The kernel for a convolution's forward pass.
pub(crate) fn conv2d_forward(spec: &Conv2dSpec) -> Conv {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(tile) = plain_winograd(spec) {
            return Conv::Winograd(tile);
        }
        if let Some(build) = direct_forward(spec) {
            return Conv::Direct(build);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = spec;
    Conv::Im2col
}

/// The kernel for a convolution's filter gradient.
pub(crate) fn conv2d_filter_gradient(spec: &Conv2dSpec) -> Conv {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(tile) = plain_winograd(spec) {
            return Conv::Winograd(tile);
        }
        if let Some(build) = direct_filter_gradient(spec) {
            return Conv::Direct(build);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = spec;
    Conv::Im2col
}

/// The kernel for a convolution's input gradient: Winograd ([`Conv::Winograd`]) or im2col +
/// col2im ([`Conv::Im2col`]).
pub(crate) fn conv2d_input_gradient(spec: &Conv2dSpec) -> Conv {
    #[cfg(target_arch = "x86_64")]
    if let Some(tile) = plain_winograd(spec) {
        return Conv::Winograd(tile);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = spec;
    Conv::Im2col
}

/// How a fused convolution + max pooling's forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvPool {
    /// The convolution, then the pooling, each by its own kernel (the backend's `saved` is
    /// the convolution's output).
    Unfused,
    /// Sixteen images per register (`conv2d_direct::batch_lanes`).
    #[cfg(target_arch = "x86_64")]
    BatchLanes,
    /// Winograd's F(2x2, 3x3) (`conv2d_winograd`).
    #[cfg(target_arch = "x86_64")]
    Winograd,
    /// The direct kernel in `build`, pooling 2x2 windows in registers where `in_registers`,
    /// else each image's output from a scratch buffer.
    #[cfg(target_arch = "x86_64")]
    Direct {
        /// The direct kernels' build.
        build: Build,
        /// Whether `conv2d_direct::pool_tiles` pools in registers.
        in_registers: bool,
    },
}

/// The kernel for a fused convolution + max pooling.
pub(crate) fn conv2d_max_pool(spec: &ConvPoolSpec) -> ConvPool {
    #[cfg(target_arch = "x86_64")]
    {
        let pool = &spec.pool;
        // The fused kernels record one winner per window: the windows must not overlap or
        // pad, and a winner's index must be exact as an f32.
        let fusable =
            spec.windows_disjoint() && pool.pool_h * pool.pool_w <= MAX_WINDOW && pool.out_h * pool.out_w > 0;
        // Every fused kernel, and the backward pass, builds on the direct kernels' shapes.
        let Some(build) = direct_forward(&spec.conv) else { return ConvPool::Unfused };
        if !fusable {
            return ConvPool::Unfused;
        }
        // A first layer's one input channel leaves only a 5x5 patch per output: images as
        // lanes keep every lane busy where channels as lanes would pad 20 filters to 32.
        if build == Build::Avx512 && conv2d_direct::batch_lanes::takes(spec) {
            return ConvPool::BatchLanes;
        }
        // With several input channels, Winograd takes 16 multiply-adds per output where the
        // direct sum takes 36; a first layer's single channel leaves its products one
        // multiply-add deep.
        if build == Build::Avx512 && spec.conv.in_c > 1 && WinogradPool::takes(spec) {
            return ConvPool::Winograd;
        }
        // Pooling in registers never writes the convolution's output.
        let in_registers = conv2d_direct::pool_tiles::takes(spec, build.lanes());
        ConvPool::Direct { build, in_registers }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = spec;
        ConvPool::Unfused
    }
}

/// How the gradients of a fused convolution + max pooling run, from the winners its forward
/// pass saved (any fused forward plan: the backward kernels read winners, whoever wrote them).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvPoolBackward {
    /// The build of `PooledBackward`, which takes the input gradient (and the filter gradient
    /// where [`PooledFilterGradient::Winners`]).
    pub winners: Build,
    /// How the filter gradient runs.
    pub filter: PooledFilterGradient,
}

/// How a fused convolution + max pooling's filter gradient runs.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PooledFilterGradient {
    /// From the winners' patches alone (a quarter of a dense pass's arithmetic for 2x2).
    Winners,
    /// Dense (a first layer: patch rows of `kernel_w` values are too short for a register),
    /// window by window from the pooled gradient, in registers.
    WindowByWindow(Build),
    /// Dense, from each image's output gradient rebuilt in scratch.
    Rebuilt(Build),
}

/// The kernels for a fused convolution + max pooling's gradients; `None` where no fused
/// forward kernel runs (then nothing saved winners).
#[cfg(target_arch = "x86_64")]
pub(crate) fn conv2d_max_pool_backward(spec: &ConvPoolSpec) -> Option<ConvPoolBackward> {
    if conv2d_max_pool(spec) == ConvPool::Unfused {
        return None;
    }
    let winners = Build::widest()?;
    let filter = match direct_filter_gradient(&spec.conv) {
        Some(build) if conv2d_direct::window_gradient::gradient_takes(spec, build.lanes()) => {
            PooledFilterGradient::WindowByWindow(build)
        }
        Some(build) => PooledFilterGradient::Rebuilt(build),
        None => PooledFilterGradient::Winners,
    };
    Some(ConvPoolBackward { winners, filter })
}

/// How max pooling and its gradient run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaxPool {
    /// `pool_2x2`: a pair of rows at a time, without window bookkeeping.
    TwoByTwo,
    /// `pool`'s general windows.
    General,
}

/// The kernel for max pooling over `spec` (forward and gradient alike).
pub(crate) fn max_pool(spec: &Pool2dSpec) -> MaxPool {
    // The lecture's pooling (2x2, stride 2, no padding) with no window bookkeeping.
    if crate::pool_2x2::takes(spec) {
        MaxPool::TwoByTwo
    } else {
        MaxPool::General
    }
}

/// How a matrix product runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gemm {
    /// `matmul_narrow` (AVX-512).
    #[cfg(target_arch = "x86_64")]
    Narrow,
    /// The `gemm` crate.
    Crate,
}

/// The kernel for `lhs` (`m x k`) times `rhs` (`k x n`).
pub(crate) fn gemm(lhs: &MatrixRef<'_>, rhs: &MatrixRef<'_>, k: usize, n: usize) -> Gemm {
    // A dense layer's weight gradient (`X^T dY`): the gemm crate would first pack the strided
    // `X^T`, where the narrow kernel reads it in place.
    #[cfg(target_arch = "x86_64")]
    if Build::Avx512.runs_here() && matmul_narrow::takes(lhs, rhs, k, n) {
        return Gemm::Narrow;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (lhs, rhs, k, n);
    Gemm::Crate
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::shape::PoolWindow;
    use tensor::{Padding, Shape};

    fn conv(x: [usize; 4], f: [usize; 4]) -> Conv2dSpec {
        Conv2dSpec::new(&Shape::new(x), &Shape::new(f), (1, 1), Padding::Valid).unwrap()
    }

    fn conv_pool(x: [usize; 4], f: [usize; 4]) -> ConvPoolSpec {
        let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
        ConvPoolSpec::new(&Shape::new(x), &Shape::new(f), (1, 1), Padding::Valid, window).unwrap()
    }

    /// The lecture's layers get the kernels the table promises on this CPU.
    #[test]
    fn the_lecture_layers_get_the_tables_kernels() {
        let first = conv_pool([128, 28, 28, 1], [5, 5, 1, 20]);
        let second = conv_pool([128, 12, 12, 20], [3, 3, 20, 40]);
        let wide = conv([2, 12, 12, 128], [3, 3, 128, 8]);
        match Build::widest() {
            #[cfg(target_arch = "x86_64")]
            Some(Build::Avx512) => {
                // Unfused, model5's second layer and model6's 3x3 layers run Winograd's
                // kernels; fused with pooling, model5's keeps its own (below).
                let same = |x: [usize; 4], f: [usize; 4]| {
                    Conv2dSpec::new(&Shape::new(x), &Shape::new(f), (1, 1), Padding::Same).unwrap()
                };
                // Tiles of the forward pass, the input gradient and the filter gradient.
                let (f2, f4) = (Conv::Winograd(Tile::F2), Conv::Winograd(Tile::F4));
                let model6 = [
                    (same([128, 28, 28, 32], [3, 3, 32, 32]), [f4, f4, f4]),
                    (same([128, 14, 14, 32], [3, 3, 32, 64]), [f4, f4, f4]),
                    (same([128, 14, 14, 64], [3, 3, 64, 64]), [f4, f4, f4]),
                    (same([128, 7, 7, 64], [3, 3, 64, 128]), [f4, f4, f4]),
                    // 10x10 outputs, which F(4x4) would cover as 12x12, with 20 and 40 channels.
                    (second.conv, [f2, f2, f2]),
                ];
                for (spec, plans) in &model6 {
                    let got =
                        [conv2d_forward(spec), conv2d_input_gradient(spec), conv2d_filter_gradient(spec)];
                    assert_eq!(got, *plans, "{:?} -> {}", spec.input_shape(), spec.out_c);
                }
                let model6_first = conv([128, 28, 28, 1], [3, 3, 1, 32]);
                assert_eq!(conv2d_forward(&model6_first), Conv::Direct(Build::Avx512));
                assert_eq!(conv2d_filter_gradient(&model6_first), Conv::Direct(Build::Avx512));
                assert_eq!(conv2d_input_gradient(&first.conv), Conv::Im2col, "5x5");
                let few_filters = conv([2, 12, 12, 20], [3, 3, 20, 8]);
                assert_eq!(conv2d_forward(&few_filters), Conv::Direct(Build::Avx512), "8 filters");
                assert_eq!(conv2d_filter_gradient(&few_filters), Conv::Im2col, "several channels");
                assert_eq!(conv2d_forward(&wide), Conv::Im2col, "128 input channels, 8 filters");
                assert_eq!(conv2d_max_pool(&first), ConvPool::BatchLanes);
                assert_eq!(conv2d_max_pool(&second), ConvPool::Winograd);
                let few_images = conv_pool([8, 28, 28, 1], [5, 5, 1, 20]);
                assert_eq!(
                    conv2d_max_pool(&few_images),
                    ConvPool::Direct { build: Build::Avx512, in_registers: true }
                );
                let backward = conv2d_max_pool_backward(&second).unwrap();
                assert_eq!(backward.filter, PooledFilterGradient::Winners);
                let backward = conv2d_max_pool_backward(&first).unwrap();
                assert_eq!(backward.filter, PooledFilterGradient::WindowByWindow(Build::Avx512));
            }
            #[cfg(target_arch = "x86_64")]
            Some(Build::Avx2) => {
                assert_eq!(conv2d_forward(&first.conv), Conv::Direct(Build::Avx2));
                assert_eq!(conv2d_forward(&second.conv), Conv::Im2col, "AVX2 takes one channel");
                assert_eq!(conv2d_max_pool(&second), ConvPool::Unfused);
            }
            _ => {
                assert_eq!(conv2d_forward(&first.conv), Conv::Im2col);
                assert_eq!(conv2d_max_pool(&first), ConvPool::Unfused);
            }
        }
    }

    /// Windows that overlap or need padding never fuse, whatever the CPU.
    #[test]
    fn only_disjoint_windows_inside_the_output_fuse() {
        let fuse = |x: [usize; 4], size, strides, padding| {
            let window = PoolWindow { size, strides, padding };
            let spec =
                ConvPoolSpec::new(&Shape::new(x), &Shape::new([3, 3, 1, 4]), (1, 1), Padding::Valid, window)
                    .unwrap();
            conv2d_max_pool(&spec) != ConvPool::Unfused
        };
        assert!(!fuse([1, 8, 8, 1], (2, 2), (1, 1), Padding::Valid), "overlapping");
        assert!(!fuse([1, 7, 7, 1], (2, 2), (2, 2), Padding::Same), "padded");
        assert_eq!(fuse([1, 8, 8, 1], (2, 2), (2, 2), Padding::Valid), Build::widest().is_some());
    }

    #[test]
    fn two_by_two_pooling_takes_its_kernel() {
        let spec = |h| Pool2dSpec::new(&Shape::new([1, h, h, 3]), (2, 2), (2, 2), Padding::Valid).unwrap();
        assert_eq!(max_pool(&spec(8)), MaxPool::TwoByTwo);
        assert_eq!(max_pool(&spec(7)), MaxPool::General, "odd size leaves a margin");
    }
}
