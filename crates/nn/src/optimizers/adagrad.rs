//! Adagrad (Duchi et al.), as Keras' `Adagrad`.

use tensor::Tensor;

use super::base::{base_options, BaseOptions};
use super::LearningRate;
use crate::error::{Error, Result};

/// Adagrad as Keras computes it: the accumulator starts at `initial_accumulator_value`,
/// `a += g^2`, then `w -= lr * g / sqrt(a + epsilon)`.
#[derive(Clone, Debug)]
pub struct Adagrad {
    /// Learning rate (Keras' default 0.001), or a schedule.
    pub learning_rate: LearningRate,
    /// The accumulators' starting value (0.1), 0 or more.
    pub initial_accumulator_value: f32,
    /// Added under the square root (1e-7).
    pub epsilon: f32,
    /// Gradient clipping and weight decay (none by default).
    pub base: BaseOptions,
}

impl Adagrad {
    /// Adagrad with a learning rate (or a schedule) and Keras' other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adagrad {
            learning_rate: learning_rate.into(),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            base: BaseOptions::default(),
        }
    }
    /// Sets the accumulators' starting value.
    pub fn initial_accumulator_value(mut self, value: f32) -> Self {
        self.initial_accumulator_value = value;
        self
    }
    /// Sets `epsilon`.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    pub(super) fn check(&self) -> Result<()> {
        let a = self.initial_accumulator_value;
        if !(a >= 0.0 && a.is_finite()) {
            return Err(Error::Options(format!(
                "Adagrad: initial_accumulator_value must be 0 or more (as Keras documents), got {a}"
            )));
        }
        Ok(())
    }

    pub(super) fn slot_names(&self) -> &'static [&'static str] {
        &["accumulator"]
    }

    pub(super) fn update(
        &self,
        w: &Tensor,
        g: &Tensor,
        learning_rate: f32,
        slots: &mut [Option<Tensor>],
    ) -> Result<Tensor> {
        let squares = g.square()?;
        let accumulator = match &slots[0] {
            Some(a) => a.add(&squares)?,
            None => squares.add_scalar(self.initial_accumulator_value)?,
        };
        let step = g.mul_scalar(learning_rate)?.div(&accumulator.add_scalar(self.epsilon)?.sqrt()?)?;
        slots[0] = Some(accumulator);
        Ok(w.sub(&step)?)
    }
}

base_options!(Adagrad);

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad::new(0.001)
    }
}
