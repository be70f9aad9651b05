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

/// The scripted values below, run through Keras 3.15's own callbacks
/// (`benches/keras/callbacks_trace.py`), stop and set the rates at the same epochs.
#[cfg(test)]
mod tests {
    use super::super::callback::testing::{model, run_epochs};
    use super::*;

    /// Epochs run before `stop` stops on `values` of a loss.
    fn epochs(mut stop: EarlyStopping, values: &[f32]) -> (usize, Option<usize>, Option<f32>) {
        let mut model = model(0.1);
        let (run, _) = run_epochs(&mut stop, &mut model, "val_loss", values);
        (run, stop.stopped_epoch(), stop.best())
    }

    #[test]
    fn stops_when_patience_epochs_in_a_row_do_not_improve() {
        let values = [5.0, 4.0, 4.5, 4.2, 3.0, 2.0];
        // patience 0: the first epoch that does not improve stops (epoch 2, from 0).
        assert_eq!(epochs(EarlyStopping::new(), &values), (3, Some(2), Some(4.0)));
        // patience 2: epochs 2 and 3 do not improve; training stops at the end of epoch 3.
        assert_eq!(epochs(EarlyStopping::new().patience(2), &values), (4, Some(3), Some(4.0)));
        // patience 3: epoch 4 improves in time and training runs to the end.
        assert_eq!(epochs(EarlyStopping::new().patience(3), &values), (6, None, Some(2.0)));
    }

    #[test]
    fn min_delta_baseline_and_start_epoch_follow_keras() {
        let values = [5.0, 4.95, 4.9, 4.85];
        // Steps of 0.05 are not improvements by more than 0.1.
        assert_eq!(epochs(EarlyStopping::new().patience(1).min_delta(0.1), &values), (2, Some(1), Some(5.0)));
        // As in Keras, an epoch that improves never stops training, even while the baseline is
        // not beaten; but it does not restart the wait, so the first epoch that does not
        // improve stops sooner.
        assert_eq!(epochs(EarlyStopping::new().patience(2).baseline(4.88), &values), (4, None, Some(4.85)));
        let stall = [5.0, 4.95, 4.96, 4.97];
        assert_eq!(epochs(EarlyStopping::new().patience(2).baseline(4.88), &stall), (3, Some(2), Some(4.95)));
        assert_eq!(epochs(EarlyStopping::new().patience(2), &stall), (4, Some(3), Some(4.95)));
        // Epochs before start_from_epoch are not watched.
        let bumpy = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(epochs(EarlyStopping::new().start_from_epoch(3), &bumpy), (5, Some(4), Some(4.0)));
    }

    #[test]
    fn the_monitored_value_must_be_logged_and_its_direction_known() {
        let mut model = model(0.1);
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut state = super::super::callback::testing::state(&["loss"], &printed);
        let mut ctx = CallbackContext { model: &mut model, state: &mut state };
        let err = EarlyStopping::new().on_train_begin(&mut ctx).unwrap_err().to_string();
        assert!(err.contains("monitors 'val_loss', which fit does not log (it logs: loss"), "{err}");
    }
}
