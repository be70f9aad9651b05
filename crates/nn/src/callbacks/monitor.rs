//! What the callbacks that watch a metric share (Keras' `MonitorCallback`): which logged value
//! they watch, whether smaller or larger is better, and what counts as an improvement.

use crate::error::{Error, Result};

/// Whether a smaller or a larger value of the monitored metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    /// From the metric's name, as Keras: smaller is better for a loss (`loss`, `val_loss`,
    /// `digit_loss`), larger for an accuracy (`accuracy`, `val_accuracy`, `acc`, `auc`); any
    /// other name must say which with `Min` or `Max`.
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

/// A monitored log value.
#[derive(Clone, Debug)]
pub(crate) struct Monitor {
    pub key: String,
    pub mode: MonitorMode,
    /// Keras' `min_delta`, kept as given (its sign is ignored, as in Keras).
    pub min_delta: f64,
}

impl Monitor {
    pub fn new(key: &str) -> Self {
        Monitor { key: key.to_string(), mode: MonitorMode::Auto, min_delta: 0.0 }
    }

    /// Whether larger values are better; an error for a name `Auto` cannot read.
    pub fn larger_is_better(&self, who: &str) -> Result<bool> {
        match self.mode {
            MonitorMode::Max => Ok(true),
            MonitorMode::Min => Ok(false),
            MonitorMode::Auto => {
                let name = self.key.strip_prefix("val_").unwrap_or(&self.key);
                if name == "loss" || name.ends_with("_loss") {
                    Ok(false)
                } else if ["accuracy", "acc", "auc"]
                    .iter()
                    .any(|m| name == *m || name.ends_with(&format!("_{m}")))
                {
                    Ok(true)
                } else {
                    Err(Error::Options(format!(
                        "{who} monitors '{}', and cannot tell whether it should be maximized or \
                         minimized: set mode to Max or Min",
                        self.key
                    )))
                }
            }
        }
    }

    /// Keras' `_is_improvement`: `current` beats `reference` by more than `min_delta` (anything
    /// beats no reference). Compared in `f32`, as Keras' `ops.less` / `ops.greater` compare.
    pub fn improves(&self, larger_is_better: bool, current: f32, reference: Option<f32>) -> bool {
        let Some(reference) = reference else { return true };
        let delta = self.min_delta.abs();
        if larger_is_better {
            ((current as f64 - delta) as f32) > reference
        } else {
            ((current as f64 + delta) as f32) < reference
        }
    }

    /// Checks that `fit` logs the monitored value (`keys`, known at train begin), so a typo
    /// fails before training rather than after an epoch.
    pub fn check_logged(&self, who: &str, keys: &[String]) -> Result<()> {
        if keys.contains(&self.key) {
            return Ok(());
        }
        Err(Error::Options(format!(
            "{who} monitors '{}', which fit does not log (it logs: {}{})",
            self.key,
            keys.join(", "),
            if self.key.starts_with("val_") { "; pass validation data for val_ metrics" } else { "" }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mode_reads_the_name() {
        let larger = |key: &str| Monitor::new(key).larger_is_better("X");
        assert!(!larger("val_loss").unwrap());
        assert!(!larger("digit_loss").unwrap());
        assert!(larger("val_accuracy").unwrap());
        assert!(larger("acc").unwrap());
        assert!(larger("val_digit_accuracy").unwrap());
        let err = larger("learning_rate").unwrap_err().to_string();
        assert!(err.contains("maximized or minimized"), "{err}");
        let mut m = Monitor::new("learning_rate");
        m.mode = MonitorMode::Max;
        assert!(m.larger_is_better("X").unwrap());
    }

    #[test]
    fn improvement_needs_more_than_min_delta() {
        let mut m = Monitor::new("val_loss");
        m.min_delta = -0.1; // the sign is ignored
        assert!(m.improves(false, 5.0, None));
        assert!(m.improves(false, 0.5, Some(0.7)));
        assert!(!m.improves(false, 0.65, Some(0.7)));
        assert!(!m.improves(false, 0.6, Some(0.7)), "0.6 + 0.1 is not below 0.7");
        assert!(m.improves(true, 0.85, Some(0.7)));
        assert!(!m.improves(true, 0.75, Some(0.7)));
    }
}
