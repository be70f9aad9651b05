//! `SpatialDropout2D`: drops whole channels of each sample while training (Keras'
//! `keras.layers.SpatialDropout2D`, `channels_last`), identity at inference.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Channel dropout for images: in training, each channel of each sample is zeroed with
/// probability `rate` over the whole image, and the kept ones are scaled by `1 / (1 - rate)`
/// (Keras' noise shape `(batch, 1, 1, channels)`). At inference the input passes unchanged.
///
/// The mask is drawn from the step's seed ([`ForwardCtx::seed`]) as [`Dropout`](super::Dropout)'s
/// is: the same seed gives the same mask on every backend.
///
/// ```
/// use nn::layers::{ForwardCtx, Layer, SpatialDropout2D};
/// use nn::Tensor;
/// let device = nn::device::cpu();
/// let x = Tensor::ones([1, 2, 2, 3], &device)?;
/// let mut layer = SpatialDropout2D::new(0.5);
/// let y = layer.forward(&x, ForwardCtx::training(7))?.to_vec()?;
/// // Each channel is 0 or 2 at all four pixels.
/// for k in 0..3 {
///     let channel: Vec<f32> = y.iter().skip(k).step_by(3).copied().collect();
///     assert!(channel == [0.0; 4] || channel == [2.0; 4]);
/// }
/// assert_eq!(layer.forward(&x, ForwardCtx::inference())?.to_vec()?, vec![1.0; 12]);
/// # Ok::<(), nn::Error>(())
/// ```
pub struct SpatialDropout2D {
    rate: f32,
    seed: Option<u64>,
    meta: LayerMeta,
}

impl SpatialDropout2D {
    /// Drops each channel with probability `rate` (in `[0, 1)`) during training.
    pub fn new(rate: f32) -> Self {
        SpatialDropout2D { rate, seed: None, meta: LayerMeta::default() }
    }
    /// Seeds the layer's masks (Keras' `seed`): the same seed and training step, the same
    /// mask.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    meta_builders!();
}

impl Layer for SpatialDropout2D {
    layer_meta!("SpatialDropout2D", "spatial_dropout2d");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::Build(format!("SpatialDropout2D rate {} must be in [0, 1)", self.rate)));
        }
        if input_shape.len() != 3 {
            return Err(Error::Build(format!(
                "SpatialDropout2D expects (height, width, channels) input, got {input_shape:?}"
            )));
        }
        Ok(input_shape.to_vec())
    }
    fn forward(&mut self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor> {
        let &[n, _, _, c] = x.dims() else {
            return Err(Error::Build(format!(
                "SpatialDropout2D expects [batch, height, width, channels] input, got {:?}",
                x.dims()
            )));
        };
        if !ctx.training || self.rate == 0.0 {
            return Ok(x.clone());
        }
        // A constant mask (no gradient of its own): 0 or 1 / (1 - rate) per sample and channel.
        let mask = Tensor::ones([n, 1, 1, c], x.device())?.dropout(self.rate, ctx.seed_with(self.seed))?;
        Ok(x.mul(&mask)?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "rate": self.rate, "seed": self.seed, "data_format": "channels_last" }))
    }
}
