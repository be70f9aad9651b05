//! Keras' `EarlyStopping`: stop training when a monitored metric has stopped improving.

use super::callback::{Callback, CallbackContext};
use super::monitor::{Monitor, MonitorMode};
use crate::array::Array;
use crate::error::Result;
use crate::training::Logs;

/// Stops training when the monitored value has not improved for `patience` epochs, with Keras
/// 3's rules:
///
/// - an epoch improves when its value beats the best so far by more than `min_delta`; the
///   wait restarts only if it also beats `baseline` (when one is set);
/// - training stops at the end of the epoch where `patience` epochs in a row did not restart
///   the wait (never at the first epoch);
/// - with `restore_best_weights`, the weights of the best epoch are put back when training
///   ends, whether it stopped early or ran to the last epoch;
/// - epochs before `start_from_epoch` (counted from 0) are not watched.
///
/// The monitored value must be one `fit` logs (`val_loss` needs validation data): anything else
/// is refused before the first epoch.
///
/// ```
/// use nn::callbacks::EarlyStopping;
/// let stop = EarlyStopping::new().monitor("val_loss").patience(3).restore_best_weights(true);
/// let options = nn::FitOptions::new().epochs(100).validation_split(0.1).callback(stop);
/// ```
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    verbose: bool,
    baseline: Option<f32>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    // The state of one `fit`.
    wait: usize,
    stopped_epoch: Option<usize>,
    best: Option<f32>,
    best_epoch: usize,
    best_weights: Option<Vec<Array>>,
    larger_is_better: bool,
}

impl EarlyStopping {
    /// Keras' defaults: monitors `val_loss`, `min_delta` 0, `patience` 0, mode auto, no
    /// baseline, weights not restored.
    pub fn new() -> Self {
        EarlyStopping {
            monitor: Monitor::new("val_loss"),
            patience: 0,
            verbose: false,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            stopped_epoch: None,
            best: None,
            best_epoch: 0,
            best_weights: None,
            larger_is_better: false,
        }
    }
    /// The logged value to watch (default `val_loss`).
    pub fn monitor(mut self, metric: impl Into<String>) -> Self {
        self.monitor.key = metric.into();
        self
    }
    /// The smallest change that counts as an improvement (its sign is ignored).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }
    /// Epochs without improvement after which training stops.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Whether smaller or larger values are better (default: from the name).
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// A value the monitored metric must beat for the wait to restart.
    pub fn baseline(mut self, baseline: f32) -> Self {
        self.baseline = Some(baseline);
        self
    }
    /// Put back the weights of the best epoch when training ends.
    pub fn restore_best_weights(mut self, yes: bool) -> Self {
        self.restore_best_weights = yes;
        self
    }
    /// Epochs (counted from 0) to wait before watching, for a model that needs a warm-up.
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }
    /// Prints `Epoch N: early stopping` and the restore, as Keras' `verbose=1`.
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }

    /// The epoch (from 0, as in Keras) at whose end training was stopped, if it was.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
    /// The best monitored value of the last `fit`.
    pub fn best(&self) -> Option<f32> {
        self.best
    }
    /// The epoch (from 0) that had it.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.monitor.check_logged("EarlyStopping", ctx.log_keys())?;
        self.larger_is_better = self.monitor.larger_is_better("EarlyStopping")?;
        self.wait = 0;
        self.stopped_epoch = None;
        self.best = None;
        self.best_epoch = 0;
        self.best_weights = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let Some(&current) = logs.get(&self.monitor.key) else { return Ok(()) };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            // Until an epoch improves, the weights before it are the best.
            self.best_weights = Some(ctx.model().get_weights()?);
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.improves(self.larger_is_better, current, self.best) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(ctx.model().get_weights()?);
            }
            // The wait restarts only if the baseline is beaten too.
            if self.baseline.is_none() || self.monitor.improves(self.larger_is_better, current, self.baseline)
            {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: Option<&Logs>, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let (Some(epoch), true) = (self.stopped_epoch, self.verbose) {
            ctx.print(&format!("Epoch {}: early stopping", epoch + 1));
        }
        if let (true, Some(weights)) = (self.restore_best_weights, self.best_weights.take()) {
            if self.verbose {
                ctx.print(&format!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    self.best_epoch + 1
                ));
            }
            ctx.model_mut().set_weights(&weights)?;
        }
        Ok(())
    }
}
