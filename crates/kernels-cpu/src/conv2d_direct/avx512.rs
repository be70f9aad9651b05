//! The AVX-512 kernels: the AVX2 kernels' scheme (`avx2.rs`) with 16-lane registers, so 20
//! output channels take two registers instead of three, and twice the registers let each
//! filter row load serve more pixels (forward) and each gradient load more taps (filter
//! gradient). They also take several input channels: a tap is then (ky, kx, ci), and the
//! padded image is NHWC. Every memory access is checked by the asserts at the top of the
//! entry points.

// Several register arrays are indexed by the same block number; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::padded_dims;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use tensor::shape::Conv2dSpec;

/// Output channels per register.
pub(super) const LANES: usize = 16;

/// At most this many registers of output channels (48 filters).
pub(super) const MAX_BLOCKS: usize = 3;

/// Lane mask of the last (possibly partial) block of `out_c` channels.
fn last_block_mask(out_c: usize) -> __mmask16 {
    let used = out_c - (out_c.div_ceil(LANES) - 1) * LANES;
    ((1u32 << used) - 1) as __mmask16
}

/// One output image: `out` (`[out_h, out_w, out_c]`) from the padded image, the packed
/// filter `[taps, blocks * 16]` and the padded bias `[blocks * 16]`.
#[target_feature(enable = "avx512f")]
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
    assert!(pw == pw_check && padded.len() >= ph * pw * spec.in_c && (1..=MAX_BLOCKS).contains(&blocks));
    assert!(weights.len() >= spec.kernel_h * spec.kernel_w * spec.in_c * blocks * LANES);
    assert!(bias.len() >= blocks * LANES && out.len() >= spec.out_h * spec.out_w * spec.out_c);
    // Written through a raw pointer only: `out` may be uninitialised.
    let out = out.as_mut_ptr().cast::<f32>();
    match blocks {
        1 => forward_rows::<1, 12>(padded, pw, weights, bias, spec, out),
        2 => forward_rows::<2, 12>(padded, pw, weights, bias, spec, out),
        _ => forward_rows::<3, 8>(padded, pw, weights, bias, spec, out),
    }
}

/// All output rows, `PIXELS` pixels at a time (then one at a time for the rest).
#[target_feature(enable = "avx512f")]
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
#[target_feature(enable = "avx512f")]
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
    mask: __mmask16,
    out: *mut f32,
) {
    let bias: [__m512; BLOCKS] = std::array::from_fn(|b| _mm512_loadu_ps(bias.as_ptr().add(b * LANES)));
    let mut acc = [bias; PIXELS];
    let c = spec.in_c;
    let x = padded.as_ptr().add((oy * spec.stride_h * pw + ox * spec.stride_w) * c);
    let pixel_step = spec.stride_w * c;
    let mut w = weights.as_ptr();
    for ky in 0..spec.kernel_h {
        for kx in 0..spec.kernel_w {
            let taps = x.add((ky * pw + kx) * c);
            for ci in 0..c {
                let row: [__m512; BLOCKS] = std::array::from_fn(|b| _mm512_loadu_ps(w.add(b * LANES)));
                let tap = taps.add(ci);
                for (p, acc) in acc.iter_mut().enumerate() {
                    let value = _mm512_set1_ps(*tap.add(p * pixel_step));
                    for b in 0..BLOCKS {
                        acc[b] = _mm512_fmadd_ps(value, row[b], acc[b]);
                    }
                }
                w = w.add(BLOCKS * LANES);
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        let y = out.add((oy * spec.out_w + ox + p) * spec.out_c);
        for b in 0..BLOCKS - 1 {
            _mm512_storeu_ps(y.add(b * LANES), acc[b]);
        }
        _mm512_mask_storeu_ps(y.add((BLOCKS - 1) * LANES), mask, acc[BLOCKS - 1]);
    }
}

/// Adds one image's filter gradient to `partial` (`[taps, blocks * 16]`), from the padded
/// image and the image's output gradient `dy` (`[out_h, out_w, out_c]`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn filter_gradient_image(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    let (ph, pw_check) = padded_dims(spec);
    let blocks = spec.out_c.div_ceil(LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw * spec.in_c && (1..=MAX_BLOCKS).contains(&blocks));
    assert!(dy.len() >= spec.out_h * spec.out_w * spec.out_c);
    assert!(partial.len() >= spec.kernel_h * spec.kernel_w * spec.in_c * blocks * LANES);
    match blocks {
        1 => filter_taps_all::<1, 12>(padded, pw, dy, spec, partial),
        2 => filter_taps_all::<2, 8>(padded, pw, dy, spec, partial),
        _ => filter_taps_all::<3, 8>(padded, pw, dy, spec, partial),
    }
}

/// All taps, `TAPS` at a time (then one at a time for the rest).
#[target_feature(enable = "avx512f")]
unsafe fn filter_taps_all<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    let mask = last_block_mask(spec.out_c);
    let taps = spec.kernel_h * spec.kernel_w * spec.in_c;
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
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn filter_taps<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    first: usize,
    mask: __mmask16,
    partial: &mut [f32],
) {
    let c = spec.in_c;
    // Tap t is (ky, kx, ci) in the filter's HWI order.
    let offsets: [usize; TAPS] = std::array::from_fn(|t| {
        let (pixel, ci) = ((first + t) / c, (first + t) % c);
        (pixel / spec.kernel_w * pw + pixel % spec.kernel_w) * c + ci
    });
    let mut acc = [[_mm512_setzero_ps(); BLOCKS]; TAPS];
    let mut g = dy.as_ptr();
    for oy in 0..spec.out_h {
        let row = padded.as_ptr().add(oy * spec.stride_h * pw * c);
        for ox in 0..spec.out_w {
            let x = row.add(ox * spec.stride_w * c);
            let grad: [__m512; BLOCKS] = std::array::from_fn(|b| {
                if b + 1 < BLOCKS {
                    _mm512_loadu_ps(g.add(b * LANES))
                } else {
                    _mm512_maskz_loadu_ps(mask, g.add(b * LANES))
                }
            });
            for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                let value = _mm512_set1_ps(*x.add(offset));
                for b in 0..BLOCKS {
                    acc[b] = _mm512_fmadd_ps(value, grad[b], acc[b]);
                }
            }
            g = g.add(spec.out_c);
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        let dst = partial.as_mut_ptr().add((first + t) * BLOCKS * LANES);
        for b in 0..BLOCKS {
            let sum = _mm512_add_ps(_mm512_loadu_ps(dst.add(b * LANES)), acc[b]);
            _mm512_storeu_ps(dst.add(b * LANES), sum);
        }
    }
}
