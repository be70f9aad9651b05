//! What a saved model holds besides architecture and weights when it was compiled, so that
//! `fit` can resume where it stopped with the same results: the loss and metrics, the
//! optimizer's configuration, its step count and per-variable state (SGD velocities, Adam
//! moments), and the number of epochs done.
//!
//! The scalars go to the header's metadata as JSON under [`TRAINING_KEY`]:
//! `{"epochs_done": 3, "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
//! "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9,
//! "nesterov": false}, "iterations": 1407, "has_slots": true}}`. The per-variable state goes
//! next to the weights as `F32` tensors shaped like their variable, named
//! `optimizer/LAYER/VARIABLE/SLOT` (e.g. `optimizer/dense_1/kernel/momentum`).

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;
use serde_json::{json, Value};
use tensor::Tensor;

use super::weights::{named_variables, read_f32, FileExtras};
use super::SavingError;
use crate::error::Result;
use crate::losses::Loss;
use crate::optimizers::{Adam, Optimizer, OptimizerState, Sgd};
use crate::sequential::Sequential;
use crate::training::{Compiled, Metric};

/// Metadata key of the training state's JSON.
pub const TRAINING_KEY: &str = "nn.training";

/// The file name of slot `slot` of variable `variable` (`dense_1/kernel`).
fn slot_tensor_name(variable: &str, slot: &str) -> String {
    format!("optimizer/{variable}/{slot}")
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Accuracy => "accuracy",
    }
}

fn optimizer_json(optimizer: &Optimizer) -> Value {
    match optimizer {
        Optimizer::Sgd(s) => json!({ "class_name": "SGD", "config": {
            "learning_rate": s.learning_rate, "momentum": s.momentum, "nesterov": s.nesterov } }),
        Optimizer::Adam(a) => json!({ "class_name": "Adam", "config": {
            "learning_rate": a.learning_rate, "beta_1": a.beta_1, "beta_2": a.beta_2, "epsilon": a.epsilon } }),
    }
}

/// The compiled model's training state, for [`FileExtras`]; `None` for a model never compiled.
/// Fails on a variable whose optimizer state is missing while others have theirs (a step that
/// failed half-way), rather than save a state that would resume differently.
pub(crate) fn capture(model: &Sequential, path: &Path) -> Result<Option<FileExtras>> {
    let Some(compiled) = &model.compiled else { return Ok(None) };
    let optimizer = &compiled.optimizer;
    let variables = named_variables(model);
    let slot_names = optimizer.slot_names();
    let present =
        variables.iter().enumerate().filter(|(i, _)| optimizer.slots_of(*i).iter().all(Option::is_some));
    let has_slots =
        !slot_names.is_empty() && present.count() == variables.len() && optimizer.iterations() > 0;
    let mut tensors = Vec::new();
    if has_slots {
        for (i, (name, _)) in variables.iter().enumerate() {
            for (slot, value) in slot_names.iter().zip(optimizer.slots_of(i)) {
                let value = value.expect("checked present");
                tensors.push((slot_tensor_name(name, slot), value.dims().to_vec(), value.to_vec()?));
            }
        }
    } else if !slot_names.is_empty() && optimizer.iterations() > 0 {
        let reason = "the optimizer's state is incomplete (a training step failed half-way)".to_string();
        return Err(SavingError::TrainingState { path: path.to_path_buf(), reason }.into());
    }
    let mut optimizer_value = optimizer_json(optimizer.config());
    optimizer_value["iterations"] = json!(optimizer.iterations());
    optimizer_value["has_slots"] = json!(has_slots);
    let state = json!({
        "epochs_done": model.epochs_done,
        "loss": compiled.loss.keras_name(),
        "metrics": compiled.metrics.iter().map(|&m| metric_name(m)).collect::<Vec<_>>(),
        "optimizer": optimizer_value,
    });
    let metadata = HashMap::from([(TRAINING_KEY.to_string(), state.to_string())]);
    Ok(Some(FileExtras { metadata, tensors }))
}

/// A training state read back from a file's metadata.
pub(crate) struct TrainingState {
    loss: Loss,
    metrics: Vec<Metric>,
    optimizer: Optimizer,
    iterations: u64,
    has_slots: bool,
    epochs_done: usize,
}

impl TrainingState {
    /// The state in `metadata` (read from `path`), `None` if the file has none.
    pub(crate) fn from_metadata(
        path: &Path,
        metadata: &HashMap<String, String>,
    ) -> std::result::Result<Option<TrainingState>, SavingError> {
        let Some(text) = metadata.get(TRAINING_KEY) else { return Ok(None) };
        let err = |reason: String| SavingError::TrainingState { path: path.to_path_buf(), reason };
        let v: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let get =
            |value: &Value, key: &str| value.get(key).cloned().ok_or_else(|| err(format!("no '{key}'")));
        let uint = |value: &Value, key: &str| {
            get(value, key)?.as_u64().ok_or_else(|| err(format!("'{key}' is not a count")))
        };
        let float = |value: &Value, key: &str| -> std::result::Result<f32, SavingError> {
            let x = get(value, key)?.as_f64().ok_or_else(|| err(format!("'{key}' is not a number")))?;
            Ok(x as f32)
        };
        let loss_name = get(&v, "loss")?;
        let loss: Loss = loss_name
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err(format!("unknown loss {loss_name}")))?;
        let metrics = get(&v, "metrics")?
            .as_array()
            .ok_or_else(|| err("'metrics' is not a list".into()))?
            .iter()
            .map(|m| match m.as_str() {
                Some("accuracy") => Ok(Metric::Accuracy),
                _ => Err(err(format!("unknown metric {m}"))),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let opt = get(&v, "optimizer")?;
        let config = get(&opt, "config")?;
        let optimizer = match get(&opt, "class_name")?.as_str() {
            Some("SGD") => Optimizer::Sgd(Sgd {
                learning_rate: float(&config, "learning_rate")?,
                momentum: float(&config, "momentum")?,
                nesterov: get(&config, "nesterov")?
                    .as_bool()
                    .ok_or_else(|| err("'nesterov' is not true or false".into()))?,
            }),
            Some("Adam") => Optimizer::Adam(Adam {
                learning_rate: float(&config, "learning_rate")?,
                beta_1: float(&config, "beta_1")?,
                beta_2: float(&config, "beta_2")?,
                epsilon: float(&config, "epsilon")?,
            }),
            _ => return Err(err(format!("unknown optimizer {}", opt["class_name"]))),
        };
        let lr = optimizer.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(err(format!("learning rate {lr} must be positive")));
        }
        let epochs_done =
            usize::try_from(uint(&v, "epochs_done")?).map_err(|e| err(format!("'epochs_done': {e}")))?;
        let has_slots = get(&opt, "has_slots")?
            .as_bool()
            .ok_or_else(|| err("'has_slots' is not true or false".into()))?;
        Ok(Some(TrainingState {
            loss,
            metrics,
            optimizer,
            iterations: uint(&opt, "iterations")?,
            has_slots,
            epochs_done,
        }))
    }

    /// The names of the optimizer-state tensors the file must hold for `model`.
    pub(crate) fn tensor_names(&self, model: &Sequential) -> Vec<String> {
        if !self.has_slots {
            return Vec::new();
        }
        let slots = OptimizerState::new(self.optimizer.clone()).slot_names();
        named_variables(model)
            .into_iter()
            .flat_map(|(variable, _)| slots.iter().map(move |slot| slot_tensor_name(&variable, slot)))
            .collect()
    }

    /// Compiles `model` (whose weights are loaded) with this state, reading the optimizer's
    /// per-variable tensors from `file`, each checked against its variable's shape.
    pub(crate) fn restore(self, model: &mut Sequential, path: &Path, file: &SafeTensors<'_>) -> Result<()> {
        let slots = OptimizerState::new(self.optimizer.clone()).slot_names();
        let mut values = Vec::new();
        if self.has_slots {
            for (variable, var) in named_variables(model) {
                let mut per_slot = Vec::new();
                for slot in slots {
                    let data = read_f32(path, file, &slot_tensor_name(&variable, slot), var.dims())?;
                    per_slot.push(Tensor::from_vec(data, var.dims(), &model.device)?);
                }
                values.push(per_slot);
            }
        }
        model.epochs_done = self.epochs_done;
        model.compiled = Some(Compiled {
            loss: self.loss,
            optimizer: OptimizerState::restored(self.optimizer, self.iterations, values),
            metrics: self.metrics,
        });
        Ok(())
    }
}
