//! The direct kernels (`kernels.rs`) compiled for AVX-512F: 16 channels per register, so 20
//! filters take two registers instead of AVX2's three, and the 32 registers let each filter
//! row load serve more pixels (forward) and each gradient load more taps (filter gradient).
//! Up to 3 registers (48 filters); several input channels too.

use super::kernels::{
    check_filter, check_forward, check_pool, filter_taps_all, forward_rows, max_pool_image,
};
use super::simd::{Avx512, Simd};
use std::mem::MaybeUninit;
use tensor::shape::{Conv2dSpec, ConvPoolSpec};

/// Output channels per register.
pub(super) const LANES: usize = Avx512::LANES;

/// At most this many registers of output channels (48 filters).
pub(super) const MAX_BLOCKS: usize = 3;

/// One output image (pixels `out_stride` apart) from the padded image, the packed filter `[taps, blocks * 16]` and the
/// padded bias.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_image(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    (out, out_stride): (&mut [MaybeUninit<f32>], usize),
) {
    let blocks = check_forward::<Avx512>(padded, pw, weights, bias, spec, (out, out_stride));
    let out = (out.as_mut_ptr().cast::<f32>(), out_stride);
    match blocks {
        1 => forward_rows::<Avx512, 1, 12>(padded, pw, weights, bias, spec, out),
        2 => forward_rows::<Avx512, 2, 12>(padded, pw, weights, bias, spec, out),
        3 => forward_rows::<Avx512, 3, 8>(padded, pw, weights, bias, spec, out),
        _ => unreachable!("at most 48 filters on AVX-512 (checked by isa_fits)"),
    }
}

/// Adds one image's filter gradient to `partial` (`[taps, blocks * 16]`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn filter_gradient_image(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    match check_filter::<Avx512>(padded, pw, dy, spec, partial) {
        1 => filter_taps_all::<Avx512, 1, 12>(padded, pw, dy, spec, partial),
        2 => filter_taps_all::<Avx512, 2, 8>(padded, pw, dy, spec, partial),
        3 => filter_taps_all::<Avx512, 3, 8>(padded, pw, dy, spec, partial),
        _ => unreachable!("at most 48 filters on AVX-512 (checked by isa_fits)"),
    }
}

/// Max-pools one image's convolution output (`blocks * 16` values per pixel) into `out`
/// and the windows' winners into `won`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn max_pool_image_padded(
    y: &[f32],
    spec: &ConvPoolSpec,
    offsets: &[usize],
    out: &mut [f32],
    won: &mut [f32],
) {
    match check_pool::<Avx512>(y, spec, offsets, out, won) {
        1 => max_pool_image::<Avx512, 1>(y, spec, offsets, out, won),
        2 => max_pool_image::<Avx512, 2>(y, spec, offsets, out, won),
        3 => max_pool_image::<Avx512, 3>(y, spec, offsets, out, won),
        _ => unreachable!("at most 3 registers of filters (checked by isa_fits)"),
    }
}
