//! `compile`, `fit`, `evaluate` and `predict`: one implementation for every model, with Keras'
//! semantics. Losses and metrics are means over the samples of an epoch; batches are
//! reshuffled each epoch; for several outputs the loss minimised is `sum_k weight_k * loss_k`,
//! reported as `loss`, with each output's own loss and metrics as `<output>_loss` and
//! `<output>_accuracy` (plain `accuracy` for a single output). What `fit` does besides the
//! gradient steps (history, progress, checkpoints, early stopping, ...) is done by
//! [callbacks](crate::callbacks).

mod data;
mod evaluate;
mod fit;
mod metrics;
mod options;

use std::collections::BTreeMap;

pub use data::{Arrays, OwnedArrays};
pub use fit::shuffle_for_epoch;
pub use metrics::{Metric, AUC_THRESHOLDS};
pub use options::FitOptions;

use crate::error::{Error, Result};
use crate::losses::{Losses, OutputLoss};
use crate::model::Model;
use crate::optimizers::{Optimizer, OptimizerState};
pub use crate::progress::epoch_line;

/// Values by name for one epoch or evaluation (Keras' `logs` dict, and `evaluate`'s
/// `return_dict=True` result): `loss`, `accuracy`, `val_loss`, ...
pub type Logs = BTreeMap<String, f32>;

/// A model's losses (one per output) and their weights, optimizer (with its state) and
/// metrics: what `compile` sets.
pub(crate) struct Compiled {
    pub losses: Vec<OutputLoss>,
    pub loss_weights: Vec<f32>,
    pub optimizer: OptimizerState,
    pub metrics: Vec<Metric>,
}

/// What `fit` returns: per-epoch values of the loss and metrics (Keras' `history.history`),
/// keyed `loss`, `accuracy`, `val_loss`, `val_accuracy`, ..., and the seconds each epoch took.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Metric name -> one value per epoch.
    pub history: BTreeMap<String, Vec<f32>>,
    /// Wall-clock seconds of each epoch's training (validation excluded).
    pub epoch_seconds: Vec<f64>,
}

impl History {
    /// The values of one metric, e.g. `history.get("accuracy")`.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.history.get(key).map(Vec::as_slice)
    }
}

/// Runs `work`, a loop over batches, where `device` launches kernels at least cost
/// ([`tensor::Device::run_host_loop`]: on the CPU, a worker of its pool), or here when the
/// model is `distributed`: its ranks may be threads of this process that wait for each other,
/// and each would hold a worker while it waits.
pub(crate) fn host_loop<R: Send>(
    device: &tensor::Device,
    distributed: bool,
    work: impl FnOnce() -> R + Send,
) -> R {
    if distributed {
        work()
    } else {
        device.run_host_loop(work)
    }
}

/// Refuses a learning rate that is not positive and finite, and a schedule Keras refuses.
pub(crate) fn check_learning_rate(optimizer: &Optimizer) -> Result<()> {
    if let crate::optimizers::LearningRate::Schedule(schedule) = optimizer.learning_rate() {
        schedule.check()?;
    }
    let lr = optimizer.initial_learning_rate();
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::Build(format!("learning rate {lr} must be positive")));
    }
    Ok(())
}

impl Model {
    /// Sets the losses, optimizer and metrics, as Keras' `compile`. `losses` is one loss for
    /// every output (a [`Loss`](crate::Loss), or a user closure:
    /// [`OutputLoss::custom`](crate::losses::OutputLoss::custom)), a list in output order, or a
    /// map by output name, with `loss_weights` (see [`Losses`]). The metrics are reported for
    /// every output.
    pub fn compile(
        &mut self,
        losses: impl Into<Losses>,
        optimizer: impl Into<Optimizer>,
        metrics: &[Metric],
    ) -> Result<()> {
        let optimizer = optimizer.into();
        check_learning_rate(&optimizer)?;
        // Settings the optimizer refuses (two clippings, a negative decay, ...) fail here, before
        // any training.
        optimizer.check()?;
        for metric in metrics {
            metric.check()?;
        }
        if let Some(twice) = metrics.iter().enumerate().find(|(i, m)| metrics[..*i].contains(m)) {
            return Err(Error::Options(format!("metric {} is listed twice", twice.1.keras_name())));
        }
        let (losses, loss_weights) = losses.into().resolve(&self.output_names())?;
        self.compiled = Some(Compiled {
            losses,
            loss_weights,
            optimizer: OptimizerState::new(optimizer),
            metrics: metrics.to_vec(),
        });
        Ok(())
    }

    /// The compiled metrics (none before `compile`).
    pub(crate) fn compiled_metrics(&self) -> Vec<Metric> {
        self.compiled.as_ref().map(|c| c.metrics.clone()).unwrap_or_default()
    }

    /// The names `fit` logs each epoch: `loss`, then per output `<name>_loss` and
    /// `<name>_accuracy` (for one output just `accuracy`), and with validation data the same
    /// with `val_`.
    pub(crate) fn log_keys(&self, validation: bool) -> Result<Vec<String>> {
        let compiled = self.compiled.as_ref().ok_or_else(|| Error::Build("call compile() first".into()))?;
        let names = self.output_names();
        let mut keys = vec!["loss".to_string()];
        let single = names.len() == 1;
        for name in &names {
            if !single {
                keys.push(format!("{name}_loss"));
            }
            for metric in &compiled.metrics {
                let metric = metric.keras_name();
                keys.push(if single { metric.to_string() } else { format!("{name}_{metric}") });
            }
        }
        if validation {
            let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
            keys.extend(val);
        }
        Ok(keys)
    }
}
