//! `ZeroPadding2D`: adds rows and columns of zeros around each image (Keras'
//! `keras.layers.ZeroPadding2D`, `channels_last`). Built from `concat` with zero tensors, so
//! every backend runs it forward and backward (the gradient is a slice of the output's).

use serde_json::Value;
use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// How many rows and columns of zeros [`ZeroPadding2D`] adds on each side.
///
/// Converts from Keras' three forms: one size for every side (`2`), a symmetric
/// `(height, width)` pair (`(1, 2)`), or `((top, bottom), (left, right))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SidePadding {
    /// Rows above.
    pub top: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the left.
    pub left: usize,
    /// Columns on the right.
    pub right: usize,
}

impl From<usize> for SidePadding {
    fn from(p: usize) -> Self {
        SidePadding { top: p, bottom: p, left: p, right: p }
    }
}

impl From<(usize, usize)> for SidePadding {
    fn from((h, w): (usize, usize)) -> Self {
        SidePadding { top: h, bottom: h, left: w, right: w }
    }
}

impl From<((usize, usize), (usize, usize))> for SidePadding {
    fn from(((top, bottom), (left, right)): ((usize, usize), (usize, usize))) -> Self {
        SidePadding { top, bottom, left, right }
    }
}

impl SidePadding {
    /// Reads Keras' config value: an int, `[h, w]` or `[[top, bottom], [left, right]]`.
    pub(crate) fn from_json(v: &Value) -> Option<SidePadding> {
        let size = |v: &Value| v.as_u64().and_then(|v| usize::try_from(v).ok());
        let pair = |v: &Value| match v.as_array().map(Vec::as_slice) {
            Some([a, b]) => Some((size(a)?, size(b)?)),
            _ => size(v).map(|p| (p, p)),
        };
        if let Some(p) = size(v) {
            return Some(p.into());
        }
        match v.as_array().map(Vec::as_slice) {
            Some([h, w]) => Some((pair(h)?, pair(w)?).into()),
            _ => None,
        }
    }
}

/// Pads each image with zeros: `(h, w, c)` to `(top + h + bottom, left + w + right, c)`.
///
/// ```
/// use nn::layers::{Conv2D, ZeroPadding2D};
/// let mut model = nn::Sequential::new();
/// model.add(ZeroPadding2D::new(((1, 2), (3, 0))).input_shape([28, 28, 1]))?;
/// assert_eq!(model.output_shape(), Some(&[31, 31, 1][..]));
/// model.add(Conv2D::new(4, (3, 3)))?;
/// assert_eq!(model.output_shape(), Some(&[29, 29, 4][..]));
/// # Ok::<(), nn::Error>(())
/// ```
pub struct ZeroPadding2D {
    padding: SidePadding,
    meta: LayerMeta,
}

impl Default for ZeroPadding2D {
    /// Keras' default: one row or column on every side.
    fn default() -> Self {
        Self::new(1)
    }
}

impl ZeroPadding2D {
    /// Pads by `padding`: `p`, `(h, w)` or `((top, bottom), (left, right))`, as in Keras.
    pub fn new(padding: impl Into<SidePadding>) -> Self {
        ZeroPadding2D { padding: padding.into(), meta: LayerMeta::default() }
    }
    /// The padding on each side.
    pub fn padding(&self) -> SidePadding {
        self.padding
    }
    meta_builders!();
}

/// `x` with `before` and `after` zero slices added along `axis`.
fn pad_axis(x: &Tensor, axis: usize, before: usize, after: usize) -> Result<Tensor> {
    if before + after == 0 {
        return Ok(x.clone());
    }
    let zeros = |len: usize| {
        let mut dims = x.dims().to_vec();
        dims[axis] = len;
        Tensor::zeros(dims, x.device())
    };
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(zeros(before)?);
    }
    parts.push(x.clone());
    if after > 0 {
        parts.push(zeros(after)?);
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Ok(Tensor::concat(&refs, axis as isize)?)
}

impl Layer for ZeroPadding2D {
    layer_meta!("ZeroPadding2D", "zero_padding2d");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        let &[h, w, c] = input_shape else {
            return Err(Error::Build(format!(
                "ZeroPadding2D expects (height, width, channels) input, got {input_shape:?}"
            )));
        };
        let p = self.padding;
        Ok(vec![p.top + h + p.bottom, p.left + w + p.right, c])
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::Build(format!(
                "ZeroPadding2D expects [batch, height, width, channels] input, got {:?}",
                x.dims()
            )));
        }
        let p = self.padding;
        pad_axis(&pad_axis(x, 1, p.top, p.bottom)?, 2, p.left, p.right)
    }
    fn config(&self) -> Option<Value> {
        let p = self.padding;
        Some(serde_json::json!({
            "padding": [[p.top, p.bottom], [p.left, p.right]],
            "data_format": "channels_last",
        }))
    }
}
