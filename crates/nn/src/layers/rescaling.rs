//! `Rescaling`: `x * scale + offset` (Keras' `keras.layers.Rescaling`, with one scale and one
//! offset for every value), in training and at inference alike.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Maps each value to `x * scale + offset`, e.g. pixels from `[0, 255]` to `[-1, 1]` with
/// `scale = 1 / 127.5`, `offset = -1`. Active in training and at inference, as in Keras.
///
/// ```
/// use nn::layers::{Dense, Flatten, Rescaling};
/// let mut model = nn::Sequential::new();
/// model.add(Rescaling::new(1.0 / 255.0).input_shape([28, 28, 1]))?;
/// model.add(Flatten::new())?;
/// model.add(Dense::new(10))?;
/// assert_eq!(model.count_params(), 28 * 28 * 10 + 10);
/// let x = nn::Array::new(vec![255.0; 28 * 28], [1, 28, 28, 1])?;
/// let mut scaled = nn::Sequential::new();
/// scaled.add(Rescaling::new(1.0 / 127.5).offset(-1.0).input_shape([28, 28, 1]))?;
/// assert!(scaled.predict(&x, 1)?[0].data().iter().all(|&v| (v - 1.0).abs() < 1e-6));
/// # Ok::<(), nn::Error>(())
/// ```
pub struct Rescaling {
    scale: f32,
    offset: f32,
    meta: LayerMeta,
}

impl Rescaling {
    /// Multiplies by `scale`, adding no offset.
    pub fn new(scale: f32) -> Self {
        Rescaling { scale, offset: 0.0, meta: LayerMeta::default() }
    }
    /// Adds `offset` after scaling (Keras' default: 0).
    pub fn offset(mut self, offset: f32) -> Self {
        self.offset = offset;
        self
    }
    meta_builders!();
}

impl Layer for Rescaling {
    layer_meta!("Rescaling", "rescaling");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        if !self.scale.is_finite() || !self.offset.is_finite() {
            return Err(Error::Build(format!(
                "Rescaling scale {} and offset {} must be finite",
                self.scale, self.offset
            )));
        }
        Ok(input_shape.to_vec())
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        Ok(x.affine(self.scale, self.offset)?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "scale": self.scale, "offset": self.offset }))
    }
}
