//! `Dropout`: zeroes a fraction of the inputs while training (scaling the rest), identity at
//! inference.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Inverted dropout.
pub struct Dropout {
    rate: f32,
    seed: Option<u64>,
    meta: LayerMeta,
}

impl Dropout {
    /// Drops each input with probability `rate` (in `[0, 1)`) during training.
    pub fn new(rate: f32) -> Self {
        Dropout { rate, seed: None, meta: LayerMeta::default() }
    }
    /// Seeds the layer's masks (Keras' `seed`): the same seed and training step, the same
    /// mask.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    meta_builders!();
}

impl Layer for Dropout {
    layer_meta!("Dropout", "dropout");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::Build(format!("Dropout rate {} must be in [0, 1)", self.rate)));
        }
        Ok(input_shape.to_vec())
    }
    fn forward(&mut self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor> {
        if ctx.training {
            Ok(x.dropout(self.rate, ctx.seed_with(self.seed))?)
        } else {
            Ok(x.clone())
        }
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "rate": self.rate, "seed": self.seed }))
    }
}
