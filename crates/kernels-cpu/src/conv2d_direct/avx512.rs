//! The direct kernels (`kernels.rs`) compiled for AVX-512F: 16 channels per register, so 20
//! filters take two registers instead of AVX2's three, and the 32 registers let each filter
//! row load serve more pixels (forward) and each gradient load more taps (filter gradient).
//! Up to 3 registers (48 filters); several input channels too.

use super::kernels::{check_filter, check_forward, filter_taps_all, forward_rows};
use super::simd::{Avx512, Simd};
use std::mem::MaybeUninit;
use tensor::shape::Conv2dSpec;

/// Output channels per register.
pub(super) const LANES: usize = Avx512::LANES;

/// At most this many registers of output channels (48 filters).
pub(super) const MAX_BLOCKS: usize = 3;

/// One output image from the padded image, the packed filter `[taps, blocks * 16]` and the
/// padded bias.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_image(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    out: &mut [MaybeUninit<f32>],
) {
    let blocks = check_forward::<Avx512>(padded, pw, weights, bias, spec, out);
    let out = out.as_mut_ptr().cast::<f32>();
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
