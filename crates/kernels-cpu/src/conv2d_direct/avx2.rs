//! The direct kernels (`kernels.rs`) compiled for AVX2 + FMA: 8 channels per register, up to
//! 4 registers (32 filters), one input channel (the only case measured to pay on AVX2).

use super::kernels::{
    check_filter, check_forward, check_pool, filter_taps_all, forward_rows, max_pool_image,
};
use super::simd::Avx2;
use std::mem::MaybeUninit;
use tensor::shape::{Conv2dSpec, ConvPoolSpec};

/// One output image (pixels `out_stride` apart) from the padded image, the packed filter `[taps, blocks * 8]` and the
/// padded bias.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_image(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    (out, out_stride): (&mut [MaybeUninit<f32>], usize),
) {
    let blocks = check_forward::<Avx2>(padded, pw, weights, bias, spec, (out, out_stride));
    let out = (out.as_mut_ptr().cast::<f32>(), out_stride);
    match blocks {
        1 => forward_rows::<Avx2, 1, 8>(padded, pw, weights, bias, spec, out),
        2 => forward_rows::<Avx2, 2, 6>(padded, pw, weights, bias, spec, out),
        3 => forward_rows::<Avx2, 3, 3>(padded, pw, weights, bias, spec, out),
        4 => forward_rows::<Avx2, 4, 2>(padded, pw, weights, bias, spec, out),
        _ => unreachable!("at most 32 filters on AVX2 (checked by isa_fits)"),
    }
}

/// Adds one image's filter gradient to `partial` (`[taps, blocks * 8]`).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn filter_gradient_image(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    match check_filter::<Avx2>(padded, pw, dy, spec, partial) {
        1 => filter_taps_all::<Avx2, 1, 8>(padded, pw, dy, spec, partial),
        2 => filter_taps_all::<Avx2, 2, 6>(padded, pw, dy, spec, partial),
        3 => filter_taps_all::<Avx2, 3, 4>(padded, pw, dy, spec, partial),
        4 => filter_taps_all::<Avx2, 4, 2>(padded, pw, dy, spec, partial),
        _ => unreachable!("at most 32 filters on AVX2 (checked by isa_fits)"),
    }
}

/// Max-pools one image's convolution output (`blocks * 8` values per pixel) into `out`
/// and the windows' winners into `won`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn max_pool_image_padded(
    y: &[f32],
    spec: &ConvPoolSpec,
    offsets: &[usize],
    out: &mut [f32],
    won: &mut [f32],
) {
    match check_pool::<Avx2>(y, spec, offsets, out, won) {
        1 => max_pool_image::<Avx2, 1>(y, spec, offsets, out, won),
        2 => max_pool_image::<Avx2, 2>(y, spec, offsets, out, won),
        3 => max_pool_image::<Avx2, 3>(y, spec, offsets, out, won),
        4 => max_pool_image::<Avx2, 4>(y, spec, offsets, out, won),
        _ => unreachable!("at most 4 registers of filters (checked by isa_fits)"),
    }
}
