//! `UpSampling2D`: repeats each image's rows and columns (Keras' `keras.layers.UpSampling2D`
//! with `interpolation="nearest"`, `channels_last`). Built from `reshape` and `broadcast_to`,
//! so every backend runs it forward and backward (the gradient sums each repeated block).

use tensor::{Shape, Tensor};

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Nearest-neighbour upsampling: `(h, w, c)` to `(h * size.0, w * size.1, c)`, each pixel
/// repeated into a `size.0 x size.1` block.
///
/// Only Keras' default `interpolation="nearest"` is offered; loading a saved config that asks
/// for another interpolation (`"bilinear"`, ...) is refused.
///
/// ```
/// use nn::layers::UpSampling2D;
/// let mut model = nn::Sequential::new();
/// model.add(UpSampling2D::new().size((1, 2)).input_shape([2, 2, 1]))?;
/// let x = nn::Array::new(vec![1.0, 2.0, 3.0, 4.0], [1, 2, 2, 1])?;
/// let y = model.predict(&x, 1)?;
/// assert_eq!(y[0].data(), &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
/// # Ok::<(), nn::Error>(())
/// ```
pub struct UpSampling2D {
    size: (usize, usize),
    meta: LayerMeta,
}

impl Default for UpSampling2D {
    fn default() -> Self {
        Self::new()
    }
}

impl UpSampling2D {
    /// Keras' default: each pixel becomes a 2x2 block.
    pub fn new() -> Self {
        UpSampling2D { size: (2, 2), meta: LayerMeta::default() }
    }
    /// The repetition factors (rows, columns), each at least 1.
    pub fn size(mut self, size: (usize, usize)) -> Self {
        self.size = size;
        self
    }
    meta_builders!();
}

impl Layer for UpSampling2D {
    layer_meta!("UpSampling2D", "up_sampling2d");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        let (sh, sw) = self.size;
        if sh == 0 || sw == 0 {
            return Err(Error::Build(format!(
                "UpSampling2D size {:?} must be at least 1 on each axis",
                self.size
            )));
        }
        let &[h, w, c] = input_shape else {
            return Err(Error::Build(format!(
                "UpSampling2D expects (height, width, channels) input, got {input_shape:?}"
            )));
        };
        Ok(vec![h * sh, w * sw, c])
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        let &[n, h, w, c] = x.dims() else {
            return Err(Error::Build(format!(
                "UpSampling2D expects [batch, height, width, channels] input, got {:?}",
                x.dims()
            )));
        };
        let (sh, sw) = self.size;
        if (sh, sw) == (1, 1) {
            return Ok(x.clone());
        }
        let blocks = x.reshape([n, h, 1, w, 1, c])?.broadcast_to(&Shape::from([n, h, sh, w, sw, c]))?;
        Ok(blocks.reshape([n, h * sh, w * sw, c])?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "size": [self.size.0, self.size.1],
            "data_format": "channels_last",
            "interpolation": "nearest",
        }))
    }
}
