//! Callbacks that set the optimizer's learning rate between epochs: Keras'
//! `ReduceLROnPlateau` and `LearningRateScheduler`. Both add the rate to the epoch's logs as
//! `learning_rate`, as Keras does, so `History` and the epoch line show it.

use std::fmt;

use super::callback::{Callback, CallbackContext};
use super::monitor::{Monitor, MonitorMode};
use crate::error::{Error, Result};
use crate::training::Logs;

/// Lowers the learning rate when the monitored value has stopped improving, with Keras'
/// rules: after `patience` epochs without an improvement (by more than `min_delta`), the rate
/// is multiplied by `factor` (but not below `min_lr`), then `cooldown` epochs pass before the
/// count starts again.
///
/// ```
/// use nn::callbacks::ReduceLROnPlateau;
/// let reduce = ReduceLROnPlateau::new().monitor("val_loss").factor(0.2).patience(5).min_lr(0.001);
/// let options = nn::FitOptions::new().epochs(50).validation_split(0.1).callback(reduce);
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    verbose: bool,
    // The state of one `fit`.
    best: Option<f32>,
    wait: usize,
    cooldown_counter: usize,
    larger_is_better: bool,
}

impl ReduceLROnPlateau {
    /// Keras' defaults: monitors `val_loss`, `factor` 0.1, `patience` 10, mode auto,
    /// `min_delta` 1e-4, `cooldown` 0, `min_lr` 0.
    pub fn new() -> Self {
        let mut monitor = Monitor::new("val_loss");
        monitor.min_delta = 1e-4;
        ReduceLROnPlateau {
            monitor,
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            verbose: false,
            best: None,
            wait: 0,
            cooldown_counter: 0,
            larger_is_better: false,
        }
    }
    /// The logged value to watch (default `val_loss`).
    pub fn monitor(mut self, metric: impl Into<String>) -> Self {
        self.monitor.key = metric.into();
        self
    }
    /// What the rate is multiplied by (below 1; checked when training starts).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    /// Epochs without improvement before the rate is lowered.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Whether smaller or larger values are better (default: from the name).
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }
    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }
    /// The rate is never lowered below this.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
    /// Prints each reduction, as Keras' `verbose=1`.
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if !(self.factor < 1.0 && self.factor >= 0.0) {
            return Err(Error::Options(format!(
                "ReduceLROnPlateau does not support a factor outside [0, 1): got {}",
                self.factor
            )));
        }
        self.monitor.check_logged("ReduceLROnPlateau", ctx.log_keys())?;
        self.larger_is_better = self.monitor.larger_is_better("ReduceLROnPlateau")?;
        self.best = None;
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        logs.insert("learning_rate".into(), ctx.learning_rate());
        let Some(&current) = logs.get(&self.monitor.key) else { return Ok(()) };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.improves(self.larger_is_better, current, self.best) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = ctx.learning_rate() as f64;
                if old > (self.min_lr as f32) as f64 {
                    let new = (old * self.factor).max(self.min_lr);
                    ctx.set_learning_rate(new as f32)?;
                    if self.verbose {
                        ctx.print(&format!(
                            "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {new}.",
                            epoch + 1
                        ));
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Sets the learning rate at the start of every epoch from a function of the epoch (from 0)
/// and the current rate, as Keras' `LearningRateScheduler`.
///
/// ```
/// use nn::callbacks::LearningRateScheduler;
/// // Keep the rate for 10 epochs, then divide it by e^0.1 each epoch.
/// let schedule = LearningRateScheduler::new(|epoch, lr| if epoch < 10 { lr } else { lr * (-0.1f32).exp() });
/// let options = nn::FitOptions::new().epochs(30).callback(schedule);
/// ```
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f32) -> f32 + Send>,
    verbose: bool,
}

impl LearningRateScheduler {
    /// The rate of epoch `epoch` is `schedule(epoch, current_rate)`.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + Send + 'static) -> Self {
        LearningRateScheduler { schedule: Box::new(schedule), verbose: false }
    }
    /// Prints each rate set, as Keras' `verbose=1`.
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }
}

impl fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LearningRateScheduler").field("verbose", &self.verbose).finish_non_exhaustive()
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let rate = (self.schedule)(epoch, ctx.learning_rate());
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(Error::Options(format!(
                "LearningRateScheduler: the schedule gave learning rate {rate} for epoch {epoch}; it must be positive"
            )));
        }
        ctx.set_learning_rate(rate)?;
        if self.verbose {
            ctx.print(&format!(
                "\nEpoch {}: LearningRateScheduler setting learning rate to {rate}.",
                epoch + 1
            ));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        logs.insert("learning_rate".into(), ctx.learning_rate());
        Ok(())
    }
}

/// The scripted values below, run through Keras 3.15's own callbacks
/// (`benches/keras/callbacks_trace.py`), stop and set the rates at the same epochs.
#[cfg(test)]
mod tests {
    use super::super::callback::testing::{model, run_epochs};
    use super::*;

    #[test]
    fn reduce_on_plateau_lowers_the_rate_after_patience_then_cools_down() {
        let mut model = model(1.0);
        let mut reduce = ReduceLROnPlateau::new().factor(0.5).patience(2).cooldown(1).min_lr(0.2);
        let values = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3];
        let (epochs, rates) = run_epochs(&mut reduce, &mut model, "val_loss", &values);
        assert_eq!(epochs, values.len());
        // Epoch 1 improves; 2 and 3 do not: reduced after epoch 3. Epoch 4 ends the cooldown
        // and, as in Keras, already counts as a first epoch without improvement: reduced again
        // after 5, and after 7 to the floor, where it stays.
        assert_eq!(rates, [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]);
    }

    #[test]
    fn reduce_on_plateau_waits_for_min_delta() {
        let mut model = model(1.0);
        let mut reduce = ReduceLROnPlateau::new().patience(1).min_delta(0.01);
        // Improvements of 0.001 are a plateau at min_delta 0.01.
        let (_, rates) = run_epochs(&mut reduce, &mut model, "val_loss", &[1.0, 0.999, 0.998, 0.5]);
        // 0.1 * 0.1 in f64, then stored as f32, as Keras does.
        assert_eq!(rates, [1.0, 0.1, 0.01, 0.01]);
    }

    #[test]
    fn a_scheduled_rate_cannot_be_set() {
        let mut model = model(1.0);
        model
            .compile(
                crate::Loss::MeanSquaredError,
                crate::Sgd::new(crate::optimizers::ExponentialDecay::new(0.1, 10, 0.5)),
                &[],
            )
            .unwrap();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut state = super::super::callback::testing::state(&["loss"], &printed);
        let mut ctx = CallbackContext { model: &mut model, state: &mut state };
        let mut scheduler = LearningRateScheduler::new(|_, lr| lr / 2.0);
        let err = scheduler.on_epoch_begin(0, &mut ctx).unwrap_err().to_string();
        assert!(
            err.contains(
                "ExponentialDecay schedule as its learning rate, so its learning rate cannot be set"
            ),
            "{err}"
        );
    }
}
