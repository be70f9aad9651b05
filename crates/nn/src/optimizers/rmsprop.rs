//! RMSprop (Hinton), centered or not, with plain momentum (Keras' `RMSprop`).

use tensor::Tensor;

use super::base::{base_options, BaseOptions};
use super::LearningRate;
use crate::error::{Error, Result};

/// RMSprop as Keras computes it: `v = rho * v + (1 - rho) * g^2`, then
/// `w -= lr * g / sqrt(v + epsilon)`. Centered, the moving average of the gradient `a` is
/// taken too and `v - a^2` replaces `v`; with momentum the step is accumulated,
/// `m = momentum * m + step; w -= m`.
#[derive(Clone, Debug)]
pub struct RmsProp {
    /// Learning rate (Keras' default 0.001), or a schedule.
    pub learning_rate: LearningRate,
    /// Decay of the moving averages (0.9).
    pub rho: f32,
    /// Momentum (0: none), 0 or more.
    pub momentum: f32,
    /// Added under the square root (1e-7).
    pub epsilon: f32,
    /// Divide by the estimated variance of the gradient rather than its second moment (false).
    pub centered: bool,
    /// Gradient clipping and weight decay (none by default).
    pub base: BaseOptions,
}

impl RmsProp {
    /// RMSprop with a learning rate (or a schedule) and Keras' other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        RmsProp {
            learning_rate: learning_rate.into(),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            base: BaseOptions::default(),
        }
    }
    /// Sets the decay `rho`.
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }
    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }
    /// Sets `epsilon`.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
    /// Switches the centered variant on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    pub(super) fn check(&self) -> Result<()> {
        // Keras keeps no momentum for a negative one (`momentum > 0`): refused rather than
        // ignored.
        if !(self.momentum >= 0.0 && self.momentum.is_finite()) {
            return Err(Error::Options(format!(
                "RMSprop: momentum must be 0 or more, got {}",
                self.momentum
            )));
        }
        Ok(())
    }

    /// Keras' names, in its order: `velocity`, then `momentum` (with momentum) and
    /// `average_gradient` (centered).
    pub(super) fn slot_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }

    pub(super) fn update(
        &self,
        w: &Tensor,
        g: &Tensor,
        learning_rate: f32,
        slots: &mut [Option<Tensor>],
    ) -> Result<Tensor> {
        let rho = self.rho;
        // The averages start at 0: `rho * 0 + x` is `x`.
        let moving = |old: &Option<Tensor>, new: Tensor| -> Result<Tensor> {
            Ok(match old {
                Some(old) => old.mul_scalar(rho)?.add(&new)?,
                None => new,
            })
        };
        let velocity = moving(&slots[0], g.square()?.mul_scalar(1.0 - rho)?)?;
        let denominator = if self.centered {
            let k = slots.len() - 1;
            let average = moving(&slots[k], g.mul_scalar(1.0 - rho)?)?;
            let d = velocity.sub(&average.square()?)?.add_scalar(self.epsilon)?;
            slots[k] = Some(average);
            d
        } else {
            velocity.add_scalar(self.epsilon)?
        };
        slots[0] = Some(velocity);
        let increment = g.mul_scalar(learning_rate)?.div(&denominator.sqrt()?)?;
        let step = if self.momentum > 0.0 {
            let m = match &slots[1] {
                Some(m) => m.mul_scalar(self.momentum)?.add(&increment)?,
                None => increment,
            };
            slots[1] = Some(m.clone());
            m
        } else {
            increment
        };
        Ok(w.sub(&step)?)
    }
}

base_options!(RmsProp);

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp::new(0.001)
    }
}
