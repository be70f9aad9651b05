//! A first layer's convolution and its 2x2 max pooling in one pass, without the output ever
//! leaving registers: one input channel, stride 1, pooling windows 2x2 with stride 2.
//!
//! A tile is two output rows by `COLS` columns (`COLS / 2` whole pooling windows): every
//! tap multiply-adds one filter row into both rows' accumulators, the input values at
//! constant offsets from two row pointers; then each window's four accumulators are reduced
//! to its maximum and winner, which are all that is stored. The two-pass version (an image's
//! output written to scratch, then pooled) spent a third of its time writing and re-reading
//! that scratch. Values and winners are the two-pass version's exactly: the same sums in the
//! same order, and the first strictly greatest element in scan order wins.

// Register arrays indexed by block number alongside other arrays.
#![allow(clippy::needless_range_loop)]

use super::padded_dims;
use super::simd::{Avx2, Avx512, Simd};
use tensor::shape::ConvPoolSpec;

/// The tile for `blocks` registers of output channels, per instruction set: (register
/// blocks, columns). `None` where the accumulators would not fit in the registers.
fn tile_columns(lanes: usize, blocks: usize) -> Option<usize> {
    match (lanes, blocks) {
        (16, 1) => Some(12),
        (16, 2) => Some(6),
        (16, 3) => Some(4),
        (8, 1) => Some(6),
        (8, 2) | (8, 3) => Some(2),
        _ => None,
    }
}

/// Whether this kernel computes `spec` with `lanes`-wide registers.
pub(super) fn applies(spec: &ConvPoolSpec, lanes: usize) -> bool {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let geometry = conv.in_c == 1
        && (conv.stride_h, conv.stride_w) == (1, 1)
        && (pool.pool_h, pool.pool_w) == (2, 2)
        && spec.windows_disjoint();
    geometry
        && tile_columns(lanes, conv.out_c.div_ceil(lanes)).is_some_and(|cols| pool.out_w * 2 >= cols)
        && pool.out_h > 0
}

/// Asserts the buffer sizes every tile relies on; returns the register blocks.
fn check<S: Simd>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &ConvPoolSpec,
    out: &[f32],
    won: &[f32],
) -> usize {
    let (conv, pool) = (&spec.conv, &spec.pool);
    assert!(applies(spec, S::LANES));
    let (ph, pw_check) = padded_dims(conv);
    let blocks = conv.out_c.div_ceil(S::LANES);
    assert!(pw == pw_check && padded.len() >= ph * pw);
    // Tiles read rows up to 2 * pool.out_h - 1 + kernel_h - 1 and columns up to
    // 2 * pool.out_w - 1 + kernel_w - 1: inside the padded image since the windows lie
    // inside the convolution's output.
    assert!(2 * pool.out_h <= conv.out_h && 2 * pool.out_w <= conv.out_w);
    assert!(weights.len() >= conv.kernel_h * conv.kernel_w * blocks * S::LANES);
    assert!(bias.len() >= blocks * S::LANES);
    let pooled = pool.out_h * pool.out_w * conv.out_c;
    assert!(out.len() >= pooled && won.len() >= pooled);
    blocks
}

/// One image: pooled values into `out` and winners into `won` (`[pool.out_h, pool.out_w,
/// out_c]` each, every element written), from the padded image, the filter packed
/// `[taps, blocks * 16]` and the padded bias.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn image_avx512(
    padded: &[f32],
    pw: usize,
    (weights, bias): (&[f32], &[f32]),
    spec: &ConvPoolSpec,
    out: &mut [f32],
    won: &mut [f32],
) {
    let (o, w) = (out.as_mut_ptr(), won.as_mut_ptr());
    match check::<Avx512>(padded, pw, weights, bias, spec, out, won) {
        1 => tile_rows::<Avx512, 1, 12>(padded, pw, weights, bias, spec, (o, w)),
        2 => tile_rows::<Avx512, 2, 6>(padded, pw, weights, bias, spec, (o, w)),
        3 => tile_rows::<Avx512, 3, 4>(padded, pw, weights, bias, spec, (o, w)),
        _ => unreachable!("checked by applies"),
    }
}

/// [`image_avx512`] with 8-lane registers (filters packed `[taps, blocks * 8]`).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn image_avx2(
    padded: &[f32],
    pw: usize,
    (weights, bias): (&[f32], &[f32]),
    spec: &ConvPoolSpec,
    out: &mut [f32],
    won: &mut [f32],
) {
    let (o, w) = (out.as_mut_ptr(), won.as_mut_ptr());
    match check::<Avx2>(padded, pw, weights, bias, spec, out, won) {
        1 => tile_rows::<Avx2, 1, 6>(padded, pw, weights, bias, spec, (o, w)),
        2 => tile_rows::<Avx2, 2, 2>(padded, pw, weights, bias, spec, (o, w)),
        3 => tile_rows::<Avx2, 3, 2>(padded, pw, weights, bias, spec, (o, w)),
        _ => unreachable!("checked by applies"),
    }
}

/// Every window row, `COLS` columns at a time; the last tile of a row moves back to end at
/// the last window (it stays aligned to windows since `COLS` is even), so a few windows are
/// computed twice, to the same values.
#[inline(always)]
unsafe fn tile_rows<S: Simd, const BLOCKS: usize, const COLS: usize>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &ConvPoolSpec,
    out: (*mut f32, *mut f32),
) {
    let width = spec.pool.out_w * 2;
    for wy in 0..spec.pool.out_h {
        let mut next = 0;
        while next < width {
            let ox = next.min(width - COLS);
            tile::<S, BLOCKS, COLS>(padded, pw, weights, bias, spec, (2 * wy, ox), out);
            next = ox + COLS;
        }
    }
}

/// Output rows `oy` and `oy + 1`, columns `ox..ox + COLS`: convolved in registers, pooled,
/// stored.
#[inline(always)]
unsafe fn tile<S: Simd, const BLOCKS: usize, const COLS: usize>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &ConvPoolSpec,
    (oy, ox): (usize, usize),
    (out, won): (*mut f32, *mut f32),
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let bias: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(bias.as_ptr().add(b * S::LANES)));
    let (mut top, mut bottom) = ([bias; COLS], [bias; COLS]);
    let mut w = weights.as_ptr();
    let mut row = padded.as_ptr().add(oy * pw + ox);
    for _ in 0..conv.kernel_h {
        let next_row = row.add(pw);
        for kx in 0..conv.kernel_w {
            let filter: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(w.add(b * S::LANES)));
            for (acc, x) in [(&mut top, row.add(kx)), (&mut bottom, next_row.add(kx))] {
                for (p, acc) in acc.iter_mut().enumerate() {
                    let value = S::splat(*x.add(p));
                    for b in 0..BLOCKS {
                        acc[b] = S::fmadd(value, filter[b], acc[b]);
                    }
                }
            }
            w = w.add(BLOCKS * S::LANES);
        }
        row = next_row;
    }
    let c = conv.out_c;
    let mask = S::mask(c - (BLOCKS - 1) * S::LANES);
    let ks = [S::splat(1.0), S::splat(2.0), S::splat(3.0)];
    let none = S::splat(crate::conv2d_pool::NO_WINNER);
    for j in 0..COLS / 2 {
        let o = ((oy / 2) * pool.out_w + ox / 2 + j) * c;
        for b in 0..BLOCKS {
            // Scan order: top-left, top-right, bottom-left, bottom-right.
            let (mut max, mut arg) = (top[2 * j][b], S::zero());
            (max, arg) = S::max_step(top[2 * j + 1][b], max, ks[0], arg);
            (max, arg) = S::max_step(bottom[2 * j][b], max, ks[1], arg);
            (max, arg) = S::max_step(bottom[2 * j + 1][b], max, ks[2], arg);
            if spec.relu {
                (max, arg) = S::relu_step(max, arg, none);
            }
            let (out, won) = (out.add(o + b * S::LANES), won.add(o + b * S::LANES));
            if b + 1 < BLOCKS {
                S::store(out, max);
                S::store(won, arg);
            } else {
                S::store_masked(out, mask, max);
                S::store_masked(won, mask, arg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::reference_winners;
    use super::super::{DirectForward, Isa};
    use crate::conv2d::conv2d_forward;
    use crate::pool::pool2d;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::{ConvPoolSpec, PoolWindow};
    use tensor::{Padding, PoolKind, Shape};

    /// Both builds this CPU runs give the unfused convolution + pooling's (+ ReLU's) values
    /// and winners exactly, for every register block count, tile width (rows shorter than, equal to and
    /// longer than a tile; a last tile moved back), windows that leave a margin and padding.
    #[test]
    fn matches_convolution_then_pooling_exactly() {
        let mut rng = StdRng::seed_from_u64(51);
        #[rustfmt::skip]
        let cases = [
            // batch, (h, w), (kh, kw), filters, padding
            (3, (28, 28), (5, 5), 20, Padding::Valid),
            (2, (12, 31), (3, 3), 7, Padding::Valid),
            (2, (11, 9), (3, 2), 16, Padding::Same),
            (2, (9, 16), (2, 2), 48, Padding::Valid),
            (1, (6, 6), (3, 3), 33, Padding::Same),
            (2, (8, 19), (4, 4), 1, Padding::Valid),
        ];
        let mut ran = 0;
        let with_relu = cases.into_iter().flat_map(|case| [(case, false), (case, true)]);
        for ((batch, (h, w), (kh, kw), out_c, padding), relu) in with_relu {
            let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
            let input = Shape::new([batch, h, w, 1]);
            let spec =
                ConvPoolSpec::new(&input, &Shape::new([kh, kw, 1, out_c]), (1, 1), padding, window).unwrap();
            let spec = if relu { spec.with_relu() } else { spec };
            let conv = &spec.conv;
            let x: Vec<f32> = (0..input.numel()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let filter: Vec<f32> =
                (0..conv.filter_shape().numel()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..out_c).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let y = conv2d_forward(&x, &filter, Some(&bias), conv);
            let (mut want, mut want_won) =
                (pool2d(PoolKind::Max, &y, &spec.pool), reference_winners(&y, &spec));
            if relu {
                // Cut values lose their winner.
                for (v, w) in want.iter_mut().zip(&mut want_won) {
                    (*v, *w) = if *v > 0.0 { (*v, *w) } else { (0.0, crate::conv2d_pool::NO_WINNER) };
                }
            }
            let image_in = h * w;
            let image_pooled = want.len() / batch;
            for isa in [Isa::Avx512, Isa::Avx2] {
                if Isa::detect().is_none_or(|best| best == Isa::Avx2 && isa == Isa::Avx512) {
                    continue;
                }
                let kernel = DirectForward::with_isa(isa, &filter, Some(&bias), conv);
                if !kernel.pools_in_registers(&spec) {
                    continue;
                }
                ran += 1;
                let (mut out, mut won) = (vec![f32::NAN; want.len()], vec![f32::NAN; want.len()]);
                let mut padded = vec![0.0; kernel.padded_len()];
                for image in 0..batch {
                    let range = image * image_pooled..(image + 1) * image_pooled;
                    let x = &x[image * image_in..(image + 1) * image_in];
                    kernel.max_pool_2x2_image(
                        x,
                        &mut padded,
                        &spec,
                        &mut out[range.clone()],
                        &mut won[range],
                    );
                }
                assert_eq!(out, want, "{isa:?} {input:?} {kh}x{kw}x{out_c} relu {relu} values");
                assert_eq!(won, want_won, "{isa:?} {input:?} {kh}x{kw}x{out_c} relu {relu} winners");
            }
        }
        if Isa::detect().is_some() {
            assert!(ran >= 2 * cases.len(), "the in-register kernel ran on only {ran} cases");
        }
    }
}
