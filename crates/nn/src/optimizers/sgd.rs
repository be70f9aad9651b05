//! Stochastic gradient descent, with momentum and Nesterov momentum (Keras' `SGD`).

use tensor::Tensor;

use super::base::{base_options, BaseOptions};
use super::LearningRate;
use crate::error::{Error, Result};

/// Stochastic gradient descent: `v = momentum * v - lr * g; w += v` (Nesterov:
/// `w += momentum * v - lr * g`), plain `w -= lr * g` without momentum.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate (Keras' default 0.01), or a schedule.
    pub learning_rate: LearningRate,
    /// Momentum (default 0), in `[0, 1]`.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Gradient clipping and weight decay (none by default).
    pub base: BaseOptions,
}

impl Sgd {
    /// SGD with a learning rate (or a schedule: `Sgd::new(ExponentialDecay::new(0.1, 1000,
    /// 0.9))`), no momentum.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Sgd {
            learning_rate: learning_rate.into(),
            momentum: 0.0,
            nesterov: false,
            base: BaseOptions::default(),
        }
    }
    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }
    /// Switches Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    pub(super) fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Options(format!("SGD: momentum must be in [0, 1], got {}", self.momentum)));
        }
        Ok(())
    }

    pub(super) fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum == 0.0 {
            &[]
        } else {
            &["momentum"]
        }
    }

    /// The updated `w`; `slots` holds the velocity (with momentum).
    pub(super) fn update(
        &self,
        w: &Tensor,
        g: &Tensor,
        learning_rate: f32,
        slots: &mut [Option<Tensor>],
    ) -> Result<Tensor> {
        if self.momentum == 0.0 {
            // One pass: `w + (-lr) * g` rounds exactly as `w - lr * g`.
            return Ok(w.add_scaled(g, -learning_rate)?);
        }
        let scaled = g.mul_scalar(learning_rate)?;
        let v = match &slots[0] {
            Some(v) => v.mul_scalar(self.momentum)?.sub(&scaled)?,
            None => scaled.neg()?,
        };
        let step = if self.nesterov { v.mul_scalar(self.momentum)?.sub(&scaled)? } else { v.clone() };
        slots[0] = Some(v);
        Ok(w.add(&step)?)
    }
}

base_options!(Sgd);

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}
