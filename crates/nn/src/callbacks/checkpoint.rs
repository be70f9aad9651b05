//! Keras' `ModelCheckpoint`: save the model at the end of every epoch, or only when a monitored
//! metric improved.

use std::path::PathBuf;

use super::callback::{Callback, CallbackContext};
use super::monitor::{Monitor, MonitorMode};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::saving::SavingError;
use crate::training::Logs;

/// Saves the model during `fit`, as Keras' `ModelCheckpoint`; add it with
/// [`FitOptions::checkpoint`](crate::FitOptions::checkpoint) (or `callback`).
///
/// By default it saves the whole model ([`Model::save`]: architecture, weights, and the
/// training state: optimizer with its momenta and step count, epochs done) after every epoch,
/// so [`Model::load`] gives a model that resumes training exactly where it stopped. Each save is
/// atomic (a crash mid-save keeps the previous file), and a model with a NaN or infinite weight
/// is never saved: that save fails with [`SavingError::NonFiniteWeights`] and the previous
/// checkpoint stays. A model that cannot be saved whole (a layer without a config, a user
/// loss) is refused before the first epoch, not after it.
///
/// The path may contain `{epoch}` (the epoch just finished, from 1), `{epoch:02d}` (zero
/// padded), and any logged metric: `{val_loss}` or `{val_loss:.4f}`, so one file per epoch can
/// be kept: `ModelCheckpoint::new("ckpt/model-{epoch:02d}-{val_accuracy:.3f}.safetensors")`.
///
/// With [`save_best_only`](Self::save_best_only), the best value seen is kept by the callback
/// across `fit` calls, as in Keras (start a resumed run's count with
/// [`initial_value_threshold`](Self::initial_value_threshold)).
///
/// ```no_run
/// use nn::callbacks::ModelCheckpoint;
/// use nn::FitOptions;
///
/// let options = FitOptions::new()
///     .epochs(30)
///     .validation_split(0.1)
///     .checkpoint(ModelCheckpoint::new("best.safetensors").monitor("val_accuracy").save_best_only(true));
/// ```
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: Monitor,
    save_best_only: bool,
    save_weights_only: bool,
    verbose: bool,
    /// The best monitored value saved so far (Keras' `self.best`).
    best: Option<f32>,
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a template, see above) after every epoch; monitors `val_loss`.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: Monitor::new("val_loss"),
            save_best_only: false,
            save_weights_only: false,
            verbose: false,
            best: None,
        }
    }
    /// The metric [`save_best_only`](Self::save_best_only) compares: `loss`, `accuracy`,
    /// `val_loss` (default), `val_accuracy`, or any other logged value.
    pub fn monitor(mut self, metric: impl Into<String>) -> Self {
        self.monitor.key = metric.into();
        self
    }
    /// Whether smaller or larger values of the monitored metric are better.
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.monitor.mode = mode;
        self
    }
    /// Saves only when the monitored metric is better than at every earlier save.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }
    /// Saves only the weights ([`Model::save_weights`]), not the architecture and training
    /// state; such a file cannot resume training.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }
    /// With [`save_best_only`](Self::save_best_only), the value to beat before the first save:
    /// pass the best value of an earlier run when resuming it, so that a worse epoch does not
    /// overwrite its best checkpoint.
    pub fn initial_value_threshold(mut self, value: f32) -> Self {
        self.best = Some(value);
        self
    }
    /// Prints a line for every save (and every skipped one), as Keras' `verbose=1`.
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }

    /// The file to write after `epoch` (from 1), with the epoch's `logs`.
    pub fn filepath(&self, epoch: usize, logs: &Logs) -> Result<PathBuf> {
        let bad =
            |reason: String| Error::Options(format!("ModelCheckpoint path '{}': {reason}", self.filepath));
        let mut out = String::new();
        let mut rest = self.filepath.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').ok_or_else(|| bad("'{' without '}'".into()))? + open;
            let field = &rest[open + 1..close];
            let (key, spec) = field.split_once(':').unwrap_or((field, ""));
            if key == "epoch" {
                out.push_str(
                    &format_integer(epoch, spec).ok_or_else(|| bad(format!("bad format '{{{field}}}'")))?,
                );
            } else {
                let Some(value) = logs.get(key) else {
                    let known: Vec<&str> =
                        std::iter::once("epoch").chain(logs.keys().map(String::as_str)).collect();
                    return Err(bad(format!("unknown field '{key}' (known: {})", known.join(", "))));
                };
                out.push_str(
                    &format_float(*value, spec).ok_or_else(|| bad(format!("bad format '{{{field}}}'")))?,
                );
            }
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(bad("'}' without '{'".into()));
        }
        out.push_str(rest);
        Ok(PathBuf::from(out))
    }
}

/// `{epoch}`, `{epoch:d}`, `{epoch:02d}`, `{epoch:3d}`.
fn format_integer(value: usize, spec: &str) -> Option<String> {
    match spec.strip_suffix('d') {
        None if spec.is_empty() => Some(value.to_string()),
        Some("") => Some(value.to_string()),
        Some(width) if width.starts_with('0') => Some(format!("{value:0w$}", w = width.parse().ok()?)),
        Some(width) => Some(format!("{value:w$}", w = width.parse().ok()?)),
        None => None,
    }
}

/// `{loss}`, `{loss:.4f}`.
fn format_float(value: f32, spec: &str) -> Option<String> {
    if spec.is_empty() {
        return Some(value.to_string());
    }
    let precision: usize = spec.strip_prefix('.')?.strip_suffix('f')?.parse().ok()?;
    Some(format!("{value:.precision$}"))
}

impl Callback for ModelCheckpoint {
    /// Checks the options before the first epoch: the monitored metric is logged, the path
    /// template is valid, and the model can be saved.
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if self.save_best_only {
            self.monitor.check_logged("ModelCheckpoint", ctx.log_keys())?;
            self.monitor.larger_is_better("ModelCheckpoint")?;
        }
        let placeholder: Logs = ctx.log_keys().iter().map(|k| (k.clone(), 0.0)).collect();
        let path = self.filepath(1, &placeholder)?;
        if !self.save_weights_only {
            crate::saving::check_savable(ctx.model(), &path)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let shown = epoch + 1;
        let path = self.filepath(shown, logs)?;
        if self.save_best_only {
            let key = &self.monitor.key;
            let current = logs.get(key).copied().unwrap_or(f32::NAN);
            let larger = self.monitor.larger_is_better("ModelCheckpoint")?;
            let best = self.best.map_or("None".to_string(), |b| format!("{b:.5}"));
            if !(current.is_finite() && self.monitor.improves(larger, current, self.best)) {
                if self.verbose {
                    ctx.print(&format!("\nEpoch {shown}: {key} did not improve from {best}"));
                }
                return Ok(());
            }
            if self.verbose {
                ctx.print(&format!(
                    "\nEpoch {shown}: {key} improved from {best} to {current:.5}, saving model to {}",
                    path.display()
                ));
            }
            self.save(ctx, &path)?;
            self.best = Some(current);
        } else {
            if self.verbose {
                ctx.print(&format!("\nEpoch {shown}: saving model to {}", path.display()));
            }
            self.save(ctx, &path)?;
        }
        Ok(())
    }
}

impl ModelCheckpoint {
    /// Saves on rank 0 only (the one rank of a single process).
    fn save(&self, ctx: &CallbackContext<'_>, path: &std::path::Path) -> Result<()> {
        if !ctx.is_chief() {
            return Ok(());
        }
        let model: &Model = ctx.model();
        if let Some(name) = crate::saving::first_non_finite_variable(model)? {
            return Err(SavingError::NonFiniteWeights { path: path.to_path_buf(), name }.into());
        }
        if self.save_weights_only {
            model.save_weights(path)
        } else {
            model.save(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Logs {
        Logs::from([("loss".into(), 0.25), ("val_accuracy".into(), 0.98765)])
    }

    #[test]
    fn paths_format_the_epoch_and_metrics_as_keras() {
        let path = |template: &str, epoch| ModelCheckpoint::new(template).filepath(epoch, &logs());
        assert_eq!(path("m.safetensors", 3).unwrap(), PathBuf::from("m.safetensors"));
        assert_eq!(path("m-{epoch}.st", 7).unwrap(), PathBuf::from("m-7.st"));
        assert_eq!(path("m-{epoch:02d}.st", 7).unwrap(), PathBuf::from("m-07.st"));
        assert_eq!(path("m-{epoch:03d}-{epoch:d}.st", 12).unwrap(), PathBuf::from("m-012-12.st"));
        assert_eq!(path("m-{val_accuracy:.3f}-{loss}.st", 1).unwrap(), PathBuf::from("m-0.988-0.25.st"));
    }

    #[test]
    fn bad_templates_are_errors_naming_the_field() {
        let err =
            |template: &str| ModelCheckpoint::new(template).filepath(1, &logs()).unwrap_err().to_string();
        assert_eq!(
            err("m-{val_loss}.st"),
            "bad option: ModelCheckpoint path 'm-{val_loss}.st': unknown field 'val_loss' \
             (known: epoch, loss, val_accuracy)"
        );
        assert_eq!(
            err("m-{epoch:.2f}"),
            "bad option: ModelCheckpoint path 'm-{epoch:.2f}': bad format '{epoch:.2f}'"
        );
        assert_eq!(err("m-{epoch"), "bad option: ModelCheckpoint path 'm-{epoch': '{' without '}'");
        assert_eq!(err("m-epoch}"), "bad option: ModelCheckpoint path 'm-epoch}': '}' without '{'");
    }
}
