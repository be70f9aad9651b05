//! Image resampling through affine (projective) transforms, for augmentation layers: the
//! geometry and fill rules are `tensor::shape::AffineTransformSpec`'s and `FillMode::index`'s.

use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use tensor::shape::{AffineTransformSpec, Interpolation, COORDINATE_LIMIT, TRANSFORM_LEN};
use tensor::{ImageOps, Result, Storage};

/// One pixel's interpolation taps along an axis: up to two (index, weight) pairs, `None`
/// where the constant fill is read.
type Taps = [(Option<usize>, f32); 2];

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
            let lower = at.floor();
            let upper_weight = at - lower;
            [(fix(lower), 1.0 - upper_weight), (fix(lower + 1.0), upper_weight)]
        }
    }
}

/// Resamples `x` (`[batch, height, width, channels]`) through one transform per image.
pub fn affine_transform(x: &[f32], transforms: &[f32], spec: &AffineTransformSpec) -> Vec<f32> {
    let &AffineTransformSpec { batch, height, width, channels, interpolation, fill_value, .. } = spec;
    let row_len = width * channels;
    let mut out = vec![0.0f32; batch * height * row_len];
    if out.is_empty() {
        return out;
    }
    let taps_per_axis = if interpolation == Interpolation::Nearest { 1 } else { 2 };
    out.par_chunks_mut(row_len).enumerate().for_each(|(image_row, out_row)| {
        let (b, y) = (image_row / height, image_row % height);
        let t = &transforms[b * TRANSFORM_LEN..(b + 1) * TRANSFORM_LEN];
        let image = &x[b * height * row_len..(b + 1) * height * row_len];
        for (col, pixel) in out_row.chunks_exact_mut(channels).enumerate() {
            let (src_row, src_col) = AffineTransformSpec::source(t, y, col);
            let (rows, cols) = (taps(src_row, height, spec), taps(src_col, width, spec));
            for (ch, value) in pixel.iter_mut().enumerate() {
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
    });
    out
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
