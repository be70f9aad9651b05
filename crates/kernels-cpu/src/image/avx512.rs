//! Bilinear resampling with AVX-512, sixteen output pixels of a row per register: lane `i`
//! holds column `first + i`.
//!
//! Every lane repeats the scalar code's operations in its order, as separate IEEE operations
//! (no fused multiply-add, which Rust never forms from `a * b + c` either):
//! [`AffineTransformSpec::source`]'s coordinates; per axis, `super::taps`' clamp, `floor`,
//! weights and fill rule; then `super::pixel`'s sum `0 + (wr0 wc0) p00 + (wr0 wc1) p01 +
//! (wr1 wc0) p10 + (wr1 wc1) p11` (whose leading `0 +` turns -0 into +0), reading the fill
//! value where `FillMode::Constant` leaves a tap outside. Where all four taps are inside, the
//! scalar code takes `super::bilinear_inside`, the same operations without the fill rules
//! (which change nothing inside). Lanes with a NaN coordinate, or a tap farther outside than
//! [`fix`] reaches, go to the scalar [`super::pixel`] itself. So every output has the scalar
//! code's bits (tested, in `super::tests`).

use super::pixel;
use std::arch::x86_64::*;
use tensor::shape::{AffineTransformSpec, FillMode, COORDINATE_LIMIT, TRANSFORM_LEN};

/// Output pixels per register.
const LANES: usize = 16;

/// The longest image side taken: the fill rules here compute tap indices up to twice it in i32.
const MAX_SIDE: usize = 1 << 29;

/// Whether [`bilinear_row`] takes `spec`'s images: not empty (the fill rules need a pixel to
/// read), and every tap index and element offset fits the gathers' signed 32-bit indices.
pub(super) fn takes(spec: &AffineTransformSpec) -> bool {
    let elements = spec.height.checked_mul(spec.width).and_then(|n| n.checked_mul(spec.channels));
    (1..=MAX_SIDE).contains(&spec.height)
        && (1..=MAX_SIDE).contains(&spec.width)
        && elements.is_some_and(|n| n <= i32::MAX as usize)
}

/// Output row `y` of `image` (`[height, width, channels]`) under transform `t`, bilinear,
/// into `out_row` (`[width, channels]`). Returns how many pixels the vector lanes computed
/// (the rest went to the scalar code), for tests to tell that they ran.
///
/// # Safety
///
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn bilinear_row(
    image: &[f32],
    t: &[f32],
    y: usize,
    spec: &AffineTransformSpec,
    out_row: &mut [f32],
) -> usize {
    let &AffineTransformSpec { height, width, channels, fill_mode, fill_value, .. } = spec;
    assert!(takes(spec), "the AVX-512 rows do not take this resampling");
    assert!(image.len() >= height * width * channels, "bilinear_row: image too short");
    assert!(out_row.len() == width * channels && t.len() >= TRANSFORM_LEN, "bilinear_row: bad row");
    let splat = _mm512_set1_ps;
    let (zero, one, fill) = (_mm512_setzero_ps(), splat(1.0), splat(fill_value));
    // `source`'s products with `y` are the same in every lane: once per row, same bits.
    let y_f32 = y as f32;
    let (k_y, col_y, row_y) = (splat(t[7] * y_f32), splat(t[1] * y_f32), splat(t[4] * y_f32));
    let (t0, t2, t3, t5, t6) = (splat(t[0]), splat(t[2]), splat(t[3]), splat(t[5]), splat(t[6]));
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // Element strides of a row and a column (both fit i32: see `takes`).
    let (row_stride, col_stride) =
        (_mm512_set1_epi32((width * channels) as i32), _mm512_set1_epi32(channels as i32));
    let mut vector_pixels = 0;
    for first in (0..width).step_by(LANES) {
        let valid: __mmask16 = if width - first >= LANES { !0 } else { (1 << (width - first)) - 1 };
        // `col as f32` in every lane (both conversions round to nearest even).
        let x = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32(first as i32), lanes));
        // AffineTransformSpec::source: k = t6 x + t7 y + 1; col = (t1 y + t0 x + t2) / k;
        // row = (t4 y + t3 x + t5) / k, left to right.
        let k = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(t6, x), k_y), one);
        let col = _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(col_y, _mm512_mul_ps(t0, x)), t2), k);
        let row = _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(row_y, _mm512_mul_ps(t3, x)), t5), k);
        let (rows, cols) = (taps(row, height, fill_mode), taps(col, width, fill_mode));
        let vector = valid & !(rows.scalar | cols.scalar);
        if vector != 0 {
            // Element offsets of the taps: r * width * channels + c * channels, exact for the
            // lanes of `vector`; the others (whatever their integers) read and write nothing.
            let row_at = [
                _mm512_mullo_epi32(rows.index[0], row_stride),
                _mm512_mullo_epi32(rows.index[1], row_stride),
            ];
            let col_at = [
                _mm512_mullo_epi32(cols.index[0], col_stride),
                _mm512_mullo_epi32(cols.index[1], col_stride),
            ];
            // `super::pixel`'s taps in its order, rows outer: (r0, c0), (r0, c1), (r1, c0), (r1, c1).
            let mut weights = [zero; 4];
            let mut offsets = [_mm512_setzero_si512(); 4];
            let mut reads = [0; 4];
            for (tap, ((weight, offset), read)) in
                weights.iter_mut().zip(&mut offsets).zip(&mut reads).enumerate()
            {
                let (r, c) = (tap / 2, tap % 2);
                *weight = _mm512_mul_ps(rows.weight[r], cols.weight[c]);
                *offset = _mm512_add_epi32(row_at[r], col_at[c]);
                *read = vector & rows.read[r] & cols.read[c];
            }
            for ch in 0..channels {
                let ch_offset = _mm512_set1_epi32(ch as i32);
                let mut sum = zero;
                for tap in 0..4 {
                    // SAFETY: in the lanes of `read`, the offset is that of an element of the
                    // image (fixed indices `r < height`, `c < width`, and `ch < channels`),
                    // whose length was asserted above; the other lanes read nothing and take
                    // the fill value, as the scalar code does where a tap reads no pixel.
                    let v = unsafe {
                        let at = _mm512_add_epi32(offsets[tap], ch_offset);
                        _mm512_mask_i32gather_ps::<4>(fill, reads[tap], at, image.as_ptr())
                    };
                    sum = _mm512_add_ps(sum, _mm512_mul_ps(weights[tap], v));
                }
                if channels == 1 {
                    // SAFETY: the lanes of `vector` are columns `first..width` of the row.
                    unsafe { _mm512_mask_storeu_ps(out_row.as_mut_ptr().add(first), vector, sum) };
                } else {
                    let at = _mm512_add_epi32(_mm512_mullo_epi32(lanes, col_stride), ch_offset);
                    // SAFETY: lane `i` of `vector` writes element `(first + i) * channels + ch`
                    // of the row, `first + i < width`.
                    unsafe {
                        _mm512_mask_i32scatter_ps::<4>(
                            out_row.as_mut_ptr().add(first * channels),
                            vector,
                            at,
                            sum,
                        )
                    };
                }
            }
        }
        vector_pixels += vector.count_ones() as usize;
        let mut scalar = valid & !vector;
        while scalar != 0 {
            let col = first + scalar.trailing_zeros() as usize;
            pixel(image, t, (y, col), spec, &mut out_row[col * channels..][..channels]);
            scalar &= scalar - 1;
        }
    }
    vector_pixels
}

/// Sixteen coordinates' taps on an axis, as `super::taps` finds them for bilinear reads: the
/// lower and upper indices after the fill rule, their weights, the lanes where each tap reads
/// a pixel (elsewhere the fill value: `FillMode::Constant` outside the image), and the lanes
/// left to the scalar code (a NaN coordinate, or a tap beyond [`fix`]'s reach).
struct Taps {
    index: [__m512i; 2],
    weight: [__m512; 2],
    read: [__mmask16; 2],
    scalar: __mmask16,
}

/// `super::taps` for bilinear reads at 16 coordinates `at` on an axis of `n` pixels: clamp,
/// `floor`, upper weight `at - lower`, lower weight `1 - upper`, indices `lower` and
/// `lower + 1` (added as floats, as there) through the fill rule.
#[inline]
#[target_feature(enable = "avx512f")]
fn taps(at: __m512, n: usize, mode: FillMode) -> Taps {
    let one = _mm512_set1_ps(1.0);
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(at, at);
    let at = clamp(at);
    let lower = floor(at);
    let upper_weight = _mm512_sub_ps(at, lower);
    let (lo, lo_read, lo_scalar) = fix(_mm512_cvttps_epi32(lower), n, mode);
    let (hi, hi_read, hi_scalar) = fix(_mm512_cvttps_epi32(_mm512_add_ps(lower, one)), n, mode);
    Taps {
        index: [lo, hi],
        weight: [_mm512_sub_ps(one, upper_weight), upper_weight],
        read: [lo_read, hi_read],
        scalar: nan | lo_scalar | hi_scalar,
    }
}

/// [`FillMode::index`] of tap indices `i` on an axis of `n` pixels, as `super::taps`' `fix`
/// applies it (inside the image, the index itself): the fixed indices, the lanes that read a
/// pixel, and the lanes left to the scalar code. Reflect and Wrap are written out for
/// `-n <= i < 2n` (one image either side, where augmentation's taps fall, without `index`'s
/// divisions; tested equal to it there); lanes beyond go to the scalar code.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn fix(i: __m512i, n: usize, mode: FillMode) -> (__m512i, __mmask16, __mmask16) {
    let n = n as i32;
    let splat = _mm512_set1_epi32;
    let below = _mm512_cmplt_epi32_mask(i, splat(0));
    let above = _mm512_cmpge_epi32_mask(i, splat(n));
    let (below_fixed, above_fixed) = match mode {
        FillMode::Constant => return (i, !(below | above), 0),
        FillMode::Nearest => return (_mm512_min_epi32(_mm512_max_epi32(i, splat(0)), splat(n - 1)), !0, 0),
        // -1 -> n - 1, n -> 0.
        FillMode::Wrap => (_mm512_add_epi32(i, splat(n)), _mm512_sub_epi32(i, splat(n))),
        // -1 -> 0, n -> n - 1.
        FillMode::Reflect => (_mm512_sub_epi32(splat(-1), i), _mm512_sub_epi32(splat(2 * n - 1), i)),
    };
    let far = _mm512_cmplt_epi32_mask(i, splat(-n)) | _mm512_cmpge_epi32_mask(i, splat(2 * n));
    let fixed = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(i, below, below_fixed), above, above_fixed);
    (fixed, !0, far)
}

/// `v.clamp(-COORDINATE_LIMIT, COORDINATE_LIMIT)` lane by lane, as `f32::clamp` does it
/// (NaN stays NaN).
#[inline]
#[target_feature(enable = "avx512f")]
fn clamp(v: __m512) -> __m512 {
    let (lo, hi) = (_mm512_set1_ps(-COORDINATE_LIMIT), _mm512_set1_ps(COORDINATE_LIMIT));
    let v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, lo), v, lo);
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, hi), v, hi)
}

/// `super::floor` lane by lane, for clamped coordinates (no `i32` overflow): truncate, step
/// down where truncation went up. (NaN, which `super::floor` reads as 0, gives -2^31 here:
/// [`taps`] leaves NaN lanes to the scalar code.)
#[inline]
#[target_feature(enable = "avx512f")]
fn floor(v: __m512) -> __m512 {
    let t = _mm512_cvtepi32_ps(_mm512_cvttps_epi32(v));
    _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask::<_CMP_GT_OQ>(t, v), t, _mm512_set1_ps(1.0))
}
