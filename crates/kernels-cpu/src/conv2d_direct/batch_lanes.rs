//! A first layer's convolution and 2x2 max pooling with AVX-512, sixteen images per
//! register: lane `i` of every vector belongs to image `i` of a group of 16.
//!
//! With one input channel and 20 filters, channels as lanes (`pool_tiles.rs`) fill 20 of
//! the 32 lanes of two registers. Here a group's padded images are interleaved
//! (`[ph, pw, 16]`), so a tap multiplies one input vector (16 images' pixels) by a
//! broadcast weight, and every lane does useful work whatever the number of filters. A
//! window's four outputs for a few channels stay in registers, are pooled there, and the
//! group's pooled values and winners (`[windows, out_c, 16]`) are transposed back to NHWC
//! by 16x16 blocks.
//!
//! Each output is the same chain as in `pool_tiles.rs`, lane by lane: the bias, then one
//! multiply-add per tap in (row, column) order, then the same max and ReLU steps. So values
//! and winners are bit-identical to it (tested), and training is unchanged by the choice.

// Register arrays indexed alongside each other.
#![allow(clippy::needless_range_loop)]

use super::pool_tiles::two_by_two_windows;
use super::simd::{Avx512, Simd};
use super::{pad_image, padded_dims};
use crate::buffers::with_scratch;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;
use tensor::shape::ConvPoolSpec;

/// Images per group: the lanes of a register.
const LANES: usize = Avx512::LANES;

/// Channels per pass over a window: 4 outputs each, 20 accumulators.
const CHANNEL_BLOCK: usize = 5;

/// Whether this kernel computes `spec` (on a CPU with AVX-512F): one input channel, stride
/// 1, disjoint 2x2 windows, and a batch that fills most of a group.
pub(crate) fn takes(spec: &ConvPoolSpec) -> bool {
    let (conv, pool) = (&spec.conv, &spec.pool);
    conv.in_c == 1
        && conv.batch >= LANES
        && conv.out_c > 0
        && pool.out_h * pool.out_w > 0
        && two_by_two_windows(spec)
}

/// `(pooled, winners)` of the whole batch (NHWC, like `conv2d_pool::forward`); `spec` must
/// satisfy [`takes`], on a CPU with AVX-512F.
pub(crate) fn forward(
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &ConvPoolSpec,
) -> (Vec<f32>, Vec<f32>) {
    assert!(takes(spec), "the batch-lane kernel does not take this layer");
    assert!(crate::isa::Build::Avx512.runs_here(), "the batch-lane kernel needs AVX-512F");
    let conv = &spec.conv;
    let (ph, pw) = padded_dims(conv);
    let image_in = conv.in_h * conv.in_w;
    let image_pooled = spec.pool.out_h * spec.pool.out_w * conv.out_c;
    assert!(x.len() >= conv.batch * image_in && filter.len() >= conv.kernel_h * conv.kernel_w * conv.out_c);
    let bias = bias.map_or_else(|| vec![0.0; conv.out_c], |b| b[..conv.out_c].to_vec());
    let fill = |group: usize, pooled: &mut [MaybeUninit<f32>], won: &mut [MaybeUninit<f32>]| {
        let images = pooled.len() / image_pooled;
        // The group's padded images side by side, interleaved, and its outputs; every part
        // is written before it is read.
        let lens = [LANES * ph * pw, ph * pw * LANES, image_pooled * LANES, image_pooled * LANES];
        with_scratch(lens.iter().sum(), |scratch| {
            let (padded, rest) = scratch.split_at_mut(lens[0]);
            let (interleaved, rest) = rest.split_at_mut(lens[1]);
            let (group_pooled, group_won) = rest.split_at_mut(lens[2]);
            for (lane, padded) in padded.chunks_exact_mut(ph * pw).enumerate() {
                if lane < images {
                    let image = group * LANES + lane;
                    pad_image(&x[image * image_in..(image + 1) * image_in], conv, padded);
                } else {
                    padded.fill(0.0);
                }
            }
            // SAFETY: AVX-512F was checked above; the kernels check their bounds, and
            // `deinterleave` writes every element of `pooled` and `won`.
            unsafe {
                interleave(padded, ph * pw, interleaved);
                group_avx512(interleaved, pw, (filter, &bias), spec, group_pooled, group_won);
                deinterleave(group_pooled, images, pooled);
                deinterleave(group_won, images, won);
            }
        })
    };
    // SAFETY: `fill` writes every element of both pieces (see above).
    unsafe {
        crate::buffers::build_chunk_pairs(
            conv.batch * image_pooled,
            LANES * image_pooled,
            || (),
            |(), i, a, b| fill(i, a, b),
        )
    }
}

/// One group: pooled values into `pooled` and winners into `won` (`[windows, out_c, 16]`),
/// from the interleaved padded images, the filter (`[taps, out_c]`) and the bias.
#[target_feature(enable = "avx512f")]
unsafe fn group_avx512(
    interleaved: &[f32],
    pw: usize,
    (filter, bias): (&[f32], &[f32]),
    spec: &ConvPoolSpec,
    pooled: &mut [f32],
    won: &mut [f32],
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let (ph, _) = padded_dims(conv);
    // Every window's taps lie inside the padded images.
    assert!(interleaved.len() >= ph * pw * LANES && pool.out_h * pool.out_w > 0);
    assert!(2 * pool.out_h - 1 + conv.kernel_h <= ph && 2 * pool.out_w - 1 + conv.kernel_w <= pw);
    let outputs = pool.out_h * pool.out_w * conv.out_c * LANES;
    assert!(pooled.len() >= outputs && won.len() >= outputs);
    assert!(filter.len() >= conv.kernel_h * conv.kernel_w * conv.out_c && bias.len() >= conv.out_c);
    let mut first = 0;
    while first < conv.out_c {
        let count = (conv.out_c - first).min(CHANNEL_BLOCK);
        let args = (interleaved, pw, filter, bias, spec, first, pooled.as_mut_ptr(), won.as_mut_ptr());
        match count {
            1 => channels::<1>(args),
            2 => channels::<2>(args),
            3 => channels::<3>(args),
            4 => channels::<4>(args),
            5 => channels::<5>(args),
            _ => unreachable!("blocks of at most {CHANNEL_BLOCK} channels"),
        }
        first += count;
    }
}

/// What [`channels`] reads and writes.
type ChannelArgs<'a> = (&'a [f32], usize, &'a [f32], &'a [f32], &'a ConvPoolSpec, usize, *mut f32, *mut f32);

/// Channels `first..first + C` of every window: its four outputs (scan order: top-left,
/// top-right, bottom-left, bottom-right) convolved in registers, pooled, stored.
#[inline(always)]
unsafe fn channels<const C: usize>(
    (interleaved, pw, filter, bias, spec, first, pooled, won): ChannelArgs<'_>,
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let (out_c, row) = (conv.out_c, pw * LANES);
    let offsets = [0, LANES, row, row + LANES];
    let ks = [Avx512::splat(1.0), Avx512::splat(2.0), Avx512::splat(3.0)];
    let none = Avx512::splat(crate::winners::NO_WINNER);
    for wy in 0..pool.out_h {
        for wx in 0..pool.out_w {
            let mut acc = [[Avx512::zero(); C]; 4];
            for j in 0..C {
                let b = Avx512::splat(*bias.get_unchecked(first + j));
                for p in 0..4 {
                    acc[p][j] = b;
                }
            }
            let corner = interleaved.as_ptr().add((2 * wy * pw + 2 * wx) * LANES);
            let mut weights = filter.as_ptr().add(first);
            for ky in 0..conv.kernel_h {
                for kx in 0..conv.kernel_w {
                    let tap = corner.add(ky * row + kx * LANES);
                    let mut x = [Avx512::zero(); 4];
                    for p in 0..4 {
                        x[p] = Avx512::load(tap.add(offsets[p]));
                    }
                    for j in 0..C {
                        let w = Avx512::splat(*weights.add(j));
                        for p in 0..4 {
                            acc[p][j] = Avx512::fmadd(x[p], w, acc[p][j]);
                        }
                    }
                    weights = weights.add(out_c);
                }
            }
            let window = wy * pool.out_w + wx;
            for j in 0..C {
                let (mut max, mut arg) = (acc[0][j], Avx512::zero());
                for k in 0..3 {
                    (max, arg) = Avx512::max_step(acc[k + 1][j], max, ks[k], arg);
                }
                if spec.relu {
                    (max, arg) = Avx512::relu_step(max, arg, none);
                }
                let at = (window * out_c + first + j) * LANES;
                Avx512::store(pooled.add(at), max);
                Avx512::store(won.add(at), arg);
            }
        }
    }
}

/// `images` (16 rows of `len` values) as `[len, 16]`, by 16x16 transposes.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn interleave(images: &[f32], len: usize, out: &mut [f32]) {
    assert!(images.len() >= LANES * len && out.len() >= len * LANES);
    let whole = len - len % LANES;
    for first in (0..whole).step_by(LANES) {
        let mut block = [_mm512_setzero_ps(); LANES];
        for lane in 0..LANES {
            block[lane] = _mm512_loadu_ps(images.as_ptr().add(lane * len + first));
        }
        let columns = transpose_16x16(block);
        for k in 0..LANES {
            _mm512_storeu_ps(out.as_mut_ptr().add((first + k) * LANES), columns[k]);
        }
    }
    for k in whole..len {
        for lane in 0..LANES {
            out[k * LANES + lane] = images[lane * len + k];
        }
    }
}

/// Writes `group` (`[rows, 16]`, lane `i` for image `i`) to the first `images` images of
/// `out` (`[images, rows]`), by 16x16 transposes: every element of `out`.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave(group: &[f32], images: usize, out: &mut [MaybeUninit<f32>]) {
    assert!(images <= LANES && out.len().is_multiple_of(images.max(1)));
    let rows = out.len() / images.max(1);
    assert!(group.len() >= rows * LANES);
    let out = out.as_mut_ptr().cast::<f32>();
    let whole = rows - rows % LANES;
    for first in (0..whole).step_by(LANES) {
        let mut block = [_mm512_setzero_ps(); LANES];
        for r in 0..LANES {
            block[r] = _mm512_loadu_ps(group.as_ptr().add((first + r) * LANES));
        }
        let columns = transpose_16x16(block);
        if images == LANES {
            for image in 0..LANES {
                _mm512_storeu_ps(out.add(image * rows + first), columns[image]);
            }
        } else {
            for image in 0..images {
                _mm512_storeu_ps(out.add(image * rows + first), columns[image]);
            }
        }
    }
    for row in whole..rows {
        for image in 0..images {
            *out.add(image * rows + row) = group[row * LANES + image];
        }
    }
}

/// Rows `r[i]` to columns: result `j` holds element `j` of every row, in row order.
#[inline(always)]
unsafe fn transpose_16x16(r: [__m512; 16]) -> [__m512; 16] {
    // Pairs of rows interleaved: [a0 b0 a1 b1 | a4 b4 a5 b5 | ...] and the high halves.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // Groups of four rows: u[4g + j] holds column j + 4L of rows 4g..4g+4 in 128-bit lane L.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a, b) = (_mm512_castps_pd(t[4 * g]), _mm512_castps_pd(t[4 * g + 1]));
        let (c, d) = (_mm512_castps_pd(t[4 * g + 2]), _mm512_castps_pd(t[4 * g + 3]));
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Groups of eight rows: lanes 0 and 2, then 1 and 3, of row groups g and g + 1.
    let mut v = [_mm512_setzero_ps(); 16];
    for h in 0..2 {
        for j in 0..4 {
            let (a, b) = (u[8 * h + j], u[8 * h + 4 + j]);
            v[8 * h + j] = _mm512_shuffle_f32x4::<0x88>(a, b);
            v[8 * h + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(a, b);
        }
    }
    // All sixteen rows: column j from v[j] (j < 8, lanes 0 and 2) or v[j - 8] (lanes 1, 3).
    let mut out = [_mm512_setzero_ps(); 16];
    for j in 0..8 {
        out[j] = _mm512_shuffle_f32x4::<0x88>(v[j], v[8 + j]);
        out[j + 8] = _mm512_shuffle_f32x4::<0xdd>(v[j], v[8 + j]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d_direct::DirectForward;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::PoolWindow;
    use tensor::{Padding, Shape};

    #[test]
    fn transposes_16x16_blocks() {
        if !crate::isa::features().avx512f {
            return;
        }
        // 37 rows of 16 lanes: two whole blocks and 5 rows left; 11 images of 16 written.
        let group: Vec<f32> = (0..37 * LANES).map(|i| i as f32).collect();
        let mut out = vec![MaybeUninit::new(-1.0); 11 * 37];
        // SAFETY: AVX-512F is present.
        unsafe { deinterleave(&group, 11, &mut out) };
        for image in 0..11 {
            for row in 0..37 {
                // SAFETY: initialised above.
                let got = unsafe { out[image * 37 + row].assume_init() };
                assert_eq!(got, (row * LANES + image) as f32, "image {image} row {row}");
            }
        }
        // And back: 16 rows of 37 values interleaved.
        let images: Vec<f32> = (0..LANES * 37).map(|i| i as f32).collect();
        let mut interleaved = vec![-1.0; 37 * LANES];
        // SAFETY: AVX-512F is present.
        unsafe { interleave(&images, 37, &mut interleaved) };
        for k in 0..37 {
            for lane in 0..LANES {
                assert_eq!(interleaved[k * LANES + lane], images[lane * 37 + k], "value {k} lane {lane}");
            }
        }
    }

    /// Values and winners equal the channels-as-lanes kernel's bit for bit (the same chain
    /// per output), with and without bias and ReLU, for batches that leave a partial group,
    /// several channel blocks (and a partial one), padding and windows that leave a margin.
    #[test]
    fn matches_the_channel_lane_kernel_bit_for_bit() {
        if !crate::isa::features().avx512f {
            return;
        }
        let mut rng = StdRng::seed_from_u64(61);
        #[rustfmt::skip]
        let cases = [
            (37, (28, 28), (5, 5), 20, Padding::Valid, true),
            (16, (12, 31), (3, 3), 7, Padding::Valid, false),
            (21, (11, 14), (3, 2), 16, Padding::Same, true),
            (17, (9, 16), (2, 2), 33, Padding::Valid, false),
        ];
        for (batch, (h, w), (kh, kw), out_c, padding, relu) in cases {
            let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
            let input = Shape::new([batch, h, w, 1]);
            let mut spec =
                ConvPoolSpec::new(&input, &Shape::new([kh, kw, 1, out_c]), (1, 1), padding, window).unwrap();
            if relu {
                spec = spec.with_relu();
            }
            assert!(takes(&spec));
            let random = |n: usize, rng: &mut StdRng| {
                (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>()
            };
            let x = random(input.numel(), &mut rng);
            let filter = random(kh * kw * out_c, &mut rng);
            let bias = random(out_c, &mut rng);
            let bias = relu.then_some(bias.as_slice());
            let (pooled, won) = forward(&x, &filter, bias, &spec);
            let kernel = DirectForward::new(crate::isa::Build::Avx512, &filter, bias, &spec.conv);
            assert!(kernel.pools_in_registers(&spec));
            let image_in = h * w;
            let image_pooled = spec.pool.out_h * spec.pool.out_w * out_c;
            let mut padded = vec![0.0; kernel.padded_len()];
            for image in 0..batch {
                let (mut want, mut want_won) = (vec![0.0; image_pooled], vec![0.0; image_pooled]);
                let xs = &x[image * image_in..(image + 1) * image_in];
                kernel.max_pool_2x2_image(xs, &mut padded, &spec, &mut want, &mut want_won);
                let range = image * image_pooled..(image + 1) * image_pooled;
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&pooled[range.clone()]),
                    bits(&want),
                    "{input:?} {kh}x{kw}x{out_c} image {image}"
                );
                assert_eq!(
                    bits(&won[range]),
                    bits(&want_won),
                    "{input:?} {kh}x{kw}x{out_c} image {image} winners"
                );
            }
        }
    }
}
