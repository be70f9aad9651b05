//! Optimizers with Keras' update rules: SGD (with momentum and Nesterov) and Adam, each with a
//! constant learning rate or a [schedule](schedules).

pub mod schedules;

use tensor::{no_grad, Gradients, Tensor};

pub use schedules::{
    CosineDecay, ExponentialDecay, LearningRate, LearningRateSchedule, PiecewiseConstantDecay,
};

use crate::error::{Error, Result};

/// Stochastic gradient descent: `v = momentum * v - lr * g; w += v` (Nesterov:
/// `w += momentum * v - lr * g`), plain `w -= lr * g` without momentum.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate (Keras' default 0.01), or a schedule.
    pub learning_rate: LearningRate,
    /// Momentum (default 0).
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Sgd {
    /// SGD with a learning rate (or a schedule: `Sgd::new(ExponentialDecay::new(0.1, 1000,
    /// 0.9))`), no momentum.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Sgd { learning_rate: learning_rate.into(), momentum: 0.0, nesterov: false }
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
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

/// Adam (Kingma & Ba), as Keras implements it: bias correction folded into the step size and
/// `epsilon` added to `sqrt(v)`.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate (Keras' default 0.001), or a schedule.
    pub learning_rate: LearningRate,
    /// Decay of the first moment (0.9).
    pub beta_1: f32,
    /// Decay of the second moment (0.999).
    pub beta_2: f32,
    /// Added to the denominator (1e-7).
    pub epsilon: f32,
}

impl Adam {
    /// Adam with a learning rate (or a schedule) and Keras' other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adam { learning_rate: learning_rate.into(), beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new(0.001)
    }
}

/// An optimizer configuration.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Stochastic gradient descent.
    Sgd(Sgd),
    /// Adam.
    Adam(Adam),
}

impl From<Sgd> for Optimizer {
    fn from(s: Sgd) -> Self {
        Optimizer::Sgd(s)
    }
}
impl From<Adam> for Optimizer {
    fn from(a: Adam) -> Self {
        Optimizer::Adam(a)
    }
}

impl Optimizer {
    /// The learning rate (or schedule).
    pub fn learning_rate(&self) -> &LearningRate {
        match self {
            Optimizer::Sgd(s) => &s.learning_rate,
            Optimizer::Adam(a) => &a.learning_rate,
        }
    }

    fn learning_rate_mut(&mut self) -> &mut LearningRate {
        match self {
            Optimizer::Sgd(s) => &mut s.learning_rate,
            Optimizer::Adam(a) => &mut a.learning_rate,
        }
    }

    /// The rate of the first step.
    pub fn initial_learning_rate(&self) -> f32 {
        self.learning_rate().initial()
    }

    /// Keras' class name (`SGD`, `Adam`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "SGD",
            Optimizer::Adam(_) => "Adam",
        }
    }
}

/// An optimizer together with its per-variable state (momenta), for one model.
pub struct OptimizerState {
    config: Optimizer,
    iterations: u64,
    /// SGD: velocity per variable; Adam: first moment.
    slot1: Vec<Option<Tensor>>,
    /// Adam: second moment.
    slot2: Vec<Option<Tensor>>,
}

impl OptimizerState {
    /// Fresh state for `config`.
    pub fn new(config: Optimizer) -> Self {
        OptimizerState { config, iterations: 0, slot1: Vec::new(), slot2: Vec::new() }
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
    /// SGD with momentum keeps a velocity (`momentum`), Adam its two moments (`momentum`,
    /// `velocity`), plain SGD nothing.
    pub fn slot_names(&self) -> &'static [&'static str] {
        match &self.config {
            Optimizer::Sgd(s) if s.momentum == 0.0 => &[],
            Optimizer::Sgd(_) => &["momentum"],
            Optimizer::Adam(_) => &["momentum", "velocity"],
        }
    }

    /// The state of variable `index` for each of [`slot_names`](Self::slot_names) (`None`
    /// before the first update).
    pub(crate) fn slots_of(&self, index: usize) -> Vec<Option<&Tensor>> {
        let slots = [&self.slot1, &self.slot2];
        (0..self.slot_names().len()).map(|k| slots[k].get(index).and_then(Option::as_ref)).collect()
    }

    /// State restored from a checkpoint: `slots[i][k]` is variable `i`'s `k`-th slot (in
    /// [`slot_names`](Self::slot_names) order).
    pub(crate) fn restored(config: Optimizer, iterations: u64, slots: Vec<Vec<Tensor>>) -> Self {
        let mut state = OptimizerState::new(config);
        state.iterations = iterations;
        if !slots.is_empty() {
            state.slot1 = slots.iter().map(|s| s.first().cloned()).collect();
            state.slot2 = slots.iter().map(|s| s.get(1).cloned()).collect();
        }
        state
    }

    /// Applies one update to every variable in `params` (always passed in the same order, the
    /// model's [`variables`](crate::Model::variables)) from `grads`. A frozen layer's weights
    /// are constants, not variables: they are skipped, keeping their slot. A variable without
    /// a gradient is an error: it means the loss does not depend on it, which Keras also
    /// reports.
    pub fn apply(&mut self, params: &mut [&mut Tensor], grads: &Gradients) -> Result<()> {
        if self.slot1.len() != params.len() {
            self.slot1 = vec![None; params.len()];
            self.slot2 = vec![None; params.len()];
        }
        let learning_rate = self.learning_rate();
        self.iterations += 1;
        let t = self.iterations as i32;
        no_grad(|| {
            for (i, p) in params.iter_mut().enumerate() {
                if !p.is_variable() {
                    continue;
                }
                let g = grads.get(p).ok_or_else(|| {
                    Error::Build(format!("variable {i} of shape {} has no gradient", p.shape()))
                })?;
                let updated = match &self.config {
                    // One pass: `p + (-lr) * g` rounds exactly as `p - lr * g`.
                    Optimizer::Sgd(s) if s.momentum == 0.0 => p.add_scaled(g, -learning_rate)?,
                    Optimizer::Sgd(s) => {
                        let scaled = g.mul_scalar(learning_rate)?;
                        let v = match &self.slot1[i] {
                            Some(v) => v.mul_scalar(s.momentum)?.sub(&scaled)?,
                            None => scaled.neg()?,
                        };
                        let step =
                            if s.nesterov { v.mul_scalar(s.momentum)?.sub(&scaled)? } else { v.clone() };
                        self.slot1[i] = Some(v);
                        p.add(&step)?
                    }
                    Optimizer::Adam(a) => {
                        let m = match &self.slot1[i] {
                            Some(m) => m.mul_scalar(a.beta_1)?.add(&g.mul_scalar(1.0 - a.beta_1)?)?,
                            None => g.mul_scalar(1.0 - a.beta_1)?,
                        };
                        let g2 = g.square()?.mul_scalar(1.0 - a.beta_2)?;
                        let v = match &self.slot2[i] {
                            Some(v) => v.mul_scalar(a.beta_2)?.add(&g2)?,
                            None => g2,
                        };
                        let lr_t = learning_rate * (1.0 - a.beta_2.powi(t)).sqrt() / (1.0 - a.beta_1.powi(t));
                        let step = m.div(&v.sqrt()?.add_scalar(a.epsilon)?)?.mul_scalar(lr_t)?;
                        self.slot1[i] = Some(m);
                        self.slot2[i] = Some(v);
                        p.sub(&step)?
                    }
                };
                **p = updated.to_variable();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs two updates of `w = [1, -2]` with the constant gradient `g = [0.5, 1]`.
    fn two_steps(opt: impl Into<Optimizer>) -> Vec<f32> {
        let dev = crate::device::cpu();
        let mut state = OptimizerState::new(opt.into());
        let mut w = Tensor::from_slice(&[1.0, -2.0], [2], &dev).unwrap().to_variable();
        for _ in 0..2 {
            // loss = sum(w * g) has gradient g.
            let g = Tensor::from_slice(&[0.5, 1.0], [2], &dev).unwrap();
            let grads = w.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
            state.apply(&mut [&mut w], &grads).unwrap();
        }
        w.to_vec().unwrap()
    }

    fn close(a: &[f32], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn sgd_plain() {
        close(&two_steps(Sgd::new(0.1)), &[1.0 - 0.1, -2.0 - 0.2]);
    }

    #[test]
    fn sgd_momentum() {
        // v1 = -lr g; v2 = m v1 - lr g = -(1 + m) lr g; w2 = w - (2 + m) lr g
        close(&two_steps(Sgd::new(0.1).momentum(0.9)), &[1.0 - 2.9 * 0.05, -2.0 - 2.9 * 0.1]);
    }

    #[test]
    fn sgd_nesterov() {
        // step_t = m v_t - lr g: step1 = -(1 + m) lr g, step2 = -(1 + m + m^2) lr g
        let total = 1.9 + 2.71;
        close(
            &two_steps(Sgd::new(0.1).momentum(0.9).nesterov(true)),
            &[1.0 - total * 0.05, -2.0 - total * 0.1],
        );
    }

    #[test]
    fn adam_matches_keras_formula() {
        // With a constant gradient, m_t/(sqrt(v_t)) after bias correction is sign(g) exactly,
        // so each step moves by lr * g / (|g| + eps * sqrt(1 - b2^t) / (1 - b1^t)) ~= lr.
        let lr = 0.01f64;
        let mut w = [1.0f64, -2.0];
        let g = [0.5f64, 1.0];
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            for i in 0..2 {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                w[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
            }
        }
        close(&two_steps(Adam::new(0.01)), &w);
    }
}
