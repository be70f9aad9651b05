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
