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
//!
//! The matching filter gradient, window by window from the pooled gradient and winners, is
//! in `window_gradient.rs`.

// Register arrays indexed by block number alongside other arrays.
#![allow(clippy::needless_range_loop)]

use super::padded_dims;
use super::simd::{Avx2, Avx512, Simd};
use tensor::shape::ConvPoolSpec;

/// Tile columns for `blocks` registers of output channels and `in_c` input channels, per
/// instruction set. `None` where the accumulators would not fit in the registers, or for
/// several input channels without AVX-512 (whose direct forward kernel does not take them).
/// With one input channel a tile's pixels are constant offsets from a row pointer, so wide
/// tiles fit; with several, every pixel's offset takes a register, so tiles are a single
/// window (2x2 pixels), which also suits rows of 10 (model5's second layer) exactly.
fn tile_columns(lanes: usize, blocks: usize, in_c: usize) -> Option<usize> {
    match (lanes, blocks, in_c) {
        (16, 1, 1) => Some(12),
        (16, 2, 1) => Some(6),
        (16, 3, 1) => Some(4),
        (16, 1..=3, _) => Some(2),
        (8, 1, 1) => Some(6),
        (8, 2, 1) | (8, 3, 1) => Some(2),
        _ => None,
    }
}

/// Stride 1 and disjoint 2x2 pooling windows: what every kernel here takes.
pub(super) fn two_by_two_windows(spec: &ConvPoolSpec) -> bool {
    let (conv, pool) = (&spec.conv, &spec.pool);
    (conv.stride_h, conv.stride_w) == (1, 1)
        && (pool.pool_h, pool.pool_w) == (2, 2)
        && spec.windows_disjoint()
}

/// Whether this kernel computes `spec` with `lanes`-wide registers (a first layer's
/// convolution, then disjoint 2x2 windows; the tile must fit the registers).
pub(crate) fn takes(spec: &ConvPoolSpec, lanes: usize) -> bool {
    let (conv, pool) = (&spec.conv, &spec.pool);
    two_by_two_windows(spec)
        && tile_columns(lanes, conv.out_c.div_ceil(lanes), conv.in_c)
            .is_some_and(|cols| pool.out_w * 2 >= cols)
        && pool.out_h > 0
}

/// Asserts what both passes rely on: the padded image's size, windows inside the
/// convolution's output (tiles read rows up to `2 * pool.out_h - 1 + kernel_h - 1` and
/// columns up to `2 * pool.out_w - 1 + kernel_w - 1`, so inside the padded image), and one
/// image's pooled tensors `pooled` (whole registers of `out_c` values per pooled pixel, the
/// last one masked). Returns the register blocks.
pub(super) fn check_image<S: Simd>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    pooled: [&[f32]; 2],
) -> usize {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let (ph, pw_check) = padded_dims(conv);
    assert!(pw == pw_check && padded.len() >= ph * pw * conv.in_c);
    assert!(2 * pool.out_h <= conv.out_h && 2 * pool.out_w <= conv.out_w);
    let len = pool.out_h * pool.out_w * conv.out_c;
    assert!(pooled.iter().all(|p| p.len() >= len));
    conv.out_c.div_ceil(S::LANES)
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
    let conv = &spec.conv;
    assert!(takes(spec, S::LANES));
    let blocks = check_image::<S>(padded, pw, spec, [out, won]);
    assert!(weights.len() >= conv.kernel_h * conv.kernel_w * conv.in_c * blocks * S::LANES);
    assert!(bias.len() >= blocks * S::LANES);
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
    let blocks = check::<Avx512>(padded, pw, weights, bias, spec, out, won);
    match (blocks, spec.conv.in_c == 1) {
        (1, true) => tile_rows::<Avx512, 1, 12, true>(padded, pw, weights, bias, spec, (o, w)),
        (2, true) => tile_rows::<Avx512, 2, 6, true>(padded, pw, weights, bias, spec, (o, w)),
        (3, true) => tile_rows::<Avx512, 3, 4, true>(padded, pw, weights, bias, spec, (o, w)),
        (1, false) => tile_rows::<Avx512, 1, 2, false>(padded, pw, weights, bias, spec, (o, w)),
        (2, false) => tile_rows::<Avx512, 2, 2, false>(padded, pw, weights, bias, spec, (o, w)),
        (3, false) => tile_rows::<Avx512, 3, 2, false>(padded, pw, weights, bias, spec, (o, w)),
        _ => unreachable!("checked by takes"),
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
        1 => tile_rows::<Avx2, 1, 6, true>(padded, pw, weights, bias, spec, (o, w)),
        2 => tile_rows::<Avx2, 2, 2, true>(padded, pw, weights, bias, spec, (o, w)),
        3 => tile_rows::<Avx2, 3, 2, true>(padded, pw, weights, bias, spec, (o, w)),
        _ => unreachable!("checked by takes (one input channel on AVX2)"),
    }
}

/// Every window row, `COLS` columns at a time; the last tile of a row moves back to end at
/// the last window (it stays aligned to windows since `COLS` is even), so a few windows are
/// computed twice, to the same values.
#[inline(always)]
unsafe fn tile_rows<S: Simd, const BLOCKS: usize, const COLS: usize, const UNIT: bool>(
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
            tile::<S, BLOCKS, COLS, UNIT>(padded, pw, weights, bias, spec, (2 * wy, ox), out);
            next = ox + COLS;
        }
    }
}

/// Output rows `oy` and `oy + 1`, columns `ox..ox + COLS`: convolved in registers, pooled,
/// stored. `UNIT`: one input channel (a constant, so pixel offsets are too).
#[inline(always)]
unsafe fn tile<S: Simd, const BLOCKS: usize, const COLS: usize, const UNIT: bool>(
    padded: &[f32],
    pw: usize,
    weights: &[f32],
    bias: &[f32],
    spec: &ConvPoolSpec,
    (oy, ox): (usize, usize),
    (out, won): (*mut f32, *mut f32),
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let in_c = if UNIT { 1 } else { conv.in_c };
    let bias: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(bias.as_ptr().add(b * S::LANES)));
    let (mut top, mut bottom) = ([bias; COLS], [bias; COLS]);
    let mut w = weights.as_ptr();
    let row_stride = pw * in_c;
    let mut row = padded.as_ptr().add((oy * pw + ox) * in_c);
    for _ in 0..conv.kernel_h {
        let next_row = row.add(row_stride);
        for kx in 0..conv.kernel_w {
            for ci in 0..in_c {
                let filter: [S::V; BLOCKS] = std::array::from_fn(|b| S::load(w.add(b * S::LANES)));
                let tap = kx * in_c + ci;
                for (acc, x) in [(&mut top, row.add(tap)), (&mut bottom, next_row.add(tap))] {
                    for (p, acc) in acc.iter_mut().enumerate() {
                        let value = S::splat(*x.add(p * in_c));
                        for b in 0..BLOCKS {
                            acc[b] = S::fmadd(value, filter[b], acc[b]);
                        }
                    }
                }
                w = w.add(BLOCKS * S::LANES);
            }
        }
        row = next_row;
    }
    let c = conv.out_c;
    let mask = S::mask(c - (BLOCKS - 1) * S::LANES);
    let ks = [S::splat(1.0), S::splat(2.0), S::splat(3.0)];
    let none = S::splat(crate::winners::NO_WINNER);
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
pub(super) mod tests {
    use super::super::tests::reference_winners;
    use super::super::{takes as direct_takes, Build, DirectForward};
    use crate::conv2d::conv2d_forward;
    use crate::pool::pool2d;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::{ConvPoolSpec, PoolWindow};
    use tensor::{Padding, PoolKind, Shape};

    /// batch, (h, w), (kh, kw), filters, padding: every register block count, rows shorter
    /// than, equal to and longer than a tile (a last tile moved back), windows that leave a
    /// margin, padding.
    pub(in super::super) type Case = (usize, (usize, usize), (usize, usize), usize, Padding);
    #[rustfmt::skip]
    pub(in super::super) const CASES: [Case; 6] = [
        (3, (28, 28), (5, 5), 20, Padding::Valid),
        (2, (12, 31), (3, 3), 7, Padding::Valid),
        (2, (11, 9), (3, 2), 16, Padding::Same),
        (2, (9, 16), (2, 2), 48, Padding::Valid),
        (1, (6, 6), (3, 3), 33, Padding::Same),
        (2, (8, 19), (4, 4), 1, Padding::Valid),
    ];

    /// Both builds this CPU runs give the unfused convolution + pooling's (+ ReLU's) values
    /// and winners exactly, for every register block count, tile width (rows shorter than, equal to and
    /// longer than a tile; a last tile moved back), windows that leave a margin and padding.
    #[test]
    fn matches_convolution_then_pooling_exactly() {
        let mut rng = StdRng::seed_from_u64(51);
        // Several input channels too (AVX-512 only): model5's second layer, odd channel
        // counts, padding, a margin.
        #[rustfmt::skip]
        let cases = CASES.into_iter().map(|case| (case, 1)).chain([
            ((2, (12, 12), (3, 3), 40, Padding::Valid), 20),
            ((2, (9, 11), (3, 2), 7, Padding::Same), 3),
            ((1, (7, 8), (2, 2), 33, Padding::Valid), 5),
            ((2, (6, 5), (3, 3), 16, Padding::Same), 2),
        ]);
        let mut ran = 0;
        let with_relu = cases.flat_map(|case| [(case, false), (case, true)]);
        for (((batch, (h, w), (kh, kw), out_c, padding), in_c), relu) in with_relu {
            let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
            let input = Shape::new([batch, h, w, in_c]);
            let spec = ConvPoolSpec::new(&input, &Shape::new([kh, kw, in_c, out_c]), (1, 1), padding, window)
                .unwrap();
            let spec = if relu { spec.with_relu() } else { spec };
            let conv = &spec.conv;
            let x: Vec<f32> = (0..input.numel()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let filter: Vec<f32> =
                (0..conv.filter_shape().numel()).map(|_| rng.random_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..out_c).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            // The direct kernels' unfused output, which pooling in registers must equal
            // exactly (`conv2d_forward` may run Winograd's kernels on some of these shapes).
            let y = match Build::widest() {
                Some(build) if direct_takes(build, conv) => {
                    super::super::forward(build, &x, &filter, Some(&bias), conv)
                }
                _ => conv2d_forward(&x, &filter, Some(&bias), conv),
            };
            let (mut want, mut want_won) =
                (pool2d(PoolKind::Max, &y, &spec.pool), reference_winners(&y, &spec));
            if relu {
                // Cut values lose their winner.
                for (v, w) in want.iter_mut().zip(&mut want_won) {
                    (*v, *w) = if *v > 0.0 { (*v, *w) } else { (0.0, crate::winners::NO_WINNER) };
                }
            }
            let image_in = h * w * in_c;
            let image_pooled = want.len() / batch;
            for isa in [Build::Avx512, Build::Avx2] {
                if !isa.runs_here() || !direct_takes(isa, conv) {
                    continue;
                }
                let kernel = DirectForward::new(isa, &filter, Some(&bias), conv);
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
        if Build::widest() == Some(Build::Avx512) {
            assert!(ran >= 2 * (CASES.len() + 4), "the in-register kernel ran on only {ran} cases");
        }
    }
}
