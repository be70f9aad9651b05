//! The activation layers `LeakyReLU` and `ReLU` (Keras' `keras.layers.LeakyReLU` and
//! `keras.layers.ReLU`, with their arguments and checks), built from elementwise ops.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// `x` where `x >= 0`, else `negative_slope * x` (Keras' default slope: 0.3).
///
/// ```
/// use nn::layers::{ForwardCtx, Layer, LeakyReLU};
/// use nn::Tensor;
/// let x = Tensor::from_slice(&[-2.0, 0.0, 3.0], [1, 3], &nn::device::cpu())?;
/// let y = LeakyReLU::new().negative_slope(0.5).forward(&x, ForwardCtx::inference())?;
/// assert_eq!(y.to_vec()?, vec![-1.0, 0.0, 3.0]);
/// # Ok::<(), nn::Error>(())
/// ```
pub struct LeakyReLU {
    negative_slope: f32,
    meta: LayerMeta,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        Self::new()
    }
}

impl LeakyReLU {
    /// Keras' default slope, 0.3.
    pub fn new() -> Self {
        LeakyReLU { negative_slope: 0.3, meta: LayerMeta::default() }
    }
    /// The slope below zero (at least 0).
    pub fn negative_slope(mut self, negative_slope: f32) -> Self {
        self.negative_slope = negative_slope;
        self
    }
    meta_builders!();
}

/// Refuses what Keras refuses: a negative (or NaN) setting.
fn non_negative(class: &str, what: &str, value: f32) -> Result<()> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(Error::Build(format!("{class} {what} {value} must be a number at least 0")))
    }
}

impl Layer for LeakyReLU {
    layer_meta!("LeakyReLU", "leaky_re_lu");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        non_negative("LeakyReLU", "negative_slope", self.negative_slope)?;
        Ok(input_shape.to_vec())
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        Ok(x.leaky_relu(self.negative_slope)?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "negative_slope": self.negative_slope }))
    }
}

/// Keras' `ReLU` layer: with `t = threshold`, `a = negative_slope`, `m = max_value`,
/// `f(x) = min(x, m)` for `x > t` (`x` when there is no `m`), `a * (x - t)` otherwise.
///
/// As in Keras (`keras.activations.relu`), the part above the threshold is clipped to
/// `[0, m]`, and the defaults (`t = 0`, `a = 0`, no `m`) give the plain `max(x, 0)`.
pub struct ReLU {
    max_value: Option<f32>,
    negative_slope: f32,
    threshold: f32,
    meta: LayerMeta,
}

impl Default for ReLU {
    fn default() -> Self {
        Self::new()
    }
}

impl ReLU {
    /// Keras' defaults: `max(x, 0)`.
    pub fn new() -> Self {
        ReLU { max_value: None, negative_slope: 0.0, threshold: 0.0, meta: LayerMeta::default() }
    }
    /// The largest output (at least 0); `None`, the default, for no limit.
    pub fn max_value(mut self, max_value: Option<f32>) -> Self {
        self.max_value = max_value;
        self
    }
    /// The slope below the threshold (at least 0).
    pub fn negative_slope(mut self, negative_slope: f32) -> Self {
        self.negative_slope = negative_slope;
        self
    }
    /// Inputs at or below it are not passed on (at least 0).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }
    meta_builders!();

    /// Whether its arguments make it the plain `max(x, 0)`.
    pub(crate) fn is_plain(&self) -> bool {
        (self.max_value, self.negative_slope, self.threshold) == (None, 0.0, 0.0)
    }
}

impl Layer for ReLU {
    layer_meta!("ReLU", "re_lu");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        if let Some(m) = self.max_value {
            non_negative("ReLU", "max_value", m)?;
        }
        non_negative("ReLU", "negative_slope", self.negative_slope)?;
        non_negative("ReLU", "threshold", self.threshold)?;
        Ok(input_shape.to_vec())
    }
    /// Keras' arithmetic: `clip(x * (x > t), 0, m) - a * relu(t - x)`.
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        let (t, a) = (self.threshold, self.negative_slope);
        let above = match (t == 0.0, self.max_value) {
            (true, None) if a != 0.0 => return Ok(x.leaky_relu(a)?),
            (true, None) => return Ok(x.relu()?),
            (true, Some(m)) => x.clamp(0.0, m)?,
            (false, max) => {
                // 1 where x > t: the complement of t >= x (a constant, so no gradient).
                let at_most = Tensor::full(t, [1], x.device())?.greater_equal(x)?;
                let kept = x.mul(&at_most.affine(-1.0, 1.0)?)?;
                match max {
                    Some(m) => kept.clamp(0.0, m)?,
                    None => kept,
                }
            }
        };
        if a == 0.0 {
            return Ok(above);
        }
        // a * relu(t - x) = relu(a * t - a * x), as a >= 0.
        Ok(above.sub(&x.affine(-a, a * t)?.relu()?)?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }))
    }
}
