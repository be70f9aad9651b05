//! Filter and input gradients of a convolution whose output is max-pooled over disjoint
//! windows, from the pooled gradient and each window's winner alone.
//!
//! Each pooled value's gradient reaches exactly one convolution output (its window's
//! winner), so of a 2x2-pooled layer's output gradient three values in four are zero. A
//! dense backward pass (im2col + GEMM, or the direct kernels) multiplies those zeros too;
//! here every (window, channel) pair visits only its winner's patch:
//!
//! - filter gradient: `dW[c] += g * patch(winner)`, the patch read as `kernel_h` rows of
//!   `kernel_w * in_c` contiguous values of the padded NHWC image, in vector registers
//!   (segments); one channel at a time, accumulated in registers over all windows;
//! - input gradient: per window, the channels are grouped by their winner, each group's
//!   `sum g * W[c]` is accumulated in registers, and added once to that winner's patch of
//!   the padded input gradient.
//!
//! A quarter of the dense arithmetic for 2x2 windows. The kernels are written once over
//! [`Simd`] and compiled for AVX-512 and for AVX2 like the other direct kernels.

// Register arrays indexed by segment number alongside the segment tables.
#![allow(clippy::needless_range_loop)]

use super::simd::{Avx2, Avx512, Simd};
use super::{pad_image, padded_dims};
use crate::buffers::slot_partials;
use crate::isa::Build;
use crate::layout::write_run;
use std::mem::MaybeUninit;
use std::ops::Range;
use tensor::shape::ConvPoolSpec;

/// Most segments one pass keeps in registers (one accumulator each), per kernel and
/// instruction set: AVX-512 has 32 registers, AVX2 16.
const MAX_FILTER_BLOCK_AVX512: usize = 12;
const MAX_FILTER_BLOCK_AVX2: usize = 8;
const MAX_INPUT_GROUP_AVX512: usize = 12;
const MAX_INPUT_GROUP_AVX2: usize = 4;

/// Instantiates `$kernel::<$simd, N>` for the group length `$len` (1..=12).
macro_rules! by_group_len {
    ($len:expr, $kernel:ident::<$simd:ty>($($arg:expr),*)) => {
        match $len {
            1 => $kernel::<$simd, 1>($($arg),*),
            2 => $kernel::<$simd, 2>($($arg),*),
            3 => $kernel::<$simd, 3>($($arg),*),
            4 => $kernel::<$simd, 4>($($arg),*),
            5 => $kernel::<$simd, 5>($($arg),*),
            6 => $kernel::<$simd, 6>($($arg),*),
            7 => $kernel::<$simd, 7>($($arg),*),
            8 => $kernel::<$simd, 8>($($arg),*),
            9 => $kernel::<$simd, 9>($($arg),*),
            10 => $kernel::<$simd, 10>($($arg),*),
            11 => $kernel::<$simd, 11>($($arg),*),
            12 => $kernel::<$simd, 12>($($arg),*),
            _ => unreachable!("groups hold at most 12 segments"),
        }
    };
}

/// Instantiates `$kernel::<$simd, ROWS, SEGS>` for a block of `$rows` patch rows by
/// `$segments` segments (ranges of at most 3 and 4), passing the ranges on.
macro_rules! by_block {
    ($rows:expr, $segments:expr, $kernel:ident::<$simd:ty>($($arg:expr),*)) => {
        match ($rows.len(), $segments.len()) {
            (1, 1) => $kernel::<$simd, 1, 1>($($arg),*, ($rows, $segments)),
            (1, 2) => $kernel::<$simd, 1, 2>($($arg),*, ($rows, $segments)),
            (1, 3) => $kernel::<$simd, 1, 3>($($arg),*, ($rows, $segments)),
            (1, 4) => $kernel::<$simd, 1, 4>($($arg),*, ($rows, $segments)),
            (2, 1) => $kernel::<$simd, 2, 1>($($arg),*, ($rows, $segments)),
            (2, 2) => $kernel::<$simd, 2, 2>($($arg),*, ($rows, $segments)),
            (2, 3) => $kernel::<$simd, 2, 3>($($arg),*, ($rows, $segments)),
            (2, 4) => $kernel::<$simd, 2, 4>($($arg),*, ($rows, $segments)),
            (3, 1) => $kernel::<$simd, 3, 1>($($arg),*, ($rows, $segments)),
            (3, 2) => $kernel::<$simd, 3, 2>($($arg),*, ($rows, $segments)),
            (3, 3) => $kernel::<$simd, 3, 3>($($arg),*, ($rows, $segments)),
            (3, 4) => $kernel::<$simd, 3, 4>($($arg),*, ($rows, $segments)),
            _ => unreachable!("blocks are at most 3 rows by 4 segments"),
        }
    };
}

/// The backward kernels prepared for one fused convolution + pooling.
pub(crate) struct PooledBackward<'s> {
    isa: Build,
    spec: &'s ConvPoolSpec,
    /// Per register segment of a patch: its offset from the patch's first value in the padded
    /// image, and how many of its lanes are used. A patch row of `kernel_w * in_c` values
    /// takes `segments_per_row` segments; rows are `pw * in_c` apart.
    segments: Vec<(usize, usize)>,
    segments_per_row: usize,
    /// Distance between patch rows in the padded image (`pw * in_c`).
    row_stride: usize,
    /// Per pooling window: where the patch of its first element starts in the padded image.
    corners: Vec<usize>,
    /// Per window element (scan order, what a winner indexes): its patch's offset from the
    /// corner's patch.
    elements: Vec<usize>,
}

impl<'s> PooledBackward<'s> {
    /// The kernels in `isa` (which must run on this CPU) for disjoint windows.
    pub(crate) fn new(isa: Build, spec: &'s ConvPoolSpec) -> Self {
        assert!(isa.runs_here(), "the {isa:?} kernels need an instruction set this CPU lacks");
        assert!(
            spec.windows_disjoint() && spec.pool.pool_h * spec.pool.pool_w > 0,
            "the winners-only gradient takes disjoint windows"
        );
        let (conv, pool) = (&spec.conv, &spec.pool);
        let lanes = isa.lanes();
        let (_, pw) = padded_dims(conv);
        let (c, row_len) = (conv.in_c, conv.kernel_w * conv.in_c);
        let segments_per_row = row_len.div_ceil(lanes);
        let segments = (0..conv.kernel_h)
            .flat_map(|ky| {
                (0..segments_per_row)
                    .map(move |s| (ky * pw * c + s * lanes, (row_len - s * lanes).min(lanes)))
            })
            .collect();
        // The padded-image offset of conv output pixel (oy, ox)'s patch.
        let patch = |oy: usize, ox: usize| (oy * conv.stride_h * pw + ox * conv.stride_w) * c;
        let corners = (0..pool.out_h)
            .flat_map(|wy| (0..pool.out_w).map(move |wx| patch(wy * pool.stride_h, wx * pool.stride_w)))
            .collect();
        let elements = (0..pool.pool_h).flat_map(|r| (0..pool.pool_w).map(move |s| patch(r, s))).collect();
        PooledBackward { isa, spec, segments, segments_per_row, row_stride: pw * c, corners, elements }
    }

    /// Floats per image of the padded scratch image (input, or input gradient).
    pub(crate) fn padded_len(&self) -> usize {
        let (ph, pw) = padded_dims(&self.spec.conv);
        ph * pw * self.spec.conv.in_c
    }

    /// The patch split into blocks of whole rows by up to 4 segments, at most `max` segments
    /// (and 3 rows) each: `(rows, segments)` ranges.
    fn blocks(&self, max: usize) -> impl Iterator<Item = (Range<usize>, Range<usize>)> {
        let (kernel_h, per_row) = (self.spec.conv.kernel_h, self.segments_per_row);
        (0..per_row).step_by(4).flat_map(move |first_segment| {
            let segments = first_segment..(first_segment + 4).min(per_row);
            let rows_per_block = (max / segments.len()).clamp(1, 3);
            (0..kernel_h).step_by(rows_per_block).map(move |first_row| {
                (first_row..(first_row + rows_per_block).min(kernel_h), segments.clone())
            })
        })
    }

    /// Floats per output channel of a partial filter gradient: whole segments.
    fn channel_len(&self) -> usize {
        self.segments.len() * self.isa.lanes()
    }

    /// Checks, before any unchecked access, that every patch of every window lies inside the
    /// padded image and the pooled tensors hold one image.
    fn check(&self, padded: &[f32], dpooled: &[f32], won: &[f32]) {
        let last_corner = self.corners.iter().max().copied().unwrap_or(0);
        let last_element = self.elements.iter().max().copied().unwrap_or(0);
        let last_segment = self.segments.iter().map(|&(offset, used)| offset + used).max().unwrap_or(0);
        assert!(last_corner + last_element + last_segment <= padded.len(), "patch outside the image");
        let pooled = self.corners.len() * self.spec.conv.out_c;
        assert!(dpooled.len() >= pooled && won.len() >= pooled, "pooled gradient too short");
    }

    /// The filter gradient (HWIO) of the whole batch, summed over fixed slots of images
    /// ([`slot_partials`]) added in order: the result does not depend on the number of
    /// threads.
    pub(crate) fn filter_gradient(&self, x: &[f32], dpooled: &[f32], won: &[f32]) -> Vec<f32> {
        let conv = &self.spec.conv;
        let (image_in, image_pooled) = (conv.in_h * conv.in_w * conv.in_c, self.corners.len() * conv.out_c);
        let partial_len = conv.out_c * self.channel_len();
        let partials = slot_partials(conv.batch, partial_len, |images, partial| {
            let mut padded = vec![0.0; self.padded_len()];
            for image in images {
                pad_image(&x[image * image_in..(image + 1) * image_in], conv, &mut padded);
                let range = image * image_pooled..(image + 1) * image_pooled;
                self.filter_image(&padded, &dpooled[range.clone()], &won[range], partial);
            }
        });
        self.finish_filter(&partials, partial_len)
    }

    /// Adds one image's filter gradient to `partial` (`[out_c, segments * lanes]`).
    fn filter_image(&self, padded: &[f32], dpooled: &[f32], won: &[f32], partial: &mut [f32]) {
        self.check(padded, dpooled, won);
        assert!(partial.len() >= self.spec.conv.out_c * self.channel_len());
        // SAFETY: `isa` was detected on this CPU; `check` bounds every access.
        unsafe {
            match self.isa {
                Build::Avx512 => filter_image_avx512(self, padded, dpooled, won, partial),
                Build::Avx2 => filter_image_avx2(self, padded, dpooled, won, partial),
            }
        }
    }

    /// The partial sums added in slot order and laid out as HWIO, segment padding dropped.
    fn finish_filter(&self, partials: &[f32], partial_len: usize) -> Vec<f32> {
        let conv = &self.spec.conv;
        let (out_c, lanes, row_len) = (conv.out_c, self.isa.lanes(), conv.kernel_w * conv.in_c);
        let mut sum = vec![0.0; partial_len];
        for partial in partials.chunks_exact(partial_len) {
            sum.iter_mut().zip(partial).for_each(|(s, p)| *s += p);
        }
        let mut dw = vec![0.0; conv.kernel_h * row_len * out_c];
        for (c, channel) in sum.chunks_exact(self.channel_len()).enumerate() {
            for ky in 0..conv.kernel_h {
                let row = &channel[ky * self.segments_per_row * lanes..];
                for (i, &value) in row[..row_len].iter().enumerate() {
                    dw[(ky * row_len + i) * out_c + c] = value;
                }
            }
        }
        dw
    }

    /// The input gradient (NHWC) of the whole batch, image by image.
    pub(crate) fn input_gradient(&self, filter: &[f32], dpooled: &[f32], won: &[f32]) -> Vec<f32> {
        let conv = &self.spec.conv;
        let (image_in, image_pooled) = (conv.in_h * conv.in_w * conv.in_c, self.corners.len() * conv.out_c);
        let rows = self.filter_rows(filter);
        // No zeroing of `dx` first: `crop_image` writes every element.
        // SAFETY: each piece is one image's gradient, all of which `crop_image` writes.
        unsafe {
            crate::buffers::build_chunks(conv.batch * image_in, image_in, true, |image, dx| {
                // The padded gradient accumulates: a thread's scratch, zeroed per image
                // (not a fresh allocation for each of the batch's images).
                crate::buffers::with_scratch(self.padded_len(), |padded| {
                    padded.fill(0.0);
                    let range = image * image_pooled..(image + 1) * image_pooled;
                    self.input_image(&rows, &dpooled[range.clone()], &won[range], padded);
                    crop_image(padded, conv, dx);
                })
            })
        }
    }

    /// The filter as one row per output channel, laid out like a patch's segments (unused
    /// lanes zero): `[out_c, segments * lanes]`.
    fn filter_rows(&self, filter: &[f32]) -> Vec<f32> {
        let conv = &self.spec.conv;
        let (out_c, lanes, row_len) = (conv.out_c, self.isa.lanes(), conv.kernel_w * conv.in_c);
        let mut rows = vec![0.0; out_c * self.channel_len()];
        for (c, row) in rows.chunks_exact_mut(self.channel_len()).enumerate() {
            for ky in 0..conv.kernel_h {
                let dst = &mut row[ky * self.segments_per_row * lanes..];
                for (i, d) in dst[..row_len].iter_mut().enumerate() {
                    *d = filter[(ky * row_len + i) * out_c + c];
                }
            }
        }
        rows
    }

    /// Adds one image's input gradient to `padded` (the padded image's layout).
    fn input_image(&self, rows: &[f32], dpooled: &[f32], won: &[f32], padded: &mut [f32]) {
        self.check(padded, dpooled, won);
        assert!(rows.len() >= self.spec.conv.out_c * self.channel_len());
        // SAFETY: `isa` was detected on this CPU; `check` bounds every patch, and the
        // channels index `dpooled`'s rows and `rows` (asserted above).
        unsafe {
            match self.isa {
                Build::Avx512 => input_image_avx512(self, rows, dpooled, won, padded),
                Build::Avx2 => input_image_avx2(self, rows, dpooled, won, padded),
            }
        }
    }
}

/// One image's input gradient: per window, per window element, the channels it won.
#[inline(always)]
unsafe fn input_windows<S: Simd>(
    k: &PooledBackward<'_>,
    rows: &[f32],
    dpooled: &[f32],
    won: &[f32],
    padded: &mut [f32],
    max_group: usize,
) {
    let out_c = k.spec.conv.out_c;
    for (w, &corner) in k.corners.iter().enumerate() {
        let (g, won) = (&dpooled[w * out_c..(w + 1) * out_c], &won[w * out_c..(w + 1) * out_c]);
        for (chunk, won) in won.chunks(64).enumerate() {
            for (element, &offset) in k.elements.iter().enumerate() {
                let channels = Channels { first: chunk * 64, won_by: won_by(won, element) };
                if channels.won_by == 0 {
                    continue;
                }
                for (first, len) in groups(k.segments.len(), max_group) {
                    let patch = corner + offset;
                    by_group_len!(len, input_group::<S>(k, rows, g, channels, padded, patch, first))
                }
            }
        }
    }
}

/// Channels `first + i` for each bit `i` set in `won_by`.
#[derive(Clone, Copy)]
struct Channels {
    first: usize,
    won_by: u64,
}

/// Bit `c` set where channel `c` (at most 64 of them) of a window was won by element `k`.
/// Compares floats (winners are small whole numbers stored as f32), branch-free, so the
/// compiler vectorises it; a winner outside the window matches no element.
#[inline(always)]
fn won_by(won: &[f32], k: usize) -> u64 {
    let k = k as f32;
    won.iter().enumerate().fold(0, |bits, (c, &w)| bits | (u64::from(w == k) << c))
}

/// Copies the padded image's gradient back to the image's own pixels, writing every element
/// of `dx` (the padding's gradient is dropped; pixels no window reaches get zero).
fn crop_image(padded: &[f32], conv: &tensor::shape::Conv2dSpec, dx: &mut [MaybeUninit<f32>]) {
    let (ph, pw) = padded_dims(conv);
    let c = conv.in_c;
    let zero = |dst: &mut [MaybeUninit<f32>]| dst.iter_mut().for_each(|d| _ = d.write(0.0));
    for iy in 0..conv.in_h {
        let py = iy + conv.pad_top;
        let dst = &mut dx[iy * conv.in_w * c..(iy + 1) * conv.in_w * c];
        if py >= ph {
            zero(dst);
            continue;
        }
        let first = conv.pad_left.min(pw);
        let last = (conv.pad_left + conv.in_w).min(pw);
        let copied = (last - first) * c;
        write_run(&mut dst[..copied], &padded[(py * pw + first) * c..(py * pw + last) * c]);
        zero(&mut dst[copied..]);
    }
}

/// The segments split into even groups of at most `max`: `(first, len)` of each.
fn groups(segments: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = segments.div_ceil(segments.div_ceil(max).max(1)).max(1);
    (0..segments).step_by(size).map(move |first| (first, size.min(segments - first)))
}

#[target_feature(enable = "avx512f")]
unsafe fn filter_image_avx512(
    k: &PooledBackward<'_>,
    padded: &[f32],
    g: &[f32],
    won: &[f32],
    partial: &mut [f32],
) {
    for (rows, segments) in k.blocks(MAX_FILTER_BLOCK_AVX512) {
        by_block!(rows, segments, filter_block::<Avx512>(k, padded, g, won, partial))
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn filter_image_avx2(
    k: &PooledBackward<'_>,
    padded: &[f32],
    g: &[f32],
    won: &[f32],
    partial: &mut [f32],
) {
    for (rows, segments) in k.blocks(MAX_FILTER_BLOCK_AVX2) {
        by_block!(rows, segments, filter_block::<Avx2>(k, padded, g, won, partial))
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn input_image_avx512(
    k: &PooledBackward<'_>,
    rows: &[f32],
    g: &[f32],
    won: &[f32],
    padded: &mut [f32],
) {
    input_windows::<Avx512>(k, rows, g, won, padded, MAX_INPUT_GROUP_AVX512)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn input_image_avx2(k: &PooledBackward<'_>, rows: &[f32], g: &[f32], won: &[f32], padded: &mut [f32]) {
    input_windows::<Avx2>(k, rows, g, won, padded, MAX_INPUT_GROUP_AVX2)
}

/// Rows `rows` of the patch, segments `segments` of each, of every channel's filter
/// gradient over one image: per channel, each window multiplies its gradient into its
/// winner's patch, accumulated in registers. The block's loads are constant offsets from a
/// patch pointer and the row stride, so nothing spills in the inner loop.
#[inline(always)]
unsafe fn filter_block<S: Simd, const ROWS: usize, const SEGS: usize>(
    k: &PooledBackward<'_>,
    padded: &[f32],
    dpooled: &[f32],
    won: &[f32],
    partial: &mut [f32],
    (rows, segments): (Range<usize>, Range<usize>),
) {
    let out_c = k.spec.conv.out_c;
    let (per_row, row_stride) = (k.segments_per_row, k.row_stride);
    // Every row has the same segments; the last of a row may be partial.
    let masks: [S::Mask; SEGS] = std::array::from_fn(|s| S::mask(k.segments[segments.start + s].1));
    let block = rows.start * row_stride + segments.start * S::LANES;
    let last = k.elements.len() - 1;
    let channel_len = k.segments.len() * S::LANES;
    for c in 0..out_c {
        let mut acc = [[S::zero(); SEGS]; ROWS];
        for (w, &corner) in k.corners.iter().enumerate() {
            let i = w * out_c + c;
            let winner = *won.get_unchecked(i);
            let x = padded.as_ptr().add(corner + k.elements[won_index(winner, last)] + block);
            // A window with no winner (cut by a ReLU, see `conv2d_pool::NO_WINNER`) adds nothing.
            let g = S::splat(if winner >= 0.0 { *dpooled.get_unchecked(i) } else { 0.0 });
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = x.add(r * row_stride);
                for s in 0..SEGS {
                    acc[s] = S::fmadd(g, S::load_masked(x.add(s * S::LANES), masks[s]), acc[s]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let segment = (rows.start + r) * per_row + segments.start;
            let dst = partial.as_mut_ptr().add(c * channel_len + segment * S::LANES);
            for s in 0..SEGS {
                let p = dst.add(s * S::LANES);
                S::store(p, S::add(S::load(p), acc[s]));
            }
        }
    }
}

/// A winner's index in its window's scan order (the forward pass stored it as an f32),
/// at most `last`.
#[inline(always)]
fn won_index(w: f32, last: usize) -> usize {
    (w as usize).min(last)
}

/// Segments `first..first + N` of one window element's patch: the channels it won, each
/// gradient times the channel's filter row, summed in registers and added to the patch.
#[inline(always)]
unsafe fn input_group<S: Simd, const N: usize>(
    k: &PooledBackward<'_>,
    rows: &[f32],
    g: &[f32],
    channels: Channels,
    padded: &mut [f32],
    patch: usize,
    first: usize,
) {
    let channel_len = k.segments.len() * S::LANES;
    let mut acc = [S::zero(); N];
    let mut won_by = channels.won_by;
    while won_by != 0 {
        let c = channels.first + won_by.trailing_zeros() as usize;
        won_by &= won_by - 1;
        let (row, g) = (rows.as_ptr().add(c * channel_len + first * S::LANES), S::splat(*g.get_unchecked(c)));
        for j in 0..N {
            acc[j] = S::fmadd(g, S::load(row.add(j * S::LANES)), acc[j]);
        }
    }
    let dst = padded.as_mut_ptr().add(patch);
    for j in 0..N {
        let (offset, used) = k.segments[first + j];
        let mask = S::mask(used);
        let p = dst.add(offset);
        S::store_masked(p, mask, S::add(S::load_masked(p, mask), acc[j]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{conv2d_backward_filter, conv2d_backward_input, conv2d_forward};
    use crate::pool::{pool2d, pool2d_backward};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::PoolWindow;
    use tensor::{Padding, PoolKind, Shape};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
        }
    }

    /// Both builds this CPU runs agree with the dense path (convolution, max pooling, its
    /// gradient, the convolution's gradients) on every combination of input channels, filter
    /// counts (partial registers), strides, padding, window shapes and margins (outputs in no
    /// window get no gradient).
    #[test]
    fn matches_the_dense_backward_pass() {
        let mut rng = StdRng::seed_from_u64(41);
        #[rustfmt::skip]
        let cases = [
            // batch, input, filter (kh, kw, out_c), conv stride, padding, pool window
            (3, (28, 28, 1), (5, 5, 20), (1, 1), Padding::Valid, (2, 2)),
            (3, (12, 12, 20), (3, 3, 40), (1, 1), Padding::Valid, (2, 2)),
            (2, (9, 11, 3), (3, 2, 7), (1, 1), Padding::Same, (2, 2)),
            (2, (11, 10, 5), (3, 3, 17), (2, 1), Padding::Same, (2, 3)),
            (1, (13, 13, 2), (4, 4, 1), (1, 2), Padding::Valid, (3, 3)),
            (2, (10, 9, 33), (1, 3, 9), (1, 1), Padding::Same, (3, 2)),
            (2, (7, 7, 1), (2, 2, 48), (1, 1), Padding::Valid, (2, 2)),
        ];
        for (batch, (h, w, c), (kh, kw, out_c), stride, padding, pool) in cases {
            let window = PoolWindow { size: pool, strides: pool, padding: Padding::Valid };
            let input = Shape::new([batch, h, w, c]);
            let spec =
                ConvPoolSpec::new(&input, &Shape::new([kh, kw, c, out_c]), stride, padding, window).unwrap();
            let conv = &spec.conv;
            let x = random(input.numel(), &mut rng);
            let filter = random(conv.filter_shape().numel(), &mut rng);
            let y = conv2d_forward(&x, &filter, None, conv);
            let pooled = pool2d(PoolKind::Max, &y, &spec.pool);
            let dpooled = random(pooled.len(), &mut rng);
            let dy = pool2d_backward(PoolKind::Max, &y, &pooled, &dpooled, &spec.pool);
            let won = super::super::tests::reference_winners(&y, &spec);
            let want_dx = conv2d_backward_input(&dy, &filter, conv);
            let want_dw = conv2d_backward_filter(&x, &dy, conv);
            let mut isas = vec![];
            if crate::isa::features().avx512f {
                isas.push(Build::Avx512);
            }
            if crate::isa::features().avx2_fma {
                isas.push(Build::Avx2);
            }
            for isa in isas {
                let kernel = PooledBackward::new(isa, &spec);
                let case = format!("{isa:?} {input:?} {kh}x{kw}x{out_c} {stride:?} {padding:?} {pool:?}");
                assert_close(
                    &format!("{case} dx"),
                    &kernel.input_gradient(&filter, &dpooled, &won),
                    &want_dx,
                );
                assert_close(&format!("{case} dw"), &kernel.filter_gradient(&x, &dpooled, &won), &want_dw);
            }
        }
    }

    #[test]
    fn groups_split_evenly_and_cover_every_segment() {
        assert_eq!(groups(12, 8).collect::<Vec<_>>(), [(0, 6), (6, 6)]);
        assert_eq!(groups(5, 8).collect::<Vec<_>>(), [(0, 5)]);
        assert_eq!(groups(9, 4).collect::<Vec<_>>(), [(0, 3), (3, 3), (6, 3)]);
        assert_eq!(groups(0, 4).count(), 0);
    }

    #[test]
    fn channels_are_grouped_by_winner() {
        let won = [2.0, 0.0, 3.0, 0.0, 2.0, 7.0];
        assert_eq!(won_by(&won, 0), 0b01010);
        assert_eq!(won_by(&won, 1), 0);
        assert_eq!(won_by(&won, 2), 0b10001);
        // A winner outside the window is in no group.
        assert_eq!(won_by(&won, 3), 0b100);
    }
}
