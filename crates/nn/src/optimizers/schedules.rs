//! Learning rates that change with the step, as Keras' `keras.optimizers.schedules`: pass one
//! where an optimizer takes a learning rate (`Sgd::new(ExponentialDecay::new(0.1, 1000, 0.96))`).
//! The rate of a step is the schedule at the number of updates done before it (Keras'
//! `optimizer.iterations`), computed in `f32` as Keras does.

use crate::error::{Error, Result};

/// A learning rate: a constant, or a schedule of the step.
#[derive(Clone, Debug, PartialEq)]
pub enum LearningRate {
    /// The same rate every step (settable by callbacks such as `ReduceLROnPlateau`).
    Constant(f32),
    /// A rate computed from the step (not settable, as in Keras).
    Schedule(LearningRateSchedule),
}

impl LearningRate {
    /// The rate for the step after `iterations` updates.
    pub fn at(&self, iterations: u64) -> f32 {
        match self {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Schedule(s) => s.at(iterations),
        }
    }
    /// The rate of the first step.
    pub fn initial(&self) -> f32 {
        self.at(0)
    }
}

impl From<f32> for LearningRate {
    fn from(lr: f32) -> Self {
        LearningRate::Constant(lr)
    }
}

/// Keras' learning-rate schedules.
#[derive(Clone, Debug, PartialEq)]
pub enum LearningRateSchedule {
    /// See [`ExponentialDecay`].
    ExponentialDecay(ExponentialDecay),
    /// See [`PiecewiseConstantDecay`].
    PiecewiseConstantDecay(PiecewiseConstantDecay),
    /// See [`CosineDecay`].
    CosineDecay(CosineDecay),
}

impl LearningRateSchedule {
    /// The rate for the step after `step` updates.
    pub fn at(&self, step: u64) -> f32 {
        match self {
            LearningRateSchedule::ExponentialDecay(s) => s.at(step),
            LearningRateSchedule::PiecewiseConstantDecay(s) => s.at(step),
            LearningRateSchedule::CosineDecay(s) => s.at(step),
        }
    }

    /// Keras' class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            LearningRateSchedule::ExponentialDecay(_) => "ExponentialDecay",
            LearningRateSchedule::PiecewiseConstantDecay(_) => "PiecewiseConstantDecay",
            LearningRateSchedule::CosineDecay(_) => "CosineDecay",
        }
    }

    /// Refuses settings Keras refuses (a `decay_steps` of 0, mismatched piecewise lists).
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Options(format!("{}: {m}", self.class_name())));
        match self {
            LearningRateSchedule::ExponentialDecay(s) if s.decay_steps == 0 => {
                bad("decay_steps must be > 0".into())
            }
            LearningRateSchedule::CosineDecay(s) if s.decay_steps == 0 => {
                bad("decay_steps must be > 0".into())
            }
            LearningRateSchedule::PiecewiseConstantDecay(s) if s.boundaries.len() + 1 != s.values.len() => {
                bad(format!(
                    "the boundaries ({}) must be one fewer than the values ({})",
                    s.boundaries.len(),
                    s.values.len()
                ))
            }
            LearningRateSchedule::PiecewiseConstantDecay(s)
                if s.boundaries.windows(2).any(|w| w[0] > w[1]) =>
            {
                bad(format!("the boundaries {:?} must not decrease", s.boundaries))
            }
            _ => Ok(()),
        }
    }
}

impl From<LearningRateSchedule> for LearningRate {
    fn from(schedule: LearningRateSchedule) -> Self {
        LearningRate::Schedule(schedule)
    }
}

/// `initial_learning_rate * decay_rate ^ (step / decay_steps)`, the exponent floored with
/// `staircase`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps per factor of `decay_rate`.
    pub decay_steps: u64,
    /// The factor.
    pub decay_rate: f32,
    /// Whether the rate changes in steps (every `decay_steps`) rather than smoothly.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// A smooth decay (Keras' `staircase=False`).
    pub fn new(initial_learning_rate: f32, decay_steps: u64, decay_rate: f32) -> Self {
        ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase: false }
    }
    /// Sets `staircase`.
    pub fn staircase(mut self, yes: bool) -> Self {
        self.staircase = yes;
        self
    }
    fn at(&self, step: u64) -> f32 {
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
    }
}

impl From<ExponentialDecay> for LearningRateSchedule {
    fn from(s: ExponentialDecay) -> Self {
        LearningRateSchedule::ExponentialDecay(s)
    }
}

impl From<ExponentialDecay> for LearningRate {
    fn from(s: ExponentialDecay) -> Self {
        LearningRate::Schedule(s.into())
    }
}

/// `values[0]` up to step `boundaries[0]` (included), `values[1]` up to `boundaries[1]`, ...,
/// `values[n]` after the last boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct PiecewiseConstantDecay {
    /// Steps where the rate changes, increasing.
    pub boundaries: Vec<u64>,
    /// One more rate than boundaries.
    pub values: Vec<f32>,
}

impl PiecewiseConstantDecay {
    /// The schedule of `values` changing after each of `boundaries` (checked at `compile`).
    pub fn new(boundaries: impl Into<Vec<u64>>, values: impl Into<Vec<f32>>) -> Self {
        PiecewiseConstantDecay { boundaries: boundaries.into(), values: values.into() }
    }
    fn at(&self, step: u64) -> f32 {
        let piece = self.boundaries.iter().take_while(|&&b| step > b).count();
        self.values.get(piece).or(self.values.last()).copied().unwrap_or(f32::NAN)
    }
}

impl From<PiecewiseConstantDecay> for LearningRateSchedule {
    fn from(s: PiecewiseConstantDecay) -> Self {
        LearningRateSchedule::PiecewiseConstantDecay(s)
    }
}

impl From<PiecewiseConstantDecay> for LearningRate {
    fn from(s: PiecewiseConstantDecay) -> Self {
        LearningRate::Schedule(s.into())
    }
}

/// Cosine decay from `initial_learning_rate` to `alpha * initial_learning_rate` over
/// `decay_steps` (after an optional linear warm-up to `warmup_target` over `warmup_steps`, when
/// the decay starts from the target), then constant.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps of the decay.
    pub decay_steps: u64,
    /// The final rate, as a fraction of the rate the decay starts from.
    pub alpha: f32,
    /// The rate the warm-up reaches (no warm-up when `None`).
    pub warmup_target: Option<f32>,
    /// Steps of the warm-up.
    pub warmup_steps: u64,
}

impl CosineDecay {
    /// A decay to 0 over `decay_steps`, no warm-up.
    pub fn new(initial_learning_rate: f32, decay_steps: u64) -> Self {
        CosineDecay { initial_learning_rate, decay_steps, alpha: 0.0, warmup_target: None, warmup_steps: 0 }
    }
    /// Sets the final fraction `alpha`.
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }
    /// A linear warm-up to `target` over `steps` before the decay.
    pub fn warmup(mut self, target: f32, steps: u64) -> Self {
        self.warmup_target = Some(target);
        self.warmup_steps = steps;
        self
    }
    fn decay(&self, step: f32, from: f32) -> f32 {
        let completed = step / self.decay_steps as f32;
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * completed).cos());
        from * ((1.0 - self.alpha) * cosine + self.alpha)
    }
    fn at(&self, step: u64) -> f32 {
        let decay_steps = self.decay_steps as f32;
        let step = step as f32;
        match self.warmup_target {
            None => self.decay(step.min(decay_steps), self.initial_learning_rate),
            Some(target) => {
                let warmup_steps = self.warmup_steps as f32;
                let step = step.min(decay_steps + warmup_steps);
                if step < warmup_steps {
                    (target - self.initial_learning_rate) * (step / warmup_steps) + self.initial_learning_rate
                } else {
                    self.decay(step - warmup_steps, target)
                }
            }
        }
    }
}

impl From<CosineDecay> for LearningRateSchedule {
    fn from(s: CosineDecay) -> Self {
        LearningRateSchedule::CosineDecay(s)
    }
}

impl From<CosineDecay> for LearningRate {
    fn from(s: CosineDecay) -> Self {
        LearningRate::Schedule(s.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64) {
        assert!((a as f64 - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
    }

    #[test]
    fn exponential_decay_matches_the_formula() {
        let s = ExponentialDecay::new(0.1, 100, 0.5);
        close(s.at(0), 0.1);
        close(s.at(50), 0.1 * 0.5f64.powf(0.5));
        close(s.at(300), 0.1 * 0.125);
        let stairs = s.clone().staircase(true);
        close(stairs.at(99), 0.1);
        close(stairs.at(100), 0.05);
    }

    #[test]
    fn piecewise_constant_changes_after_each_boundary() {
        let s = PiecewiseConstantDecay::new([10, 20], [1.0, 0.5, 0.1]);
        assert_eq!(
            [s.at(0), s.at(10), s.at(11), s.at(20), s.at(21), s.at(1000)],
            [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
        );
        let bad = LearningRateSchedule::from(PiecewiseConstantDecay::new([10], [1.0]));
        assert!(bad.check().unwrap_err().to_string().contains("one fewer"));
    }

    #[test]
    fn cosine_decay_with_and_without_warmup() {
        let s = CosineDecay::new(1.0, 100).alpha(0.1);
        close(s.at(0), 1.0);
        close(s.at(50), 0.9 * 0.5 + 0.1);
        close(s.at(100), 0.1);
        close(s.at(500), 0.1);
        let w = CosineDecay::new(0.0, 100).warmup(1.0, 10);
        close(w.at(5), 0.5);
        close(w.at(10), 1.0);
        close(w.at(60), 0.5);
        close(w.at(110), 0.0);
        assert!(LearningRateSchedule::from(CosineDecay::new(1.0, 0)).check().is_err());
    }
}
