//! Adam, with the AMSGrad variant, and AdamW: Adam with decoupled weight decay (Keras' `Adam`
//! and `AdamW`).

use tensor::Tensor;

use super::base::{base_options, BaseOptions};
use super::LearningRate;
use crate::error::{Error, Result};

/// Declares an Adam-family optimizer: the struct with Keras' fields and defaults, its
/// builders, its slots and its update (the two differ only in their documentation and default
/// weight decay).
macro_rules! adam_family {
    ($(#[$doc:meta])* $name:ident, weight_decay: $weight_decay:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            /// Learning rate (Keras' default 0.001), or a schedule.
            pub learning_rate: LearningRate,
            /// Decay of the first moment (0.9).
            pub beta_1: f32,
            /// Decay of the second moment (0.999).
            pub beta_2: f32,
            /// Added to the denominator (1e-7).
            pub epsilon: f32,
            /// AMSGrad (Reddi et al.): divide by the running maximum of the second moment
            /// (false).
            pub amsgrad: bool,
            /// Gradient clipping and weight decay.
            pub base: BaseOptions,
        }

        impl $name {
            /// The optimizer with a learning rate (or a schedule) and Keras' other defaults.
            pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
                $name {
                    learning_rate: learning_rate.into(),
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                    amsgrad: false,
                    base: BaseOptions { weight_decay: $weight_decay, ..BaseOptions::default() },
                }
            }
            /// Sets the decay of the first moment.
            pub fn beta_1(mut self, beta_1: f32) -> Self {
                self.beta_1 = beta_1;
                self
            }
            /// Sets the decay of the second moment.
            pub fn beta_2(mut self, beta_2: f32) -> Self {
                self.beta_2 = beta_2;
                self
            }
            /// Sets `epsilon`.
            pub fn epsilon(mut self, epsilon: f32) -> Self {
                self.epsilon = epsilon;
                self
            }
            /// Switches AMSGrad on or off.
            pub fn amsgrad(mut self, amsgrad: bool) -> Self {
                self.amsgrad = amsgrad;
                self
            }

            pub(super) fn slot_names(&self) -> &'static [&'static str] {
                slot_names(self.amsgrad)
            }

            pub(super) fn update(
                &self,
                w: &Tensor,
                g: &Tensor,
                learning_rate: f32,
                t: i32,
                slots: &mut [Option<Tensor>],
            ) -> Result<Tensor> {
                update([self.beta_1, self.beta_2, self.epsilon], self.amsgrad, w, g, learning_rate, t, slots)
            }
        }

        base_options!($name);

        impl Default for $name {
            fn default() -> Self {
                $name::new(0.001)
            }
        }
    };
}

adam_family!(
    /// Adam (Kingma & Ba), as Keras implements it: bias correction folded into the step size and
    /// `epsilon` added to `sqrt(v)`; with `amsgrad`, the largest `v` so far divides instead.
    Adam, weight_decay: None
);

adam_family!(
    /// AdamW (Loshchilov & Hutter): Adam whose variables decay by `w -= w * weight_decay * lr`
    /// before each update, as Keras' `AdamW` (Keras' `Adam` with a weight decay, which it
    /// requires). The decay is [`base.weight_decay`](BaseOptions::weight_decay), 0.004 by
    /// default.
    AdamW, weight_decay: Some(0.004)
);

impl AdamW {
    pub(super) fn check(&self) -> Result<()> {
        if self.base.weight_decay.is_none() {
            return Err(Error::Options(
                "AdamW: weight_decay must be a number, as Keras requires (use Adam for none)".into(),
            ));
        }
        Ok(())
    }
}

fn slot_names(amsgrad: bool) -> &'static [&'static str] {
    if amsgrad {
        &["momentum", "velocity", "velocity_hat"]
    } else {
        &["momentum", "velocity"]
    }
}

/// One Adam step of `w` at step `t` (from 1); `slots` are the first moment, the second and,
/// with `amsgrad`, the largest second moment so far (Keras' `velocity_hat`).
fn update(
    [beta_1, beta_2, epsilon]: [f32; 3],
    amsgrad: bool,
    w: &Tensor,
    g: &Tensor,
    learning_rate: f32,
    t: i32,
    slots: &mut [Option<Tensor>],
) -> Result<Tensor> {
    let m = match &slots[0] {
        Some(m) => m.mul_scalar(beta_1)?.add(&g.mul_scalar(1.0 - beta_1)?)?,
        None => g.mul_scalar(1.0 - beta_1)?,
    };
    let g2 = g.square()?.mul_scalar(1.0 - beta_2)?;
    let v = match &slots[1] {
        Some(v) => v.mul_scalar(beta_2)?.add(&g2)?,
        None => g2,
    };
    let denominator = if amsgrad {
        // The maximum starts at 0, and `v >= 0`.
        let v_hat = match &slots[2] {
            Some(v_hat) => v_hat.maximum(&v)?,
            None => v.clone(),
        };
        slots[2] = Some(v_hat.clone());
        v_hat
    } else {
        v.clone()
    };
    let lr_t = learning_rate * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
    let step = m.div(&denominator.sqrt()?.add_scalar(epsilon)?)?.mul_scalar(lr_t)?;
    slots[0] = Some(m);
    slots[1] = Some(v);
    Ok(w.sub(&step)?)
}
