//! A normalization's map, its ReLU and a 2x2 max pooling after them (stride 2, windows tiling
//! the channels-last input: `Pool2dSpec::tiles_2x2`), forward as one pass that writes only
//! the pooled output (`NormOps::channel_affine_relu_max_pool`), backward as the normalization's
//! two passes (`channel_sums`, `channel_affine_pair`) reading the pooled gradient.
//!
//! Bits: each pixel's value is `relu(affine(x))` of `norm_blocks`, the max keeps the first of
//! equal values in scan order as [`crate::pool_2x2`] does, and the forward pass records each
//! window's winner (none where the ReLU cut it). The backward kernels are the unpooled ones'
//! loops over the same blocks of rows, reading the dense gradient (the pooled gradient at each
//! winner, else 0) through the winners, so every sum adds the same values in the same order as
//! the unfused ops.

use crate::buffers::{build_chunk_pairs, build_chunks};
use crate::norm_blocks::{affine, block_rows, fold_block_sums, relu};
use crate::pool_2x2::first_max;
use crate::winners::NO_WINNER;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tensor::shape::{ChannelSpec, Pool2dSpec};

/// `maxpool(relu(x * scale[c] + shift[c]))` of `x` (`[batch, 2 out_h, 2 out_w, c]`), as
/// `[batch, out_h, out_w, c]`, and each pooled value's winner (`crate::winners`' encoding:
/// its index in the window, or [`NO_WINNER`] where the ReLU cut the maximum to 0);
/// `pool.tiles_2x2()`.
pub fn affine_relu_max_pool(
    x: &[f32],
    scale: &[f32],
    shift: &[f32],
    pool: &Pool2dSpec,
) -> (Vec<f32>, Vec<f32>) {
    debug_assert!(pool.tiles_2x2());
    let c = pool.channels;
    let (image_in, image_out) = (pool.in_h * pool.in_w * c, pool.out_h * pool.out_w * c);
    let k = [&scale[..c], &shift[..c]];
    let fill = |_: &mut (), image: usize, y: &mut [MaybeUninit<f32>], won: &mut [MaybeUninit<f32>]| {
        let x = &x[image * image_in..][..image_in];
        #[cfg(target_arch = "x86_64")]
        if crate::isa::features().avx2 {
            // SAFETY: the CPU has AVX2.
            return unsafe { forward_image_avx2(x, k, y, won, pool) };
        }
        forward_image(x, k, y, won, pool)
    };
    // SAFETY: forward_image writes every element of its image's output and winners.
    unsafe { build_chunk_pairs(pool.batch * image_out, image_out, || (), fill) }
}

#[inline(always)]
fn forward_image(
    x: &[f32],
    [scale, shift]: [&[f32]; 2],
    y: &mut [MaybeUninit<f32>],
    won: &mut [MaybeUninit<f32>],
    pool: &Pool2dSpec,
) {
    let c = pool.channels;
    let row = pool.in_w * c;
    for oy in 0..pool.out_h {
        for ox in 0..pool.out_w {
            let a = (2 * oy * pool.in_w + 2 * ox) * c;
            let [xa, xb, xd, xe] = [a, a + c, a + row, a + row + c].map(|t| &x[t..][..c]);
            let at = (oy * pool.out_w + ox) * c;
            let outs = y[at..][..c].iter_mut().zip(won[at..][..c].iter_mut());
            // Iterators, not indices, so that the loop vectorises without bounds checks.
            let taps = xa.iter().zip(xb).zip(xd).zip(xe).zip(scale.iter().zip(shift));
            for ((o, w), ((((&a, &b), &d), &e), (&s, &t))) in outs.zip(taps) {
                let [va, vb, vd, ve] = [a, b, d, e].map(|v| relu(affine(v, s, t)));
                // The first strictly greatest, as pool_2x2 keeps it.
                let (m, [gb, gd, ge]) = first_max([va, vb, vd, ve]);
                let index = if ge {
                    3.0
                } else if gd {
                    2.0
                } else if gb {
                    1.0
                } else {
                    0.0
                };
                o.write(m);
                // The ReLU passes the winner's gradient only where its input was positive.
                w.write(if m > 0.0 { index } else { NO_WINNER });
            }
        }
    }
}

// The same loop compiled for AVX2, as pool_2x2's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_image_avx2(
    x: &[f32],
    k: [&[f32]; 2],
    y: &mut [MaybeUninit<f32>],
    won: &mut [MaybeUninit<f32>],
    pool: &Pool2dSpec,
) {
    forward_image(x, k, y, won, pool)
}

/// A pooled gradient: `dy` of the pooled output, the forward pass' winners and the pooling.
#[derive(Clone, Copy)]
pub struct Pooled<'a> {
    /// Gradient of the pooled output.
    pub dy: &'a [f32],
    /// Each pooled value's winner, as [`affine_relu_max_pool`] wrote them.
    pub winners: &'a [f32],
    /// The pooling (`tiles_2x2`).
    pub pool: &'a Pool2dSpec,
}

impl Pooled<'_> {
    /// Pixel `p`'s row of the dense gradient, as its window's pooled gradients and winners
    /// (`channels` each) and `p`'s index in that window: the gradient at channel `k` is
    /// `dy[k]` where `winners[k]` is that index, else 0.
    #[inline(always)]
    fn row(&self, p: usize) -> (&[f32], &[f32], f32) {
        let pool = self.pool;
        let c = pool.channels;
        let (pair, within) = (p / (2 * pool.in_w), p % (2 * pool.in_w));
        let (bottom, col) = (within / pool.in_w, within % pool.in_w);
        let window = (pair * pool.out_w + col / 2) * c;
        (&self.dy[window..][..c], &self.winners[window..][..c], (2 * bottom + col % 2) as f32)
    }
}

/// One block's `sum(g * (x - center[c]))` and `sum(g)` from row `first` on, `g` the dense
/// gradient: `norm`'s `block_sums`, the same f32 arithmetic in the same order, with
/// `g` read through the winners.
#[inline(always)]
fn block_sums(grad: Pooled<'_>, first: usize, x: &[f32], center: &[f32]) -> Vec<f64> {
    let c = center.len();
    let (mut ab, mut sa) = (vec![0.0f32; c], vec![0.0f32; c]);
    for (r, x) in x.chunks_exact(c).enumerate() {
        let (dy, won, tap) = grad.row(first + r);
        let sums = ab.iter_mut().zip(sa.iter_mut());
        for ((ab, sa), (((&dy, &w), &x), &center)) in sums.zip(dy.iter().zip(won).zip(x).zip(center)) {
            let g = if w == tap { dy } else { 0.0 };
            *ab += g * (x - center);
            *sa += g;
        }
    }
    ab.iter().chain(&sa).map(|&v| v as f64).collect()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_sums_avx2(grad: Pooled<'_>, first: usize, x: &[f32], center: &[f32]) -> Vec<f64> {
    block_sums(grad, first, x, center)
}

/// `channel_sums` of the pooled gradient: per channel `sum(g * (x - center[c]))` and
/// `sum(g)`, `[2, channels]`, with `g` the dense gradient, over the unpooled kernel's blocks
/// (which fix the rounding).
pub fn pooled_sums(grad: Pooled<'_>, x: &[f32], center: &[f32], spec: &ChannelSpec) -> Vec<f32> {
    let channels = spec.channels;
    let rows = block_rows(channels);
    let center = &center[..channels];
    let blocks: Vec<Vec<f64>> = x
        .par_chunks(rows * channels)
        .enumerate()
        .map(|(k, x)| {
            #[cfg(target_arch = "x86_64")]
            if crate::isa::features().avx2 {
                // SAFETY: the CPU has AVX2.
                return unsafe { block_sums_avx2(grad, k * rows, x, center) };
            }
            block_sums(grad, k * rows, x, center)
        })
        .collect();
    fold_block_sums(blocks, channels)
}

/// Rows `first..` of `channel_affine_pair`'s output: `g * k[0][c] + x * k[1][c] + k[2][c]`,
/// as `norm` computes it.
#[inline(always)]
fn pair_rows(
    grad: Pooled<'_>,
    first: usize,
    x: &[f32],
    [ka, kb, kc]: [&[f32]; 3],
    out: &mut [MaybeUninit<f32>],
) {
    let c = ka.len();
    for (r, (x, out)) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)).enumerate() {
        let (dy, won, tap) = grad.row(first + r);
        let inputs = dy.iter().zip(won).zip(x).zip(ka.iter().zip(kb).zip(kc));
        for (o, (((&dy, &w), &x), ((&a, &b), &k))) in out.iter_mut().zip(inputs) {
            let g = if w == tap { dy } else { 0.0 };
            o.write(g * a + x * b + k);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pair_rows_avx2(grad: Pooled<'_>, first: usize, x: &[f32], k: [&[f32]; 3], out: &mut [MaybeUninit<f32>]) {
    pair_rows(grad, first, x, k, out)
}

/// `channel_affine_pair` of the pooled gradient: `g * k[0][c] + x * k[1][c] + k[2][c]`.
pub fn pooled_affine_pair(grad: Pooled<'_>, x: &[f32], k: [&[f32]; 3], spec: &ChannelSpec) -> Vec<f32> {
    let channels = spec.channels;
    let rows = block_rows(channels);
    let k = k.map(|k| &k[..channels]);
    let fill = |block: usize, out: &mut [MaybeUninit<f32>]| {
        let x = &x[block * rows * channels..][..out.len()];
        #[cfg(target_arch = "x86_64")]
        if crate::isa::features().avx2 {
            // SAFETY: the CPU has AVX2.
            return unsafe { pair_rows_avx2(grad, block * rows, x, k, out) };
        }
        pair_rows(grad, block * rows, x, k, out)
    };
    // SAFETY: a piece is whole rows of `channels`, every element written by `pair_rows`.
    unsafe { build_chunks(spec.len(), rows * channels, true, fill) }
}

#[cfg(test)]
#[path = "norm_pool_tests.rs"]
mod tests;
