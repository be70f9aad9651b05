//! Keras' `ModelCheckpoint`: save the model at the end of every epoch, or only when a monitored
//! metric improved.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::saving::SavingError;
use crate::sequential::Sequential;

/// Whether a smaller or a larger value of the monitored metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    /// From the metric's name, as Keras: larger is better for names ending in `accuracy`,
    /// `acc` or `auc`, smaller for the others (losses).
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

/// Saves the model during [`fit`](Sequential::fit), as Keras' `ModelCheckpoint`; set it with
/// [`FitOptions::checkpoint`](crate::FitOptions::checkpoint).
///
/// By default it saves the whole model ([`Sequential::save`]: architecture, weights, and the
/// training state: optimizer with its momenta and step count, epochs done) after every epoch,
/// so [`Sequential::load`] gives a model that resumes training exactly where it stopped. Each
/// save is atomic (a crash mid-save keeps the previous file), and a model with a NaN or
/// infinite weight is never saved: that save fails with [`SavingError::NonFiniteWeights`] and
/// the previous checkpoint stays.
///
/// The path may contain `{epoch}` (the epoch just finished, from 1), `{epoch:02d}` (zero
/// padded), and any logged metric: `{val_loss}` or `{val_loss:.4f}`, so one file per epoch can
/// be kept: `ModelCheckpoint::new("ckpt/model-{epoch:02d}-{val_accuracy:.3f}.safetensors")`.
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
    monitor: String,
    mode: MonitorMode,
    save_best_only: bool,
    save_weights_only: bool,
    initial_value_threshold: Option<f32>,
    verbose: bool,
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a template, see above) after every epoch; monitors `val_loss`.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            mode: MonitorMode::Auto,
            save_best_only: false,
            save_weights_only: false,
            initial_value_threshold: None,
            verbose: false,
        }
    }
    /// The metric [`save_best_only`](Self::save_best_only) compares: `loss`, `accuracy`,
    /// `val_loss` (default) or `val_accuracy`.
    pub fn monitor(mut self, metric: impl Into<String>) -> Self {
        self.monitor = metric.into();
        self
    }
    /// Whether smaller or larger values of the monitored metric are better.
    pub fn mode(mut self, mode: MonitorMode) -> Self {
        self.mode = mode;
        self
    }
    /// Saves only when the monitored metric is better than at every earlier save.
    pub fn save_best_only(mut self, yes: bool) -> Self {
        self.save_best_only = yes;
        self
    }
    /// Saves only the weights ([`Sequential::save_weights`]), not the architecture and training
    /// state; such a file cannot resume training.
    pub fn save_weights_only(mut self, yes: bool) -> Self {
        self.save_weights_only = yes;
        self
    }
    /// With [`save_best_only`](Self::save_best_only), the value to beat before the first save:
    /// pass the best value of an earlier run when resuming it, so that a worse epoch does not
    /// overwrite its best checkpoint.
    pub fn initial_value_threshold(mut self, value: f32) -> Self {
        self.initial_value_threshold = Some(value);
        self
    }
    /// Prints a line for every save (and every skipped one), as Keras' `verbose=1`.
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }

    /// Whether larger values of the monitored metric are better.
    fn larger_is_better(&self) -> bool {
        match self.mode {
            MonitorMode::Max => true,
            MonitorMode::Min => false,
            MonitorMode::Auto => ["accuracy", "acc", "auc"].iter().any(|s| self.monitor.ends_with(s)),
        }
    }

    /// The file to write after `epoch`, with the epoch's `logs` (metric name, value).
    pub fn filepath(&self, epoch: usize, logs: &[(String, f32)]) -> Result<PathBuf> {
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
                let Some((_, value)) = logs.iter().find(|(k, _)| k == key) else {
                    let known: Vec<&str> =
                        std::iter::once("epoch").chain(logs.iter().map(|(k, _)| k.as_str())).collect();
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

    /// Checks the options against the metrics `fit` will log (`log_keys`) before the first
    /// epoch, so a typo fails at once rather than after an epoch of training.
    pub(crate) fn start(&self, log_keys: &[&str]) -> Result<CheckpointRun<'_>> {
        if self.save_best_only && !log_keys.contains(&self.monitor.as_str()) {
            return Err(Error::Options(format!(
                "ModelCheckpoint monitors '{}', which fit does not log (it logs: {}{})",
                self.monitor,
                log_keys.join(", "),
                if self.monitor.starts_with("val_") { "; pass validation data for val_ metrics" } else { "" }
            )));
        }
        let placeholder: Vec<(String, f32)> = log_keys.iter().map(|k| (k.to_string(), 0.0)).collect();
        self.filepath(1, &placeholder)?;
        Ok(CheckpointRun { config: self, best: self.initial_value_threshold })
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

/// A [`ModelCheckpoint`] during one `fit`: the best value so far.
pub(crate) struct CheckpointRun<'a> {
    config: &'a ModelCheckpoint,
    best: Option<f32>,
}

impl CheckpointRun<'_> {
    /// Saves `model` after `epoch` if due; returns the file written, if any.
    pub(crate) fn on_epoch_end(
        &mut self,
        model: &Sequential,
        epoch: usize,
        logs: &[(String, f32)],
    ) -> Result<Option<PathBuf>> {
        let config = self.config;
        let path = config.filepath(epoch, logs)?;
        if config.save_best_only {
            let current =
                logs.iter().find(|(k, _)| *k == config.monitor).map(|(_, v)| *v).unwrap_or(f32::NAN);
            let improved = current.is_finite()
                && match self.best {
                    None => true,
                    Some(best) if config.larger_is_better() => current > best,
                    Some(best) => current < best,
                };
            if !improved {
                if config.verbose {
                    let best = self.best.map_or("nothing yet".to_string(), |b| format!("{b:.5}"));
                    println!("\nEpoch {epoch}: {} did not improve from {best}", config.monitor);
                }
                return Ok(None);
            }
            if config.verbose {
                let from = self
                    .best
                    .map_or(if config.larger_is_better() { "-inf" } else { "inf" }.to_string(), |b| {
                        format!("{b:.5}")
                    });
                println!(
                    "\nEpoch {epoch}: {} improved from {from} to {current:.5}, saving model to {}",
                    config.monitor,
                    path.display()
                );
            }
            self.save(model, &path)?;
            self.best = Some(current);
        } else {
            if config.verbose {
                println!("\nEpoch {epoch}: saving model to {}", path.display());
            }
            self.save(model, &path)?;
        }
        Ok(Some(path))
    }

    fn save(&self, model: &Sequential, path: &std::path::Path) -> Result<()> {
        if let Some(name) = crate::saving::first_non_finite_variable(model)? {
            return Err(SavingError::NonFiniteWeights { path: path.to_path_buf(), name }.into());
        }
        if self.config.save_weights_only {
            model.save_weights(path)
        } else {
            model.save(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Vec<(String, f32)> {
        vec![("loss".into(), 0.25), ("val_accuracy".into(), 0.98765)]
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

    #[test]
    fn mode_follows_the_metric_name_unless_set() {
        assert!(ModelCheckpoint::new("m").monitor("val_accuracy").larger_is_better());
        assert!(ModelCheckpoint::new("m").monitor("acc").larger_is_better());
        assert!(!ModelCheckpoint::new("m").monitor("val_loss").larger_is_better());
        assert!(ModelCheckpoint::new("m").monitor("val_loss").mode(MonitorMode::Max).larger_is_better());
    }

    #[test]
    fn monitoring_a_metric_fit_does_not_log_fails_before_training() {
        let checkpoint = ModelCheckpoint::new("m").save_best_only(true);
        let err = checkpoint.start(&["loss", "accuracy"]).err().unwrap().to_string();
        assert_eq!(
            err,
            "bad option: ModelCheckpoint monitors 'val_loss', which fit does not log (it logs: loss, \
             accuracy; pass validation data for val_ metrics)"
        );
        assert!(ModelCheckpoint::new("m").start(&["loss"]).is_ok(), "every-epoch saves monitor nothing");
    }

    #[test]
    fn a_model_with_a_nan_weight_never_overwrites_a_checkpoint() {
        use crate::layers::Dense;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ckpt.safetensors");
        let mut model = Sequential::with_device(&crate::device::cpu());
        model.add(Dense::new(2).input_shape([3])).unwrap();
        model.compile(crate::Loss::MeanSquaredError, crate::Sgd::new(0.1), &[]).unwrap();
        let checkpoint = ModelCheckpoint::new(path.to_str().unwrap());
        let mut run = checkpoint.start(&["loss"]).unwrap();
        let logs = [("loss".to_string(), 0.5)];
        assert_eq!(run.on_epoch_end(&model, 1, &logs).unwrap(), Some(path.clone()));
        let good = std::fs::read(&path).unwrap();

        let device = model.device().clone();
        let mut variables = model.variables_mut();
        *variables[1] = tensor::Tensor::from_slice(&[0.0, f32::NAN], [2], &device).unwrap().to_variable();
        let err = run.on_epoch_end(&model, 2, &logs).unwrap_err();
        assert!(
            matches!(&err, Error::Saving(SavingError::NonFiniteWeights { name, .. }) if name == "dense_1/bias"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not written: weight 'dense_1/bias' is NaN or infinite (the previous file is kept)",
                path.display()
            )
        );
        assert_eq!(std::fs::read(&path).unwrap(), good);
    }
}
