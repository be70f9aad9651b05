//! The AVX-512 rows against the scalar pixels, bit for bit.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::shape::FillMode;

const MODES: [FillMode; 4] = [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest];

/// A transform of kind `kind` for `height x width` images: rotations about a random point,
/// translations pushing taps far outside (also by whole pixels, whose zero weights meet
/// negative pixels as -0), zooms, shears, projective warps whose denominator crosses zero, and
/// coordinates that are NaN, infinite or huge.
fn transform(kind: usize, (height, width): (usize, usize), rng: &mut StdRng) -> [f32; TRANSFORM_LEN] {
    let (h, w) = (height as f32, width as f32);
    let mut shift = |n: f32| rng.random_range(-(n + 3.0)..n + 3.0);
    let (dx, dy) = (shift(w), shift(h));
    match kind {
        0 => {
            let angle = rng.random_range(-std::f32::consts::PI..std::f32::consts::PI);
            let (sin, cos) = angle.sin_cos();
            let (cx, cy) = (rng.random_range(-2.0..w + 2.0), rng.random_range(-2.0..h + 2.0));
            [cos, -sin, cx - (cos * cx - sin * cy), sin, cos, cy - (sin * cx + cos * cy), 0.0, 0.0]
        }
        1 => [1.0, 0.0, dx, 0.0, 1.0, dy, 0.0, 0.0],
        2 => [1.0, 0.0, dx.round(), 0.0, 1.0, dy.round(), 0.0, 0.0],
        3 => {
            let (zx, zy) = (rng.random_range(0.2..3.0), rng.random_range(0.2..3.0));
            [zx, 0.0, dx, 0.0, zy, dy, 0.0, 0.0]
        }
        4 => {
            let (sx, sy) = (rng.random_range(-1.5..1.5), rng.random_range(-1.5..1.5));
            [1.0, sx, dx, sy, 1.0, dy, 0.0, 0.0]
        }
        5 => {
            let mut t: [f32; TRANSFORM_LEN] = std::array::from_fn(|_| rng.random_range(-2.0..2.0));
            t[6] = rng.random_range(-0.3..0.3);
            t[7] = rng.random_range(-0.3..0.3);
            t
        }
        // k = 1 - x / n is zero at column n: x / 0 and 0 / 0 there.
        6 => {
            let n = rng.random_range(1..width.max(2)) as f32;
            let zero_numerator = rng.random_bool(0.5);
            let a2 = if zero_numerator { -n } else { dx };
            [1.0, 0.0, a2, 0.0, 0.0, 0.0, -1.0 / n, 0.0]
        }
        _ => {
            let wild = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, f32::MAX, 1e-40, 0.0];
            let mut t: [f32; TRANSFORM_LEN] = std::array::from_fn(|_| rng.random_range(-2.0..2.0));
            t[6] *= 0.1;
            t[7] *= 0.1;
            let i = rng.random_range(0..TRANSFORM_LEN);
            t[i] = wild[rng.random_range(0..wild.len())];
            t
        }
    }
}

/// Pixels in [-1, 1], some of them exactly 0 or -0.
fn image(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len)
        .map(|_| match rng.random_range(0..8) {
            0 => 0.0,
            1 => -0.0,
            _ => rng.random_range(-1.0..1.0),
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Every row of every kind of transform, widths 1 to 40 (one register, several, tails),
/// one and three channels, every fill mode: the AVX-512 row equals the scalar pixels bit for
/// bit, and its vector lanes computed a good share of the pixels (not only the scalar
/// fallback).
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_rows_equal_scalar_pixels_bit_for_bit() {
    if !crate::isa::features().avx512f {
        return;
    }
    let mut rng = StdRng::seed_from_u64(91);
    let (mut pixels, mut vector_pixels) = (0, 0);
    let mut nan_values = 0;
    for width in 1..=40 {
        for (k, &height) in [1, 2, 5, 17, 28].iter().enumerate() {
            for channels in [1, 3] {
                for kind in 0..8 {
                    let mode = MODES[(width + k + kind) % MODES.len()];
                    let fill_value = [0.0, 0.25, -1.5][(width + channels + kind) % 3];
                    let spec = AffineTransformSpec::new(
                        &[1, height, width, channels],
                        &[1, TRANSFORM_LEN],
                        Interpolation::Bilinear,
                        mode,
                        fill_value,
                    )
                    .unwrap();
                    assert!(avx512::takes(&spec));
                    let x = image(height * width * channels, &mut rng);
                    let t = transform(kind, (height, width), &mut rng);
                    for y in 0..height {
                        let mut want = vec![f32::NAN; width * channels];
                        for (col, out) in want.chunks_exact_mut(channels).enumerate() {
                            pixel(&x, &t, (y, col), &spec, out);
                        }
                        let mut got = vec![f32::NAN; width * channels];
                        // SAFETY: the CPU has AVX-512F and `takes` the spec (both checked).
                        vector_pixels += unsafe { avx512::bilinear_row(&x, &t, y, &spec, &mut got) };
                        pixels += width;
                        assert_eq!(
                            bits(&got),
                            bits(&want),
                            "{height}x{width}x{channels}, {mode:?} {fill_value}, transform {t:?}, row {y}"
                        );
                        nan_values += want.iter().filter(|v| v.is_nan()).count();
                    }
                }
            }
        }
    }
    eprintln!("{vector_pixels} of {pixels} pixels in vector lanes, {nan_values} NaN values");
    assert!(
        vector_pixels * 8 > pixels && vector_pixels < pixels,
        "{vector_pixels} of {pixels} in vector lanes"
    );
    // The NaN coordinates were there (their lanes go to the scalar code).
    assert!(nan_values > 0);
}

/// The fill rules of the AVX-512 rows give `FillMode::index`'s pixel (or none) for every tap
/// index within one image either side of every axis from 1 to 40 pixels, and leave the
/// farther ones to the scalar code.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx512_fill_rules_equal_fill_mode_index() {
    use std::arch::x86_64::*;
    if !crate::isa::features().avx512f {
        return;
    }
    for n in 1..=40usize {
        for mode in MODES {
            let reach = -(n as i64)..2 * n as i64;
            for first in (-3 * n as i32..3 * n as i32).step_by(16) {
                let i: [i32; 16] = std::array::from_fn(|lane| first + lane as i32);
                let mut fixed = [0i32; 16];
                // SAFETY: the CPU has AVX-512F (checked); both arrays hold 16 lanes.
                let (read, scalar) = unsafe {
                    let (v, read, scalar) = avx512::fix(_mm512_loadu_epi32(i.as_ptr()), n, mode);
                    _mm512_storeu_epi32(fixed.as_mut_ptr(), v);
                    (read, scalar)
                };
                for (lane, (&i, &fixed)) in i.iter().zip(&fixed).enumerate() {
                    let i = i as i64;
                    let far = matches!(mode, FillMode::Reflect | FillMode::Wrap) && !reach.contains(&i);
                    assert_eq!(scalar >> lane & 1 == 1, far, "{mode:?} {n}: index {i}");
                    if far {
                        continue;
                    }
                    let want = if (0..n as i64).contains(&i) { Some(i as usize) } else { mode.index(i, n) };
                    let got = (read >> lane & 1 == 1).then_some(fixed as usize);
                    assert_eq!(got, want, "{mode:?} {n}: index {i}");
                }
            }
        }
    }
}

/// The whole kernel (several images, threads, every interpolation and fill mode) gives the
/// scalar pixels' bits whichever build it picks; on this CPU it picks AVX-512 for bilinear.
#[test]
fn affine_transform_equals_its_scalar_build() {
    let mut rng = StdRng::seed_from_u64(92);
    for (dims, interpolation) in [
        ([64, 28, 28, 1], Interpolation::Bilinear),
        ([9, 13, 37, 3], Interpolation::Bilinear),
        ([9, 13, 37, 2], Interpolation::Nearest),
    ] {
        let [batch, height, width, channels] = dims;
        for (m, mode) in MODES.into_iter().enumerate() {
            let spec =
                AffineTransformSpec::new(&dims, &[batch, TRANSFORM_LEN], interpolation, mode, 0.5 * m as f32)
                    .unwrap();
            assert_eq!(
                vector_build(&spec),
                interpolation == Interpolation::Bilinear && crate::isa::features().avx512f
            );
            let x = image(batch * height * width * channels, &mut rng);
            let transforms: Vec<f32> =
                (0..batch).flat_map(|b| transform(b % 8, (height, width), &mut rng)).collect();
            let got = affine_transform(&x, &transforms, &spec);
            let want = affine_transform_with(&x, &transforms, &spec, false);
            assert_eq!(bits(&got), bits(&want), "{dims:?} {interpolation:?} {mode:?}");
        }
    }
}
