//! The geometry of image resampling ([`crate::Tensor::affine_transform`]): how a transform
//! maps output pixels to input coordinates, how those are interpolated, and what is read
//! outside the image. The rules are Keras 3's (`keras.ops.image.affine_transform`, whose JAX
//! backend follows `scipy.ndimage.map_coordinates`), shared by every backend.

use crate::error::{Result, TensorError};

/// Floats per image in a transform: `[a0, a1, a2, b0, b1, b2, c0, c1]`.
pub const TRANSFORM_LEN: usize = 8;

/// Coordinates are clamped to `±COORDINATE_LIMIT` before their taps are found, so a wild
/// transform cannot overflow the integer arithmetic of the fill modes (every image axis is far
/// shorter; f32 has no fractional bits left at this size).
pub const COORDINATE_LIMIT: f32 = 16_777_216.0;

/// How a resampled pixel is read from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest input pixel (coordinates rounded half away from zero).
    Nearest,
    /// Bilinear: the four surrounding pixels, weighted.
    Bilinear,
}

/// What is read at an integer pixel index outside the image (per axis, for each tap of the
/// interpolation), for an axis of `n` pixels `a b c d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillMode {
    /// `d c b a | a b c d | d c b a`: mirrored about the edge.
    Reflect,
    /// `a b c d | a b c d | a b c d`.
    Wrap,
    /// The fill value (`k k k k | a b c d | k k k k`); a tap outside contributes it.
    Constant,
    /// `a a a a | a b c d | d d d d`.
    Nearest,
}

impl FillMode {
    /// The pixel read for tap index `i` on an axis of `n` pixels, or `None` where the fill
    /// value is read instead (only [`FillMode::Constant`], outside the image).
    pub fn index(self, i: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        let fixed = match self {
            FillMode::Constant => {
                return (0..n).contains(&i).then_some(i as usize);
            }
            FillMode::Nearest => i.clamp(0, n - 1),
            FillMode::Wrap => i.rem_euclid(n),
            // JAX's `_reflect_index_fixer`: a mirror of period 2n over half-pixel steps.
            FillMode::Reflect => {
                let s = 2 * n;
                ((2 * i + 1 + s).rem_euclid(2 * s) - s).abs().saturating_sub(1).div_euclid(2)
            }
        };
        Some(fixed as usize)
    }

    /// The code kernels switch on (the WGSL shader's too).
    pub fn code(self) -> u32 {
        match self {
            FillMode::Reflect => 0,
            FillMode::Wrap => 1,
            FillMode::Constant => 2,
            FillMode::Nearest => 3,
        }
    }
}

/// What an affine (projective) resampling of NHWC images computes; see
/// [`crate::Tensor::affine_transform`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineTransformSpec {
    /// Images.
    pub batch: usize,
    /// Rows of each image (input and output).
    pub height: usize,
    /// Columns of each image.
    pub width: usize,
    /// Channels (resampled alike).
    pub channels: usize,
    /// How reads between pixels are interpolated.
    pub interpolation: Interpolation,
    /// What is read outside the image.
    pub fill_mode: FillMode,
    /// The value [`FillMode::Constant`] reads outside.
    pub fill_value: f32,
}

impl AffineTransformSpec {
    /// Checks an image batch's dims and its transforms' dims against each other.
    pub fn new(
        images: &[usize],
        transforms: &[usize],
        interpolation: Interpolation,
        fill_mode: FillMode,
        fill_value: f32,
    ) -> Result<Self> {
        let &[batch, height, width, channels] = images else {
            return Err(TensorError::InvalidArgument(format!(
                "affine_transform takes NHWC images (rank 4), got shape {images:?}"
            )));
        };
        if transforms != [batch, TRANSFORM_LEN] {
            return Err(TensorError::InvalidArgument(format!(
                "affine_transform takes one transform of {TRANSFORM_LEN} floats per image: \
                 shape [{batch}, {TRANSFORM_LEN}] for images {images:?}, got {transforms:?}"
            )));
        }
        if !fill_value.is_finite() {
            return Err(TensorError::InvalidArgument(format!(
                "affine_transform fill value must be finite, got {fill_value}"
            )));
        }
        Ok(AffineTransformSpec { batch, height, width, channels, interpolation, fill_mode, fill_value })
    }

    /// The input coordinates `(row, column)` output pixel `(y, x)` reads under transform `t`:
    /// `x' = (a0 x + a1 y + a2) / k`, `y' = (b0 x + b1 y + b2) / k`, `k = c0 x + c1 y + 1`,
    /// in f32 and in this order, on every backend.
    pub fn source(t: &[f32], y: usize, x: usize) -> (f32, f32) {
        let (x, y) = (x as f32, y as f32);
        let k = t[6] * x + t[7] * y + 1.0;
        let col = (t[1] * y + t[0] * x + t[2]) / k;
        let row = (t[4] * y + t[3] * x + t[5]) / k;
        (row, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keras' (scipy's) tables for an axis `a b c d`.
    #[test]
    fn fill_modes_read_what_keras_reads() {
        let read = |mode: FillMode| (-5..9).map(|i| mode.index(i, 4).map(|i| i as i64)).collect::<Vec<_>>();
        let some = |v: &[i64]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(read(FillMode::Reflect), some(&[3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]));
        assert_eq!(read(FillMode::Wrap), some(&[3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]));
        assert_eq!(read(FillMode::Nearest), some(&[0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3]));
        let constant = read(FillMode::Constant);
        assert_eq!(constant[5..9], some(&[0, 1, 2, 3]));
        assert!(constant[..5].iter().chain(&constant[9..]).all(Option::is_none));
        assert_eq!(FillMode::Reflect.index(7, 1), Some(0));
    }
}
