//! What every Keras optimizer takes besides its own settings (Keras' `base_optimizer.py`):
//! gradient clipping (`clipnorm`, `clipvalue`, `global_clipnorm`) and decoupled weight decay,
//! applied in Keras' order: the gradients are clipped, the variables decayed
//! (`w -= w * weight_decay * lr`), then the optimizer's own update runs on both.

use tensor::Tensor;

use crate::error::{Error, Result};

/// Gradient clipping and weight decay, each off (`None`) unless set; at most one of the three
/// clippings, as Keras enforces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BaseOptions {
    /// `w -= w * weight_decay * lr` before each update (Keras' `weight_decay`).
    pub weight_decay: Option<f32>,
    /// Each variable's gradient is scaled to an L2 norm of at most this.
    pub clipnorm: Option<f32>,
    /// Each gradient value is clipped into `[-clipvalue, clipvalue]`.
    pub clipvalue: Option<f32>,
    /// All gradients are scaled together to a global L2 norm of at most this.
    pub global_clipnorm: Option<f32>,
}

impl BaseOptions {
    /// Refuses what Keras refuses (two clippings at once) and what Keras would silently ignore
    /// (a clipping of 0 or below) or compute as nonsense (a weight decay that is negative or not
    /// finite).
    pub(crate) fn check(&self, class_name: &str) -> Result<()> {
        let bad = |m: String| Err(Error::Options(format!("{class_name}: {m}")));
        let set: Vec<String> = [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
        .collect();
        if set.len() > 1 {
            return bad(format!(
                "only one of clipnorm, clipvalue and global_clipnorm can be set, as in Keras (got {})",
                set.join(", ")
            ));
        }
        for (name, value) in [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ] {
            if let Some(v) = value {
                if !(v > 0.0 && v.is_finite()) {
                    return bad(format!(
                        "{name} must be a positive number, got {v} (Keras would silently not clip; \
                         leave it unset for no clipping)"
                    ));
                }
            }
        }
        if let Some(wd) = self.weight_decay {
            if !(wd >= 0.0 && wd.is_finite()) {
                return bad(format!("weight_decay must be 0 or more, got {wd}"));
            }
        }
        Ok(())
    }

    /// The gradients clipped as Keras' `_clip_gradients` does (`None` for a variable that is not
    /// updated: a frozen layer's weights).
    pub(crate) fn clip(&self, gradients: Vec<Option<Tensor>>) -> Result<Vec<Option<Tensor>>> {
        let map = |f: &dyn Fn(&Tensor) -> tensor::Result<Tensor>| -> Result<Vec<Option<Tensor>>> {
            gradients.iter().map(|g| g.as_ref().map(f).transpose().map_err(Error::from)).collect()
        };
        if let Some(c) = self.clipnorm {
            // g * c / max(|g|, c), as Keras' `_clip_by_norm`.
            map(&|g| {
                let norm = g.square()?.sum_all()?.sqrt()?;
                g.mul_scalar(c)?.div(&norm.maximum(&Tensor::scalar(c, g.device())?)?)
            })
        } else if let Some(c) = self.global_clipnorm {
            let Some(first) = gradients.iter().flatten().next() else { return Ok(gradients) };
            let device = first.device().clone();
            let mut total: Option<Tensor> = None;
            for g in gradients.iter().flatten() {
                let squares = g.square()?.sum_all()?;
                total = Some(match total {
                    Some(t) => t.add(&squares)?,
                    None => squares,
                });
            }
            let norm = total.expect("one gradient at least").sqrt()?;
            // Keras' clip_by_global_norm: c * min(1 / norm, 1 / c) + (norm - norm), the last
            // term making the scale NaN for an infinite or NaN norm.
            let inverse_limit = Tensor::scalar((1.0 / c as f64) as f32, &device)?;
            let scale = Tensor::scalar(1.0, &device)?
                .div(&norm)?
                .minimum(&inverse_limit)?
                .mul_scalar(c)?
                .add(&norm.sub(&norm)?)?;
            map(&|g| g.mul(&scale))
        } else if let Some(v) = self.clipvalue {
            map(&|g| g.clamp(-v, v))
        } else {
            Ok(gradients)
        }
    }

    /// `w - w * weight_decay * lr` (Keras' `_apply_weight_decay`), or `w` itself without decay.
    pub(crate) fn decay(&self, w: &Tensor, learning_rate: f32) -> Result<Tensor> {
        match self.weight_decay {
            Some(wd) => Ok(w.sub(&w.mul_scalar(wd)?.mul_scalar(learning_rate)?)?),
            None => Ok(w.clone()),
        }
    }
}

/// The builder methods of [`BaseOptions`] on an optimizer with a `base` field.
macro_rules! base_options {
    ($optimizer:ty) => {
        impl $optimizer {
            /// Decays the variables before each update: `w -= w * weight_decay * lr` (Keras'
            /// `weight_decay`).
            pub fn weight_decay(mut self, weight_decay: f32) -> Self {
                self.base.weight_decay = Some(weight_decay);
                self
            }
            /// Scales each variable's gradient to an L2 norm of at most `clipnorm`.
            pub fn clipnorm(mut self, clipnorm: f32) -> Self {
                self.base.clipnorm = Some(clipnorm);
                self
            }
            /// Clips each gradient value into `[-clipvalue, clipvalue]`.
            pub fn clipvalue(mut self, clipvalue: f32) -> Self {
                self.base.clipvalue = Some(clipvalue);
                self
            }
            /// Scales all gradients together to a global L2 norm of at most `global_clipnorm`.
            pub fn global_clipnorm(mut self, global_clipnorm: f32) -> Self {
                self.base.global_clipnorm = Some(global_clipnorm);
                self
            }
        }
    };
}
pub(crate) use base_options;
