//! The AVX2 + FMA kernels: output channels in 8-lane registers, one broadcast input value
//! per tap. Arrays of registers with const sizes are fully unrolled and
//! live in registers; every memory access is checked by the asserts at the top of the
//! public entry points.

// Several register arrays are indexed by the same block number; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::padded_dims;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use tensor::shape::Conv2dSpec;

/// Output channels per register.
pub(super) const LANES: usize = 8;

/// Lane mask of the last (possibly partial) block of `out_c` channels.
unsafe fn last_block_mask(out_c: usize) -> __m256i {
    let used = out_c - (out_c.div_ceil(LANES) - 1) * LANES;
    let lanes: [i32; LANES] = std::array::from_fn(|i| if i < used { -1 } else { 0 });
    _mm256_loadu_si256(lanes.as_ptr().cast())
}

/// One output image: `out` (`[out_h, out_w, out_c]`) from the padded image, the packed
/// filter `[taps, blocks * 8]` and the padded bias `[blocks * 8]`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward_image(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    out: &mut [MaybeUninit<f32>],
) {
    let (ph, pw_check) = padded_dims(spec);
    let blocks = spec.out_c.div_ceil(LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw);
    assert!(weights.len() >= spec.kernel_h * spec.kernel_w * blocks * LANES);
    assert!(bias.len() >= blocks * LANES && out.len() >= spec.out_h * spec.out_w * spec.out_c);
    // Written through a raw pointer only: `out` may be uninitialised.
    let out = out.as_mut_ptr().cast::<f32>();
    match blocks {
        1 => forward_rows::<1, 8>(padded, pw, weights, bias, spec, out),
        2 => forward_rows::<2, 6>(padded, pw, weights, bias, spec, out),
        3 => forward_rows::<3, 3>(padded, pw, weights, bias, spec, out),
        _ => forward_rows::<4, 2>(padded, pw, weights, bias, spec, out),
    }
}

/// All output rows, `PIXELS` pixels at a time (then one at a time for the rest).
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_rows<const BLOCKS: usize, const PIXELS: usize>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    out: *mut f32,
) {
    let mask = last_block_mask(spec.out_c);
    for oy in 0..spec.out_h {
        let mut ox = 0;
        while ox + PIXELS <= spec.out_w {
            forward_pixels::<BLOCKS, PIXELS>(padded, pw, weights, bias, spec, oy, ox, mask, out);
            ox += PIXELS;
        }
        while ox < spec.out_w {
            forward_pixels::<BLOCKS, 1>(padded, pw, weights, bias, spec, oy, ox, mask, out);
            ox += 1;
        }
    }
}

/// Output pixels `(oy, ox..ox + PIXELS)`, all channels.
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_pixels<const BLOCKS: usize, const PIXELS: usize>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    oy: usize,
    ox: usize,
    mask: __m256i,
    out: *mut f32,
) {
    let bias: [__m256; BLOCKS] = std::array::from_fn(|b| _mm256_loadu_ps(bias.as_ptr().add(b * LANES)));
    let mut acc = [bias; PIXELS];
    let x = padded.as_ptr().add(oy * spec.stride_h * pw + ox * spec.stride_w);
    let mut w = weights.as_ptr();
    for ky in 0..spec.kernel_h {
        for kx in 0..spec.kernel_w {
            let row: [__m256; BLOCKS] = std::array::from_fn(|b| _mm256_loadu_ps(w.add(b * LANES)));
            let tap = x.add(ky * pw + kx);
            for (p, acc) in acc.iter_mut().enumerate() {
                let value = _mm256_set1_ps(*tap.add(p * spec.stride_w));
                for b in 0..BLOCKS {
                    acc[b] = _mm256_fmadd_ps(value, row[b], acc[b]);
                }
            }
            w = w.add(BLOCKS * LANES);
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        let y = out.add((oy * spec.out_w + ox + p) * spec.out_c);
        for b in 0..BLOCKS - 1 {
            _mm256_storeu_ps(y.add(b * LANES), acc[b]);
        }
        _mm256_maskstore_ps(y.add((BLOCKS - 1) * LANES), mask, acc[BLOCKS - 1]);
    }
}

/// Adds one image's filter gradient to `partial` (`[taps, blocks * 8]`), from the padded
/// image and the image's output gradient `dy` (`[out_h, out_w, out_c]`).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn filter_gradient_image(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    let (ph, pw_check) = padded_dims(spec);
    let blocks = spec.out_c.div_ceil(LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw);
    assert!(dy.len() >= spec.out_h * spec.out_w * spec.out_c);
    assert!(partial.len() >= spec.kernel_h * spec.kernel_w * blocks * LANES);
    match blocks {
        1 => filter_taps_all::<1, 8>(padded, pw, dy, spec, partial),
        2 => filter_taps_all::<2, 6>(padded, pw, dy, spec, partial),
        3 => filter_taps_all::<3, 4>(padded, pw, dy, spec, partial),
        _ => filter_taps_all::<4, 2>(padded, pw, dy, spec, partial),
    }
}

/// All taps, `TAPS` at a time (then one at a time for the rest).
#[target_feature(enable = "avx2,fma")]
unsafe fn filter_taps_all<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    let mask = last_block_mask(spec.out_c);
    let taps = spec.kernel_h * spec.kernel_w;
    let mut first = 0;
    while first + TAPS <= taps {
        filter_taps::<BLOCKS, TAPS>(padded, pw, dy, spec, first, mask, partial);
        first += TAPS;
    }
    while first < taps {
        filter_taps::<BLOCKS, 1>(padded, pw, dy, spec, first, mask, partial);
        first += 1;
    }
}

/// Gradient of taps `first..first + TAPS` over every pixel of the image, added to
/// `partial`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn filter_taps<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    first: usize,
    mask: __m256i,
    partial: &mut [f32],
) {
    let offsets: [usize; TAPS] =
        std::array::from_fn(|t| (first + t) / spec.kernel_w * pw + (first + t) % spec.kernel_w);
    let mut acc = [[_mm256_setzero_ps(); BLOCKS]; TAPS];
    let mut g = dy.as_ptr();
    for oy in 0..spec.out_h {
        let row = padded.as_ptr().add(oy * spec.stride_h * pw);
        for ox in 0..spec.out_w {
            let x = row.add(ox * spec.stride_w);
            let grad: [__m256; BLOCKS] = std::array::from_fn(|b| {
                if b + 1 < BLOCKS {
                    _mm256_loadu_ps(g.add(b * LANES))
                } else {
                    _mm256_maskload_ps(g.add(b * LANES), mask)
                }
            });
            for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                let value = _mm256_set1_ps(*x.add(offset));
                for b in 0..BLOCKS {
                    acc[b] = _mm256_fmadd_ps(value, grad[b], acc[b]);
                }
            }
            g = g.add(spec.out_c);
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        let dst = partial.as_mut_ptr().add((first + t) * BLOCKS * LANES);
        for b in 0..BLOCKS {
            let sum = _mm256_add_ps(_mm256_loadu_ps(dst.add(b * LANES)), acc[b]);
            _mm256_storeu_ps(dst.add(b * LANES), sum);
        }
    }
}
