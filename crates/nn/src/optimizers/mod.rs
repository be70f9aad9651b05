//! Optimizers with Keras' update rules: SGD (with momentum and Nesterov), Adam (and AMSGrad),
//! AdamW, RMSprop and Adagrad, each with a constant learning rate or a
//! [schedule](schedules), and Keras' base options ([`BaseOptions`]: gradient clipping by
//! value, by norm or by global norm, and weight decay).

mod adagrad;
mod adam;
mod base;
pub(crate) mod config;
mod rmsprop;
pub mod schedules;
mod sgd;
#[cfg(test)]
mod tests;

use tensor::{no_grad, Gradients, Tensor};

pub use adagrad::Adagrad;
pub use adam::{Adam, AdamW};
pub use base::BaseOptions;
pub use rmsprop::RmsProp;
pub use schedules::{
    CosineDecay, ExponentialDecay, LearningRate, LearningRateSchedule, PiecewiseConstantDecay,
};
pub use sgd::Sgd;

use crate::error::{Error, Result};

/// An optimizer configuration.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Stochastic gradient descent.
    Sgd(Sgd),
    /// Adam.
    Adam(Adam),
    /// Adam with decoupled weight decay.
    AdamW(AdamW),
    /// RMSprop.
    RmsProp(RmsProp),
    /// Adagrad.
    Adagrad(Adagrad),
}

macro_rules! optimizer_from {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Optimizer {
            fn from(o: $variant) -> Self {
                Optimizer::$variant(o)
            }
        }
    )*};
}
optimizer_from!(Sgd, Adam, AdamW, RmsProp, Adagrad);

impl Optimizer {
    /// The learning rate (or schedule).
    pub fn learning_rate(&self) -> &LearningRate {
        match self {
            Optimizer::Sgd(o) => &o.learning_rate,
            Optimizer::Adam(o) => &o.learning_rate,
            Optimizer::AdamW(o) => &o.learning_rate,
            Optimizer::RmsProp(o) => &o.learning_rate,
            Optimizer::Adagrad(o) => &o.learning_rate,
        }
    }

    fn learning_rate_mut(&mut self) -> &mut LearningRate {
        match self {
            Optimizer::Sgd(o) => &mut o.learning_rate,
            Optimizer::Adam(o) => &mut o.learning_rate,
            Optimizer::AdamW(o) => &mut o.learning_rate,
            Optimizer::RmsProp(o) => &mut o.learning_rate,
            Optimizer::Adagrad(o) => &mut o.learning_rate,
        }
    }

    /// Gradient clipping and weight decay.
    pub fn base(&self) -> &BaseOptions {
        match self {
            Optimizer::Sgd(o) => &o.base,
            Optimizer::Adam(o) => &o.base,
            Optimizer::AdamW(o) => &o.base,
            Optimizer::RmsProp(o) => &o.base,
            Optimizer::Adagrad(o) => &o.base,
        }
    }

    /// The rate of the first step.
    pub fn initial_learning_rate(&self) -> f32 {
        self.learning_rate().initial()
    }

    /// Keras' class name (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "SGD",
            Optimizer::Adam(_) => "Adam",
            Optimizer::AdamW(_) => "AdamW",
            Optimizer::RmsProp(_) => "RMSprop",
            Optimizer::Adagrad(_) => "Adagrad",
        }
    }

    /// Refuses settings Keras refuses (two clippings, SGD momentum outside `[0, 1]`, AdamW
    /// without weight decay) and settings Keras would silently ignore or that make no sense (a
    /// clipping of 0 or below, a negative RMSprop momentum, weight decay or Adagrad starting
    /// accumulator), each with the reason. The learning rate is checked at `compile`.
    pub fn check(&self) -> Result<()> {
        self.base().check(self.class_name())?;
        match self {
            Optimizer::Sgd(o) => o.check(),
            Optimizer::Adam(_) => Ok(()),
            Optimizer::AdamW(o) => o.check(),
            Optimizer::RmsProp(o) => o.check(),
            Optimizer::Adagrad(o) => o.check(),
        }
    }

    /// Names of the per-variable state tensors, as Keras names them.
    fn slot_names(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd(o) => o.slot_names(),
            Optimizer::Adam(o) => o.slot_names(),
            Optimizer::AdamW(o) => o.slot_names(),
            Optimizer::RmsProp(o) => o.slot_names(),
            Optimizer::Adagrad(o) => o.slot_names(),
        }
    }

    /// The updated variable `w` from its (clipped) gradient at step `t` (from 1), updating its
    /// `slots`.
    fn update(
        &self,
        w: &Tensor,
        g: &Tensor,
        learning_rate: f32,
        t: i32,
        slots: &mut [Option<Tensor>],
    ) -> Result<Tensor> {
        match self {
            Optimizer::Sgd(o) => o.update(w, g, learning_rate, slots),
            Optimizer::Adam(o) => o.update(w, g, learning_rate, t, slots),
            Optimizer::AdamW(o) => o.update(w, g, learning_rate, t, slots),
            Optimizer::RmsProp(o) => o.update(w, g, learning_rate, slots),
            Optimizer::Adagrad(o) => o.update(w, g, learning_rate, slots),
        }
    }
}

/// An optimizer together with its per-variable state (momenta), for one model.
pub struct OptimizerState {
    config: Optimizer,
    iterations: u64,
    /// `slots[i][k]`: variable `i`'s state named `slot_names()[k]` (`None` before its first
    /// update).
    slots: Vec<Vec<Option<Tensor>>>,
}

impl OptimizerState {
    /// Fresh state for `config`.
    pub fn new(config: Optimizer) -> Self {
        OptimizerState { config, iterations: 0, slots: Vec::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &Optimizer {
        &self.config
    }

    /// Number of updates applied.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The learning rate of the next update (a schedule's value after
    /// [`iterations`](Self::iterations) updates, as Keras' `optimizer.learning_rate`).
    pub fn learning_rate(&self) -> f32 {
        self.config.learning_rate().at(self.iterations)
    }

    /// Sets a constant learning rate (Keras' `optimizer.learning_rate = lr`, what
    /// `ReduceLROnPlateau` and `LearningRateScheduler` do). An optimizer created with a schedule
    /// refuses, as in Keras.
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()> {
        match self.config.learning_rate_mut() {
            LearningRate::Constant(lr) => {
                *lr = learning_rate;
                Ok(())
            }
            LearningRate::Schedule(s) => Err(Error::Options(format!(
                "this optimizer was created with a {} schedule as its learning rate, so its learning rate \
                 cannot be set; create it with a constant rate for callbacks that set one",
                s.class_name()
            ))),
        }
    }

    /// Names of the per-variable state tensors this optimizer keeps, as Keras names them:
    /// SGD with momentum keeps a velocity (`momentum`), Adam and AdamW their two moments
    /// (`momentum`, `velocity`) and with AMSGrad the largest second moment (`velocity_hat`),
    /// RMSprop `velocity`, with momentum `momentum` and centered `average_gradient`, Adagrad
    /// its `accumulator`; plain SGD nothing.
    pub fn slot_names(&self) -> &'static [&'static str] {
        self.config.slot_names()
    }

    /// The state of variable `index` for each of [`slot_names`](Self::slot_names) (`None`
    /// before the first update).
    pub(crate) fn slots_of(&self, index: usize) -> Vec<Option<&Tensor>> {
        let of = self.slots.get(index);
        (0..self.slot_names().len()).map(|k| of.and_then(|s| s.get(k)).and_then(Option::as_ref)).collect()
    }

    /// State restored from a checkpoint: `slots[i][k]` is variable `i`'s `k`-th slot (in
    /// [`slot_names`](Self::slot_names) order; none for a frozen variable that had none).
    pub(crate) fn restored(config: Optimizer, iterations: u64, slots: Vec<Vec<Tensor>>) -> Self {
        let mut state = OptimizerState::new(config);
        state.iterations = iterations;
        let count = state.slot_names().len();
        state.slots = slots
            .into_iter()
            .map(|s| {
                let mut s: Vec<Option<Tensor>> = s.into_iter().map(Some).collect();
                s.resize(count, None);
                s
            })
            .collect();
        state
    }

    /// Applies one update to every variable in `params` (always passed in the same order, the
    /// model's [`variables`](crate::Model::variables)) from `grads`: the gradients clipped and
    /// the variables decayed as the [base options](BaseOptions) say, then the optimizer's
    /// update. A frozen layer's weights are constants, not variables: they are skipped,
    /// keeping their slot. A variable without a gradient is an error: it means the loss does
    /// not depend on it, which Keras also reports. Settings [`Optimizer::check`] refuses are
    /// refused here, before anything changes.
    pub fn apply(&mut self, params: &mut [&mut Tensor], grads: &Gradients) -> Result<()> {
        self.config.check()?;
        let gradients = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if !p.is_variable() {
                    return Ok(None);
                }
                let g = grads.get(p).ok_or_else(|| {
                    Error::Build(format!("variable {i} of shape {} has no gradient", p.shape()))
                })?;
                Ok(Some(g.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        if self.slots.len() != params.len() {
            self.slots = vec![vec![None; self.slot_names().len()]; params.len()];
        }
        let learning_rate = self.learning_rate();
        self.iterations += 1;
        let t = self.iterations as i32;
        no_grad(|| {
            let base = self.config.base();
            let gradients = base.clip(gradients)?;
            for ((p, g), slots) in params.iter_mut().zip(&gradients).zip(&mut self.slots) {
                let Some(g) = g else { continue };
                let w = base.decay(p, learning_rate)?;
                let updated = self.config.update(&w, g, learning_rate, t, slots)?;
                **p = updated.to_variable();
            }
            Ok(())
        })
    }
}
