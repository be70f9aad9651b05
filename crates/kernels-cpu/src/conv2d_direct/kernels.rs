//! The direct kernels, written once over [`Simd`] and compiled per instruction set by
//! `avx2.rs` / `avx512.rs` (which pick the register blocking). Output channels live in
//! `BLOCKS` registers; arrays of registers with const sizes are fully unrolled and stay in
//! registers. A tap is (ky, kx, ci) of an NHWC image padded so that every window is in bounds.
//! Every memory access is checked by the asserts in [`check_forward`] and [`check_filter`],
//! which the entry points call first.

// Several register arrays are indexed by the same block number; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use super::padded_dims;
use super::simd::Simd;
use std::mem::MaybeUninit;
use tensor::shape::{Conv2dSpec, ConvPoolSpec};

/// Asserts the forward kernel's buffer sizes for `blocks` registers of channels, with output
/// pixels `out_stride` apart (at least `out_c`); returns `blocks`.
pub(super) fn check_forward<S: Simd>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    (out, out_stride): (&[MaybeUninit<f32>], usize),
) -> usize {
    let (ph, pw_check) = padded_dims(spec);
    let blocks = spec.out_c.div_ceil(S::LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw * spec.in_c);
    assert!(weights.len() >= spec.kernel_h * spec.kernel_w * spec.in_c * blocks * S::LANES);
    assert!(bias.len() >= blocks * S::LANES && out_stride >= spec.out_c);
    assert!(out.len() >= spec.out_h * spec.out_w * out_stride);
    blocks
}

/// Asserts the filter-gradient kernel's buffer sizes; returns the register blocks.
pub(super) fn check_filter<S: Simd>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &[f32],
) -> usize {
    let (ph, pw_check) = padded_dims(spec);
    let blocks = spec.out_c.div_ceil(S::LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw * spec.in_c);
    assert!(dy.len() >= spec.out_h * spec.out_w * spec.out_c);
    assert!(partial.len() >= spec.kernel_h * spec.kernel_w * spec.in_c * blocks * S::LANES);
    blocks
}

/// One output image (`[out_h, out_w]` pixels `out_stride` apart, written through a raw
/// pointer: it may be uninitialised), `PIXELS` pixels at a time. With `out_stride` at least
/// the register width the padding channels are written too (with the padded bias, zero
/// filters: the bias's padding, i.e. zero). The pixels are taken in row-major order across
/// row ends (an output row of 10 pixels would otherwise leave a 2-pixel tail running at a
/// fraction of the speed); the last block is moved back to end at the last pixel, so a few
/// pixels are computed twice, with the same arithmetic and so the same values.
/// The caller has run [`check_forward`], whose block count is `BLOCKS`.
#[inline(always)]
pub(super) unsafe fn forward_rows<S: Simd, const BLOCKS: usize, const PIXELS: usize>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    (out, out_stride): (*mut f32, usize),
) {
    let mask = S::mask(out_stride.min(BLOCKS * S::LANES) - (BLOCKS - 1) * S::LANES);
    let pixels = spec.out_h * spec.out_w;
    let window = |q: usize| {
        let (oy, ox) = (q / spec.out_w, q % spec.out_w);
        (oy * spec.stride_h * pw + ox * spec.stride_w) * spec.in_c
    };
    if spec.in_c == 1 && spec.stride_w == 1 && spec.out_w >= PIXELS {
        // A first layer: tiles within a row, whose windows are one pointer and constant
        // offsets apart (the general tiles keep a pointer per pixel, more than there are
        // general registers to hold them, so they spill in the innermost loop).
        for oy in 0..spec.out_h {
            let mut next = 0;
            while next < spec.out_w {
                let ox = next.min(spec.out_w - PIXELS);
                let window = (padded, oy * spec.stride_h * pw + ox);
                let first = oy * spec.out_w + ox;
                forward_row_tile::<S, BLOCKS, PIXELS>(
                    window,
                    pw,
                    weights,
                    bias,
                    spec,
                    first,
                    mask,
                    (out, out_stride),
                );
                next = ox + PIXELS;
            }
        }
        return;
    }
    if pixels < PIXELS {
        for q in 0..pixels {
            forward_pixels::<S, BLOCKS, 1>(
                (padded, pw),
                [window(q)],
                weights,
                bias,
                spec,
                q,
                mask,
                (out, out_stride),
            );
        }
        return;
    }
    let mut next = 0;
    while next < pixels {
        let first = next.min(pixels - PIXELS);
        let windows: [usize; PIXELS] = std::array::from_fn(|p| window(first + p));
        let out = (out, out_stride);
        let image = (padded, pw);
        forward_pixels::<S, BLOCKS, PIXELS>(image, windows, weights, bias, spec, first, mask, out);
        next = first + PIXELS;
    }
}

/// Output pixels `first..first + PIXELS` (row-major), all channels, whose windows start at
/// `windows` in the padded image: each tap broadcasts one input value per pixel and
/// multiply-adds it with the tap's filter row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_pixels<S: Simd, const BLOCKS: usize, const PIXELS: usize>(
    (padded, pw): (&[f32], usize),
    windows: [usize; PIXELS],
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    first: usize,
    mask: S::Mask,
    (out, out_stride): (*mut f32, usize),
) {
    let bias: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(bias.as_ptr().add(b * S::LANES)));
    let mut acc = [bias; PIXELS];
    let c = spec.in_c;
    let x: [*const f32; PIXELS] = std::array::from_fn(|p| padded.as_ptr().add(windows[p]));
    let mut w = weights.as_ptr();
    for ky in 0..spec.kernel_h {
        for kx in 0..spec.kernel_w {
            let tap_offset = (ky * pw + kx) * c;
            for ci in 0..c {
                let row: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(w.add(b * S::LANES)));
                for (acc, x) in acc.iter_mut().zip(&x) {
                    let value = S::splat(*x.add(tap_offset + ci));
                    for b in 0..BLOCKS {
                        acc[b] = S::fmadd(value, row[b], acc[b]);
                    }
                }
                w = w.add(BLOCKS * S::LANES);
            }
        }
    }
    store_pixels::<S, BLOCKS, PIXELS>(&acc, first, mask, (out, out_stride));
}

/// Writes output pixels `first..first + PIXELS` from their accumulators.
#[inline(always)]
unsafe fn store_pixels<S: Simd, const BLOCKS: usize, const PIXELS: usize>(
    acc: &[[S::V; BLOCKS]; PIXELS],
    first: usize,
    mask: S::Mask,
    (out, out_stride): (*mut f32, usize),
) {
    for (p, acc) in acc.iter().enumerate() {
        let y = out.add((first + p) * out_stride);
        for b in 0..BLOCKS - 1 {
            S::store(y.add(b * S::LANES), acc[b]);
        }
        S::store_masked(y.add((BLOCKS - 1) * S::LANES), mask, acc[BLOCKS - 1]);
    }
}

/// [`forward_pixels`] for one input channel, stride 1 and `PIXELS` consecutive pixels of a
/// row, the first one's window starting at `window` in the padded image: each tap's input
/// values are at constant offsets from one pointer.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_row_tile<S: Simd, const BLOCKS: usize, const PIXELS: usize>(
    (padded, window): (&[f32], usize),
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &Conv2dSpec,
    first: usize,
    mask: S::Mask,
    out: (*mut f32, usize),
) {
    let bias: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(bias.as_ptr().add(b * S::LANES)));
    let mut acc = [bias; PIXELS];
    let mut w = weights.as_ptr();
    let mut row_start = padded.as_ptr().add(window);
    for _ in 0..spec.kernel_h {
        for kx in 0..spec.kernel_w {
            let row: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(w.add(b * S::LANES)));
            let x = row_start.add(kx);
            for (p, acc) in acc.iter_mut().enumerate() {
                let value = S::splat(*x.add(p));
                for b in 0..BLOCKS {
                    acc[b] = S::fmadd(value, row[b], acc[b]);
                }
            }
            w = w.add(BLOCKS * S::LANES);
        }
        row_start = row_start.add(pw);
    }
    store_pixels::<S, BLOCKS, PIXELS>(&acc, first, mask, out);
}

/// Adds one image's filter gradient to `partial` (`[taps, BLOCKS * LANES]`), `TAPS` taps
/// at a time (then one at a time). The caller has run [`check_filter`].
#[inline(always)]
pub(super) unsafe fn filter_taps_all<S: Simd, const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    partial: &mut [f32],
) {
    let mask = S::mask(spec.out_c - (BLOCKS - 1) * S::LANES);
    let taps = spec.kernel_h * spec.kernel_w * spec.in_c;
    let mut first = 0;
    while first + TAPS <= taps {
        filter_taps::<S, BLOCKS, TAPS>(padded, pw, dy, spec, first, mask, partial);
        first += TAPS;
    }
    while first < taps {
        filter_taps::<S, BLOCKS, 1>(padded, pw, dy, spec, first, mask, partial);
        first += 1;
    }
}

/// Gradient of taps `first..first + TAPS`, accumulated in registers over every pixel of the
/// image, then added to `partial`.
#[inline(always)]
unsafe fn filter_taps<S: Simd, const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    dy: &[f32],
    spec: &Conv2dSpec,
    first: usize,
    mask: S::Mask,
    partial: &mut [f32],
) {
    let c = spec.in_c;
    // Tap t is (ky, kx, ci) in the filter's HWI order.
    let offsets: [usize; TAPS] = std::array::from_fn(|t| {
        let (pixel, ci) = ((first + t) / c, (first + t) % c);
        (pixel / spec.kernel_w * pw + pixel % spec.kernel_w) * c + ci
    });
    let mut acc = [[S::zero(); BLOCKS]; TAPS];
    let mut g = dy.as_ptr();
    for oy in 0..spec.out_h {
        let row = padded.as_ptr().add(oy * spec.stride_h * pw * c);
        for ox in 0..spec.out_w {
            let x = row.add(ox * spec.stride_w * c);
            let grad: [S::V; BLOCKS] = std::array::from_fn(|b| {
                if b + 1 < BLOCKS {
                    S::load(g.add(b * S::LANES))
                } else {
                    S::load_masked(g.add(b * S::LANES), mask)
                }
            });
            for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                let value = S::splat(*x.add(offset));
                for b in 0..BLOCKS {
                    acc[b] = S::fmadd(value, grad[b], acc[b]);
                }
            }
            g = g.add(spec.out_c);
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        let dst = partial.as_mut_ptr().add((first + t) * BLOCKS * S::LANES);
        for b in 0..BLOCKS {
            S::store(dst.add(b * S::LANES), S::add(S::load(dst.add(b * S::LANES)), acc[b]));
        }
    }
}

/// Asserts the pooling kernel's buffer sizes: `y` holds one image's convolution output with
/// `BLOCKS * LANES` values per pixel, and every window (corner plus `offsets`) lies in it.
pub(super) fn check_pool<S: Simd>(
    y: &[f32],
    spec: &ConvPoolSpec,
    offsets: &[usize],
    out: &[f32],
    won: &[f32],
) -> usize {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let blocks = conv.out_c.div_ceil(S::LANES);
    let width = blocks * S::LANES;
    assert!(spec.windows_disjoint() && pool.out_h * pool.out_w > 0);
    assert!(y.len() >= conv.out_h * conv.out_w * width);
    let last_corner = spec.window_corner(pool.out_h - 1, pool.out_w - 1) * width;
    assert!(last_corner + offsets.iter().max().copied().unwrap_or(0) + width <= y.len());
    let pooled = pool.out_h * pool.out_w * conv.out_c;
    assert!(out.len() >= pooled && won.len() >= pooled);
    blocks
}

/// Max-pools one image's convolution output `y` (`BLOCKS * LANES` values per pixel) over
/// disjoint windows whose elements sit at `offsets` from each corner, into `out` (`out_c`
/// values per pooled pixel) and each window's winner (its index in `offsets`) into `won`.
/// The running maximum and winner stay in registers. The caller has run [`check_pool`].
#[inline(always)]
pub(super) unsafe fn max_pool_image<S: Simd, const BLOCKS: usize>(
    y: &[f32],
    spec: &ConvPoolSpec,
    offsets: &[usize],
    out: &mut [f32],
    won: &mut [f32],
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let (c, width) = (conv.out_c, BLOCKS * S::LANES);
    let mask = S::mask(c - (BLOCKS - 1) * S::LANES);
    for oy in 0..pool.out_h {
        for ox in 0..pool.out_w {
            let corner = y.as_ptr().add(spec.window_corner(oy, ox) * width);
            let mut max: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(corner.add(b * S::LANES)));
            let mut arg = [S::zero(); BLOCKS];
            for (k, &offset) in offsets.iter().enumerate().skip(1) {
                let k = S::splat(k as f32);
                for b in 0..BLOCKS {
                    let v = S::load(corner.add(offset + b * S::LANES));
                    (max[b], arg[b]) = S::max_step(v, max[b], k, arg[b]);
                }
            }
            if spec.relu {
                let none = S::splat(crate::winners::NO_WINNER);
                for b in 0..BLOCKS {
                    (max[b], arg[b]) = S::relu_step(max[b], arg[b], none);
                }
            }
            let o = (oy * pool.out_w + ox) * c;
            let (out, won) = (out.as_mut_ptr().add(o), won.as_mut_ptr().add(o));
            for b in 0..BLOCKS - 1 {
                S::store(out.add(b * S::LANES), max[b]);
                S::store(won.add(b * S::LANES), arg[b]);
            }
            let last = (BLOCKS - 1) * S::LANES;
            S::store_masked(out.add(last), mask, max[BLOCKS - 1]);
            S::store_masked(won.add(last), mask, arg[BLOCKS - 1]);
        }
    }
}
