//! A single-channel layer's filter gradient through 2x2 max pooling, window by window from
//! the pooled gradient and the winners, without building the output gradient (three of
//! whose four elements are zero). The two-pass version wrote each image's full output
//! gradient to scratch, then read it back for the direct filter-gradient kernel.
//!
//! With AVX-512, each channel's input value under its window's winner is picked with one
//! two-table permute per tap (`vpermt2ps`: the window's two input rows are the tables, the
//! winner the index), then multiply-added with the pooled gradient: one FMA per tap and
//! register, not four. With AVX2 the pooled gradient is spread over the window's four
//! elements (a select against the winner) and all four are multiply-added. Both add the
//! same products in the same order (the other three being exact zeros), so they agree
//! bit for bit.

// Register arrays indexed by block number alongside other arrays.
#![allow(clippy::needless_range_loop)]

use super::pool_tiles::{check_image, two_by_two_windows};
use super::simd::{Avx2, Avx512, Simd};
use std::arch::x86_64::*;
use tensor::shape::ConvPoolSpec;

/// `tap_passes!(taps, FULL, pass [generics..] (args..), partial)` runs
/// `pass::<generics.., N>(args.., first, partial)` over all `taps` taps of a kernel:
/// passes of `FULL` taps from `first = 0`, then one pass over the rest, since single-tap
/// passes would leave each window's FMAs waiting on each other in too few accumulators.
/// Both builds' filter gradients run their passes through it.
macro_rules! tap_passes {
    ($taps:expr, $full:tt, $pass:ident $generics:tt $args:tt, $partial:expr) => {{
        let taps = $taps;
        let mut first = 0;
        while first + $full <= taps {
            tap_passes!(@call $pass $generics $full $args first $partial);
            first += $full;
        }
        tap_passes!(@rest (taps - first) $pass $generics $args first $partial;
            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19)
    }};
    (@rest $rest:tt $pass:ident $generics:tt $args:tt $first:ident $partial:tt; $($n:literal)*) => {
        match $rest {
            0 => {}
            $($n => tap_passes!(@call $pass $generics $n $args $first $partial),)*
            _ => unreachable!("passes take at most 20 taps"),
        }
    };
    (@call $pass:ident [$($g:tt),*] $n:tt ($($arg:expr),*) $first:ident $partial:tt) => {
        $pass::<$($g,)* $n>($($arg,)* $first, $partial)
    };
}

/// Taps per pass of the filter gradient for `blocks` registers of channels: with AVX2 the
/// accumulators (`taps * blocks`), the window's gradient (`4 * blocks`) and four input
/// values must fit in the registers. `None` where they do not.
fn gradient_taps(lanes: usize, blocks: usize) -> Option<usize> {
    match (lanes, blocks) {
        // AVX-512 picks each lane's input value with a permute: the accumulators
        // (`taps * blocks`), the window's gradient and picks (`2 * blocks`), two rows of
        // input values and a permuted value per block. Two blocks (20 to 32 filters) take
        // 5 taps a pass, which divides a 5x5 filter's 25 taps: with 10 (20 accumulators)
        // the inner loop kept values on the stack, and was slower (docs/performance.md).
        (16, 1) => Some(20),
        (16, 2) => Some(5),
        (16, 3) => Some(6),
        (8, 1) => Some(6),
        (8, 2) => Some(2),
        _ => None,
    }
}

/// Whether [`filter_gradient_avx512`] / [`filter_gradient_avx2`] compute `spec`'s filter
/// gradient with `lanes`-wide registers.
pub(crate) fn gradient_takes(spec: &ConvPoolSpec, lanes: usize) -> bool {
    let conv = &spec.conv;
    conv.in_c == 1 && two_by_two_windows(spec) && gradient_taps(lanes, conv.out_c.div_ceil(lanes)).is_some()
}

/// Asserts the sizes the filter-gradient passes rely on; returns the register blocks.
fn check_gradient<S: Simd>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    dpooled: &[f32],
    won: &[f32],
    partial: &[f32],
) -> usize {
    let conv = &spec.conv;
    assert!(gradient_takes(spec, S::LANES));
    let blocks = check_image::<S>(padded, pw, spec, [dpooled, won]);
    assert!(partial.len() >= conv.kernel_h * conv.kernel_w * blocks * S::LANES);
    blocks
}

/// [`filter_gradient_avx512`] with 8-lane registers (`partial` is `[taps, blocks * 8]`): each
/// window's gradient is spread over its four elements (a select against the winner), and
/// every tap multiply-adds the four input values under the window.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn filter_gradient_avx2(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    (dpooled, won): (&[f32], &[f32]),
    partial: &mut [f32],
) {
    match check_gradient::<Avx2>(padded, pw, spec, dpooled, won, partial) {
        1 => gradient_passes::<Avx2, 1, 6>(padded, pw, spec, (dpooled, won), partial),
        2 => gradient_passes::<Avx2, 2, 2>(padded, pw, spec, (dpooled, won), partial),
        _ => unreachable!("checked by gradient_takes"),
    }
}

/// All taps, `TAPS` per pass over the windows (the last pass takes the rest).
#[inline(always)]
unsafe fn gradient_passes<S: Simd, const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    pooled: (&[f32], &[f32]),
    partial: &mut [f32],
) {
    let taps = spec.conv.kernel_h * spec.conv.kernel_w;
    tap_passes!(taps, TAPS, gradient_pass [S, BLOCKS] (padded, pw, spec, pooled), partial)
}

/// One pooled pixel's channels, the last register masked. A function, not a closure:
/// closures do not inherit the caller's `#[target_feature]`.
#[inline(always)]
unsafe fn load_channels<S: Simd, const BLOCKS: usize>(p: *const f32, mask: S::Mask) -> [S::V; BLOCKS] {
    let mut v = [S::zero(); BLOCKS];
    for b in 0..BLOCKS - 1 {
        v[b] = S::load(p.add(b * S::LANES));
    }
    v[BLOCKS - 1] = S::load_masked(p.add((BLOCKS - 1) * S::LANES), mask);
    v
}

/// Taps `first..first + TAPS`, accumulated over every window of the image, then added to
/// `partial`.
#[inline(always)]
unsafe fn gradient_pass<S: Simd, const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    (dpooled, won): (&[f32], &[f32]),
    first: usize,
    partial: &mut [f32],
) {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let c = conv.out_c;
    let mask = S::mask(c - (BLOCKS - 1) * S::LANES);
    // Tap t's input value for window element (r, s) is at `offsets[t] + r * pw + s` from the
    // window's corner in the padded image.
    let offsets: [usize; TAPS] =
        std::array::from_fn(|t| (first + t) / conv.kernel_w * pw + (first + t) % conv.kernel_w);
    let elements = [S::zero(), S::splat(1.0), S::splat(2.0), S::splat(3.0)];
    let mut acc = [[S::zero(); BLOCKS]; TAPS];
    for wy in 0..pool.out_h {
        for wx in 0..pool.out_w {
            let o = (wy * pool.out_w + wx) * c;
            let g = load_channels::<S, BLOCKS>(dpooled.as_ptr().add(o), mask);
            let w = load_channels::<S, BLOCKS>(won.as_ptr().add(o), mask);
            // The gradient of each window element: the pooled gradient where it won.
            let dy: [[S::V; BLOCKS]; 4] =
                std::array::from_fn(|k| std::array::from_fn(|b| S::select_eq(w[b], elements[k], g[b])));
            let corner = padded.as_ptr().add(2 * wy * pw + 2 * wx);
            for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                let x = corner.add(offset);
                let values =
                    [S::splat(*x), S::splat(*x.add(1)), S::splat(*x.add(pw)), S::splat(*x.add(pw + 1))];
                for (value, dy) in values.iter().zip(&dy) {
                    for b in 0..BLOCKS {
                        acc[b] = S::fmadd(*value, dy[b], acc[b]);
                    }
                }
            }
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        let dst = partial.as_mut_ptr().add((first + t) * BLOCKS * S::LANES);
        for b in 0..BLOCKS {
            S::store(dst.add(b * S::LANES), S::add(S::load(dst.add(b * S::LANES)), acc[b]));
        }
    }
}

/// Adds one image's filter gradient to `partial` (`[taps, blocks * 16]`), from the padded
/// image, the pooled gradient and the winners (`[pool.out_h, pool.out_w, out_c]`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn filter_gradient_avx512(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    (dpooled, won): (&[f32], &[f32]),
    partial: &mut [f32],
) {
    let blocks = check_gradient::<Avx512>(padded, pw, spec, dpooled, won, partial);
    let windows = winner_picks(spec, blocks, dpooled, won);
    match blocks {
        1 => permute_passes::<1, 20>(padded, pw, spec, &windows, partial),
        2 => permute_passes::<2, 5>(padded, pw, spec, &windows, partial),
        3 => permute_passes::<3, 6>(padded, pw, spec, &windows, partial),
        _ => unreachable!("checked by gradient_takes"),
    }
}

/// One register of a window's channels: which input value each channel takes (the
/// permute index of its winner: lane `s` of row `r`'s table is index `s + 16 * r`) and its
/// pooled gradient (zero where the window has no winner, or past the last channel).
#[derive(Clone, Copy)]
struct WinnerPick {
    index: __m512i,
    gradient: __m512,
}

/// Every window's picks, `blocks` per window, computed once per image rather than in
/// every pass over the taps.
#[inline(always)]
unsafe fn winner_picks(spec: &ConvPoolSpec, blocks: usize, dpooled: &[f32], won: &[f32]) -> Vec<WinnerPick> {
    let (c, pool) = (spec.conv.out_c, &spec.pool);
    let windows = pool.out_h * pool.out_w;
    // Winner k = 2r + s (row r, column s of the window) -> table index s + 16r.
    let table_index = _mm512_setr_epi32(0, 1, 16, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    let mut picks = Vec::with_capacity(windows * blocks);
    for window in 0..windows {
        for b in 0..blocks {
            let o = window * c + b * 16;
            let mask = Avx512::mask((c - b * 16).min(16));
            let g = _mm512_maskz_loadu_ps(mask, dpooled.as_ptr().add(o));
            let w = _mm512_maskz_loadu_ps(mask, won.as_ptr().add(o));
            // `NO_WINNER` (negative) takes nothing.
            let won = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(w, _mm512_setzero_ps());
            let k = _mm512_cvttps_epi32(w);
            picks.push(WinnerPick {
                index: _mm512_maskz_permutexvar_epi32(won, k, table_index),
                gradient: _mm512_maskz_mov_ps(won, g),
            });
        }
    }
    picks
}

/// All taps, `TAPS` per pass over the windows (the last pass takes the rest).
#[inline(always)]
unsafe fn permute_passes<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    picks: &[WinnerPick],
    partial: &mut [f32],
) {
    let taps = spec.conv.kernel_h * spec.conv.kernel_w;
    tap_passes!(taps, TAPS, permute_pass[BLOCKS](padded, pw, spec, picks), partial)
}

/// Taps `first..first + TAPS`, accumulated over every window of the image, then added to
/// `partial`.
#[inline(always)]
unsafe fn permute_pass<const BLOCKS: usize, const TAPS: usize>(
    padded: &[f32],
    pw: usize,
    spec: &ConvPoolSpec,
    picks: &[WinnerPick],
    first: usize,
    partial: &mut [f32],
) {
    let (kw, pool) = (spec.conv.kernel_w, &spec.pool);
    // Tap t's input values for the window's top row are at `offsets[t]` and `+ 1` from the
    // window's corner in the padded image, its bottom row's `pw` further.
    let offsets: [usize; TAPS] = std::array::from_fn(|t| (first + t) / kw * pw + (first + t) % kw);
    let mut acc = [[_mm512_setzero_ps(); BLOCKS]; TAPS];
    for wy in 0..pool.out_h {
        for wx in 0..pool.out_w {
            let window: &[WinnerPick; BLOCKS] =
                &*picks.as_ptr().add((wy * pool.out_w + wx) * BLOCKS).cast::<[WinnerPick; BLOCKS]>();
            let corner = padded.as_ptr().add(2 * wy * pw + 2 * wx);
            for (acc, &offset) in acc.iter_mut().zip(&offsets) {
                // Two values per row, in lanes 0 and 1 (the others are never picked).
                let top = pair(corner.add(offset));
                let bottom = pair(corner.add(offset + pw));
                for b in 0..BLOCKS {
                    let value = _mm512_permutex2var_ps(top, window[b].index, bottom);
                    acc[b] = _mm512_fmadd_ps(value, window[b].gradient, acc[b]);
                }
            }
        }
    }
    for (t, acc) in acc.iter().enumerate() {
        let dst = partial.as_mut_ptr().add((first + t) * BLOCKS * 16);
        for b in 0..BLOCKS {
            let p = dst.add(b * 16);
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), acc[b]));
        }
    }
}

/// `p[0]` and `p[1]` in lanes 0 and 1 (one 8-byte load; the other lanes are unspecified).
#[inline(always)]
unsafe fn pair(p: *const f32) -> __m512 {
    _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadu_si64(p.cast())))
}

#[cfg(test)]
mod tests {
    use super::super::pool_tiles::tests::CASES;
    use super::super::tests::reference_winners;
    use super::super::{Build, DirectFilterGradient};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::{ConvPoolSpec, PoolWindow};
    use tensor::{Padding, Shape};

    /// The window-by-window filter gradient equals the convolution's filter gradient of the
    /// rebuilt output gradient (to rounding: other summation order), on both builds, with
    /// and without cut windows (a ReLU's `NO_WINNER`); the two builds agree exactly.
    #[test]
    fn filter_gradient_matches_the_dense_kernel() {
        let mut rng = StdRng::seed_from_u64(52);
        let mut ran = 0;
        for ((batch, (h, w), (kh, kw), out_c, padding), relu) in
            CASES.into_iter().flat_map(|case| [(case, false), (case, true)])
        {
            let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
            let input = Shape::new([batch, h, w, 1]);
            let spec =
                ConvPoolSpec::new(&input, &Shape::new([kh, kw, 1, out_c]), (1, 1), padding, window).unwrap();
            let spec = if relu { spec.with_relu() } else { spec };
            let conv = &spec.conv;
            let x: Vec<f32> = (0..input.numel()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let y: Vec<f32> =
                (0..conv.output_shape().numel()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let mut won = reference_winners(&y, &spec);
            let dpooled: Vec<f32> = (0..won.len()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            if relu {
                // Cut every third window.
                won.iter_mut().step_by(3).for_each(|w| *w = crate::winners::NO_WINNER);
            }
            // The output gradient: each window's gradient at its winner.
            let pool = &spec.pool;
            let mut dy = vec![0.0; y.len()];
            for (i, (&g, &k)) in dpooled.iter().zip(&won).enumerate() {
                if k < 0.0 {
                    continue;
                }
                let (c, pixel) = (i % out_c, i / out_c);
                let (image, wy, wx) =
                    (pixel / (pool.out_h * pool.out_w), pixel / pool.out_w % pool.out_h, pixel % pool.out_w);
                let (oy, ox) = (2 * wy + k as usize / 2, 2 * wx + k as usize % 2);
                dy[((image * conv.out_h + oy) * conv.out_w + ox) * out_c + c] = g;
            }
            let want = crate::conv2d::conv2d_backward_filter(&x, &dy, conv);
            let mut by_isa = Vec::new();
            for isa in [Build::Avx512, Build::Avx2] {
                if Build::widest().is_none_or(|best| best == Build::Avx2 && isa == Build::Avx512) {
                    continue;
                }
                let kernel = DirectFilterGradient { isa, spec: conv };
                if !kernel.pools_in_registers(&spec) {
                    continue;
                }
                ran += 1;
                let image_pooled = won.len() / batch;
                let partials = kernel.partials(|images, partial| {
                    let mut padded = vec![0.0; kernel.padded_len()];
                    for image in images {
                        let range = image * image_pooled..(image + 1) * image_pooled;
                        let pooled = (&dpooled[range.clone()], &won[range]);
                        kernel.max_pool_2x2_image(
                            &x[image * h * w..(image + 1) * h * w],
                            pooled,
                            &spec,
                            &mut padded,
                            partial,
                        );
                    }
                });
                let got = kernel.finish(&partials);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{isa:?} {input:?} {kh}x{kw}x{out_c} relu {relu} [{i}]: {g} vs {w}"
                    );
                }
                by_isa.push(got);
            }
            // The permute (AVX-512) and the select (AVX2) add the same products in order.
            if let [avx512, avx2] = &by_isa[..] {
                assert_eq!(avx512, avx2, "{input:?} {kh}x{kw}x{out_c} relu {relu}: AVX-512 vs AVX2");
            }
        }
        if Build::widest() == Some(Build::Avx512) {
            assert!(ran >= 2 * CASES.len(), "the in-register gradient ran on only {ran} cases");
        }
    }
}
