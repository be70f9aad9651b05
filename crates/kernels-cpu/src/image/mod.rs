//! Image resampling through affine (projective) transforms, for augmentation layers: the
//! geometry and fill rules are `tensor::shape::AffineTransformSpec`'s and `FillMode::index`'s.
//! `pixel` is the definition; bilinear rows run through an AVX-512 build of it (`avx512.rs`)
//! where the CPU has one, with the same bits.

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use tensor::shape::{AffineTransformSpec, Interpolation, COORDINATE_LIMIT, TRANSFORM_LEN};
use tensor::{ImageOps, Result, Storage};

/// One pixel's interpolation taps along an axis: up to two (index, weight) pairs, `None`
/// where the constant fill is read.
type Taps = [(Option<usize>, f32); 2];

/// `x.floor()` for `|x| <= COORDINATE_LIMIT` (and NaN, read as 0), inline: without SSE4.1 in
/// the baseline target, `f32::floor` is a call into libm that cost a seventh of the kernel.
fn floor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// The taps of coordinate `at` on an axis of `n` pixels.
fn taps(at: f32, n: usize, spec: &AffineTransformSpec) -> Taps {
    let at = at.clamp(-COORDINATE_LIMIT, COORDINATE_LIMIT);
    // Inside the image every fill mode reads the pixel itself: only taps outside need
    // `FillMode::index`, whose integer divisions cost most of a pixel's time.
    let fix = |i: f32| {
        let i = i as i64;
        if (0..n as i64).contains(&i) {
            Some(i as usize)
        } else {
            spec.fill_mode.index(i, n)
        }
    };
    match spec.interpolation {
        // Half away from zero, as JAX's map_coordinates rounds (`f32::round`).
        Interpolation::Nearest => [(fix(at.round()), 1.0), (None, 0.0)],
        Interpolation::Bilinear => {
            let lower = floor(at);
            let upper_weight = at - lower;
            [(fix(lower), 1.0 - upper_weight), (fix(lower + 1.0), upper_weight)]
        }
    }
}

/// Resamples `x` (`[batch, height, width, channels]`) through one transform per image.
///
/// Bilinear rows run 16 pixels at a time with AVX-512 where the CPU has it
/// (`avx512::bilinear_row`): the same operations in the same order as `pixel`, so the same
/// bits (tested), whichever build runs.
pub fn affine_transform(x: &[f32], transforms: &[f32], spec: &AffineTransformSpec) -> Vec<f32> {
    affine_transform_with(x, transforms, spec, vector_build(spec))
}

/// Whether [`affine_transform`] runs `spec` through the AVX-512 rows on this CPU.
fn vector_build(spec: &AffineTransformSpec) -> bool {
    #[cfg(target_arch = "x86_64")]
    if spec.interpolation == Interpolation::Bilinear
        && avx512::takes(spec)
        && crate::isa::Build::Avx512.runs_here()
    {
        return true;
    }
    let _ = spec;
    false
}

/// [`affine_transform`], through the AVX-512 rows if `vector` (which the caller has checked
/// [`vector_build`] allows) or pixel by pixel.
fn affine_transform_with(
    x: &[f32],
    transforms: &[f32],
    spec: &AffineTransformSpec,
    vector: bool,
) -> Vec<f32> {
    let &AffineTransformSpec { batch, height, width, channels, .. } = spec;
    let row_len = width * channels;
    let mut out = vec![0.0f32; batch * height * row_len];
    if out.is_empty() {
        return out;
    }
    assert!(
        x.len() >= out.len() && transforms.len() >= batch * TRANSFORM_LEN,
        "affine_transform: input too short"
    );
    assert!(!vector || vector_build(spec), "the AVX-512 rows do not take this resampling here");
    // A row of 28 pixels is little work for a task of its own: a task takes a few images' rows.
    out.par_chunks_mut(row_len).with_min_len(4 * height).enumerate().for_each(|(image_row, out_row)| {
        let (b, y) = (image_row / height, image_row % height);
        let t = &transforms[b * TRANSFORM_LEN..(b + 1) * TRANSFORM_LEN];
        let image = &x[b * height * row_len..(b + 1) * height * row_len];
        #[cfg(target_arch = "x86_64")]
        if vector {
            // SAFETY: the CPU has AVX-512F (`vector_build`, asserted above).
            unsafe { avx512::bilinear_row(image, t, y, spec, out_row) };
            return;
        }
        for (col, out) in out_row.chunks_exact_mut(channels).enumerate() {
            pixel(image, t, (y, col), spec, out);
        }
    });
    out
}

/// Output pixel `(y, col)` of `image` under transform `t`, all its channels, into `out`: the
/// scalar definition of the kernel (the vector rows fall back to it lane by lane).
fn pixel(image: &[f32], t: &[f32], (y, col): (usize, usize), spec: &AffineTransformSpec, out: &mut [f32]) {
    let &AffineTransformSpec { height, width, channels, interpolation, fill_value, .. } = spec;
    let (src_row, src_col) = AffineTransformSpec::source(t, y, col);
    if interpolation == Interpolation::Bilinear
        && bilinear_inside(image, (src_row, src_col), (height, width), out)
    {
        return;
    }
    let taps_per_axis = if interpolation == Interpolation::Nearest { 1 } else { 2 };
    let (rows, cols) = (taps(src_row, height, spec), taps(src_col, width, spec));
    for (ch, value) in out.iter_mut().enumerate() {
        // Tap by tap, rows outer, in JAX's order: sum of (row weight * column weight) * pixel.
        let mut sum = 0.0f32;
        for &(r, wr) in &rows[..taps_per_axis] {
            for &(c, wc) in &cols[..taps_per_axis] {
                let v = match (r, c) {
                    (Some(r), Some(c)) => image[(r * width + c) * channels + ch],
                    _ => fill_value,
                };
                sum += wr * wc * v;
            }
        }
        *value = sum;
    }
}

/// Bilinear reads whose four taps all lie inside the image (most pixels of an augmentation):
/// no fill rule, no per-tap checks. The same products and sums in the same order as the
/// general path, so the same bits. Returns false, writing nothing, when a tap is outside.
fn bilinear_inside(
    image: &[f32],
    (row, col): (f32, f32),
    (height, width): (usize, usize),
    pixel: &mut [f32],
) -> bool {
    let (row, col) =
        (row.clamp(-COORDINATE_LIMIT, COORDINATE_LIMIT), col.clamp(-COORDINATE_LIMIT, COORDINATE_LIMIT));
    let (top, left) = (floor(row), floor(col));
    // Written so that NaN fails the test.
    if !(top >= 0.0 && left >= 0.0 && top + 1.0 < height as f32 && left + 1.0 < width as f32) {
        return false;
    }
    let (r, c) = (top as usize, left as usize);
    let (wr1, wc1) = (row - top, col - left);
    let (wr0, wc0) = (1.0 - wr1, 1.0 - wc1);
    let channels = pixel.len();
    let at = |r: usize, c: usize| (r * width + c) * channels;
    let (p00, p01, p10, p11) = (at(r, c), at(r, c + 1), at(r + 1, c), at(r + 1, c + 1));
    for (ch, value) in pixel.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        sum += wr0 * wc0 * image[p00 + ch];
        sum += wr0 * wc1 * image[p01 + ch];
        sum += wr1 * wc0 * image[p10 + ch];
        sum += wr1 * wc1 * image[p11 + ch];
        *value = sum;
    }
    true
}

impl ImageOps for CpuBackend {
    fn affine_transform(
        &self,
        x: &Storage,
        transforms: &Storage,
        spec: &AffineTransformSpec,
    ) -> Result<Storage> {
        let x = cpu_slice(x, "affine_transform")?;
        let transforms = cpu_slice(transforms, "affine_transform")?;
        Ok(store(self.run(|| affine_transform(x, transforms, spec))))
    }
}
