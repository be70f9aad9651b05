//! What a saved model holds besides architecture and weights when it was compiled, so that
//! `fit` can resume where it stopped with the same results: the losses (and their weights) and
//! metrics, the optimizer's configuration (a learning-rate schedule included), its step count
//! and per-variable state (SGD velocities, Adam moments, ...), and the number of epochs done.
//!
//! The scalars go to the header's metadata as JSON under [`TRAINING_KEY`]:
//! `{"epochs_done": 3, "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
//! "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9,
//! "nesterov": false, "weight_decay": null, "clipnorm": null, ...}, "iterations": 1407,
//! "has_slots": true}}` (the optimizer's config is written and read by `optimizers::config`). A
//! model of several outputs saves `"loss"` as a list in output order, and `"loss_weights"` when
//! one is not 1; a schedule is saved as `{"class_name": "ExponentialDecay", "config": {...}}` in
//! place of the rate. The per-variable state goes next to the weights as `F32` tensors shaped
//! like their variable, named `optimizer/LAYER/VARIABLE/SLOT` (e.g.
//! `optimizer/dense_1/kernel/momentum`).

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;
use serde_json::{json, Value};
use tensor::Tensor;

use super::weights::{named_params, read_f32, FileExtras};
use super::SavingError;
use crate::error::Result;
use crate::losses::{Loss, Losses, OutputLoss};
use crate::model::Model;
use crate::optimizers::{
    config as optimizer_config, CosineDecay, ExponentialDecay, LearningRate, LearningRateSchedule, Optimizer,
    OptimizerState, PiecewiseConstantDecay,
};
use crate::training::Metric;

/// Metadata key of the training state's JSON.
pub const TRAINING_KEY: &str = "nn.training";

/// The file name of slot `slot` of variable `variable` (`dense_1/kernel`).
fn slot_tensor_name(variable: &str, slot: &str) -> String {
    format!("optimizer/{variable}/{slot}")
}

fn learning_rate_json(lr: &LearningRate) -> Value {
    match lr {
        LearningRate::Constant(lr) => json!(lr),
        LearningRate::Schedule(s) => {
            let config = match s {
                LearningRateSchedule::ExponentialDecay(s) => json!({
                    "initial_learning_rate": s.initial_learning_rate, "decay_steps": s.decay_steps,
                    "decay_rate": s.decay_rate, "staircase": s.staircase }),
                LearningRateSchedule::PiecewiseConstantDecay(s) => {
                    json!({ "boundaries": s.boundaries, "values": s.values })
                }
                LearningRateSchedule::CosineDecay(s) => json!({
                    "initial_learning_rate": s.initial_learning_rate, "decay_steps": s.decay_steps,
                    "alpha": s.alpha, "warmup_target": s.warmup_target, "warmup_steps": s.warmup_steps }),
            };
            json!({ "class_name": s.class_name(), "config": config })
        }
    }
}

fn optimizer_json(optimizer: &Optimizer) -> Value {
    optimizer_config::to_json(optimizer, learning_rate_json(optimizer.learning_rate()))
}

/// The built-in losses of a compiled model, or an error naming the output whose loss is a user
/// closure (which no file can hold).
fn builtin_losses(model: &Model, path: &Path) -> Result<Option<Vec<Loss>>> {
    let Some(compiled) = &model.compiled else { return Ok(None) };
    let names = model.output_names();
    let losses = compiled.losses.iter().zip(&names).map(|(loss, name)| {
        loss.builtin().ok_or_else(|| SavingError::TrainingState {
            path: path.to_path_buf(),
            reason: format!(
                "output '{name}' was compiled with a user loss, which a file cannot hold: save with \
                 save_weights (ModelCheckpoint::save_weights_only), or compile with a built-in loss"
            ),
        })
    });
    Ok(Some(losses.collect::<std::result::Result<_, _>>()?))
}

/// Checks that the compiled state can be saved (no user loss), without reading any tensor.
pub(crate) fn check(model: &Model, path: &Path) -> Result<()> {
    builtin_losses(model, path).map(|_| ())
}

/// The compiled model's training state, for [`FileExtras`]; `None` for a model never compiled.
/// Fails on a variable whose optimizer state is missing while others have theirs (a step that
/// failed half-way), rather than save a state that would resume differently.
pub(crate) fn capture(model: &Model, path: &Path) -> Result<Option<FileExtras>> {
    let Some(losses) = builtin_losses(model, path)? else { return Ok(None) };
    let compiled = model.compiled.as_ref().expect("losses came from it");
    let optimizer = &compiled.optimizer;
    let variables = named_params(model);
    let slot_names = optimizer.slot_names();
    // Frozen variables have no slots; every other one must.
    let trainable: Vec<bool> = variables.iter().map(|(_, v)| v.is_variable()).collect();
    let has = |i: usize| optimizer.slots_of(i).iter().all(Option::is_some);
    let complete = (0..variables.len()).all(|i| !trainable[i] || has(i));
    let has_slots = !slot_names.is_empty() && optimizer.iterations() > 0 && (0..variables.len()).any(has);
    if !slot_names.is_empty() && optimizer.iterations() > 0 && !complete {
        let reason = "the optimizer's state is incomplete (a training step failed half-way)".to_string();
        return Err(SavingError::TrainingState { path: path.to_path_buf(), reason }.into());
    }
    let mut tensors = Vec::new();
    if has_slots {
        for (i, (name, _)) in variables.iter().enumerate() {
            for (slot, value) in slot_names.iter().zip(optimizer.slots_of(i)) {
                if let Some(value) = value {
                    tensors.push((slot_tensor_name(name, slot), value.dims().to_vec(), value.to_vec()?));
                }
            }
        }
    }
    let mut optimizer_value = optimizer_json(optimizer.config());
    optimizer_value["iterations"] = json!(optimizer.iterations());
    optimizer_value["has_slots"] = json!(has_slots);
    let loss = match losses.as_slice() {
        [one] => one.to_json(),
        many => json!(many.iter().map(|l| l.to_json()).collect::<Vec<_>>()),
    };
    let mut state = json!({
        "epochs_done": model.epochs_done,
        "loss": loss,
        "metrics": compiled.metrics.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "optimizer": optimizer_value,
    });
    if compiled.loss_weights.iter().any(|&w| w != 1.0) {
        state["loss_weights"] = json!(compiled.loss_weights);
    }
    let metadata = HashMap::from([(TRAINING_KEY.to_string(), state.to_string())]);
    Ok(Some(FileExtras { metadata, tensors }))
}

/// A training state read back from a file's metadata.
pub(crate) struct TrainingState {
    losses: Vec<Loss>,
    loss_weights: Option<Vec<f32>>,
    metrics: Vec<Metric>,
    optimizer: Optimizer,
    iterations: u64,
    has_slots: bool,
    epochs_done: usize,
}

/// Reads the JSON fields of a training state, naming what is wrong.
struct Fields<'a> {
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, reason: String) -> SavingError {
        SavingError::TrainingState { path: self.path.to_path_buf(), reason }
    }
    fn get(&self, value: &Value, key: &str) -> std::result::Result<Value, SavingError> {
        value.get(key).cloned().ok_or_else(|| self.err(format!("no '{key}'")))
    }
    fn uint(&self, value: &Value, key: &str) -> std::result::Result<u64, SavingError> {
        self.get(value, key)?.as_u64().ok_or_else(|| self.err(format!("'{key}' is not a count")))
    }
    fn float(&self, value: &Value, key: &str) -> std::result::Result<f32, SavingError> {
        let x = self.get(value, key)?.as_f64().ok_or_else(|| self.err(format!("'{key}' is not a number")))?;
        Ok(x as f32)
    }
    fn bool(&self, value: &Value, key: &str) -> std::result::Result<bool, SavingError> {
        self.get(value, key)?.as_bool().ok_or_else(|| self.err(format!("'{key}' is not true or false")))
    }
    fn loss(&self, value: &Value) -> std::result::Result<Loss, SavingError> {
        Loss::from_json(value).map_err(|e| self.err(e))
    }
    fn learning_rate(&self, value: &Value) -> std::result::Result<LearningRate, SavingError> {
        if let Some(lr) = value.as_f64() {
            return Ok(LearningRate::Constant(lr as f32));
        }
        let config = self.get(value, "config")?;
        let schedule: LearningRateSchedule = match value.get("class_name").and_then(Value::as_str) {
            Some("ExponentialDecay") => ExponentialDecay {
                initial_learning_rate: self.float(&config, "initial_learning_rate")?,
                decay_steps: self.uint(&config, "decay_steps")?,
                decay_rate: self.float(&config, "decay_rate")?,
                staircase: self.bool(&config, "staircase")?,
            }
            .into(),
            Some("PiecewiseConstantDecay") => {
                let list = |key: &str| -> std::result::Result<Vec<Value>, SavingError> {
                    self.get(&config, key)?
                        .as_array()
                        .cloned()
                        .ok_or_else(|| self.err(format!("'{key}' is not a list")))
                };
                let boundaries = list("boundaries")?
                    .iter()
                    .map(|b| b.as_u64().ok_or_else(|| self.err(format!("boundary {b} is not a step"))))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let values = list("values")?
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .map(|v| v as f32)
                            .ok_or_else(|| self.err(format!("value {v} is not a rate")))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                PiecewiseConstantDecay { boundaries, values }.into()
            }
            Some("CosineDecay") => CosineDecay {
                initial_learning_rate: self.float(&config, "initial_learning_rate")?,
                decay_steps: self.uint(&config, "decay_steps")?,
                alpha: self.float(&config, "alpha")?,
                warmup_target: match self.get(&config, "warmup_target")? {
                    Value::Null => None,
                    v => {
                        Some(v.as_f64().ok_or_else(|| self.err("'warmup_target' is not a number".into()))?
                            as f32)
                    }
                },
                warmup_steps: self.uint(&config, "warmup_steps")?,
            }
            .into(),
            _ => return Err(self.err(format!("unknown learning rate {value}"))),
        };
        schedule.check().map_err(|e| self.err(e.to_string()))?;
        Ok(LearningRate::Schedule(schedule))
    }
}

impl TrainingState {
    /// The state in `metadata` (read from `path`), `None` if the file has none.
    pub(crate) fn from_metadata(
        path: &Path,
        metadata: &HashMap<String, String>,
    ) -> std::result::Result<Option<TrainingState>, SavingError> {
        let Some(text) = metadata.get(TRAINING_KEY) else { return Ok(None) };
        let f = Fields { path };
        let v: Value = serde_json::from_str(text).map_err(|e| f.err(format!("not valid JSON: {e}")))?;
        let losses = match f.get(&v, "loss")? {
            Value::Array(list) => {
                list.iter().map(|l| f.loss(l)).collect::<std::result::Result<Vec<_>, _>>()?
            }
            one => vec![f.loss(&one)?],
        };
        let loss_weights = match v.get("loss_weights") {
            None => None,
            Some(w) => Some(
                w.as_array()
                    .ok_or_else(|| f.err("'loss_weights' is not a list".into()))?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .map(|x| x as f32)
                            .ok_or_else(|| f.err(format!("loss weight {x} is not a number")))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            ),
        };
        let metrics = f
            .get(&v, "metrics")?
            .as_array()
            .ok_or_else(|| f.err("'metrics' is not a list".into()))?
            .iter()
            .map(|m| Metric::from_json(m).map_err(|e| f.err(e)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let opt = f.get(&v, "optimizer")?;
        let config = f.get(&opt, "config")?;
        let learning_rate = f.learning_rate(&f.get(&config, "learning_rate")?)?;
        let class_name = f.get(&opt, "class_name")?;
        let class_name =
            class_name.as_str().ok_or_else(|| f.err(format!("unknown optimizer {class_name}")))?;
        let optimizer =
            optimizer_config::from_json(class_name, &config, learning_rate).map_err(|e| f.err(e))?;
        let lr = optimizer.initial_learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(f.err(format!("learning rate {lr} must be positive")));
        }
        let epochs_done =
            usize::try_from(f.uint(&v, "epochs_done")?).map_err(|e| f.err(format!("'epochs_done': {e}")))?;
        Ok(Some(TrainingState {
            losses,
            loss_weights,
            metrics,
            optimizer,
            iterations: f.uint(&opt, "iterations")?,
            has_slots: f.bool(&opt, "has_slots")?,
            epochs_done,
        }))
    }

    /// The names of the optimizer-state tensors the file may hold for `model`.
    pub(crate) fn tensor_names(&self, model: &Model) -> Vec<String> {
        if !self.has_slots {
            return Vec::new();
        }
        let slots = OptimizerState::new(self.optimizer.clone()).slot_names();
        named_params(model)
            .into_iter()
            .flat_map(|(variable, _)| slots.iter().map(move |slot| slot_tensor_name(&variable, slot)))
            .collect()
    }

    /// Compiles `model` (whose weights are loaded) with this state, reading the optimizer's
    /// per-variable tensors from `file`, each checked against its variable's shape. A frozen
    /// variable may have none.
    pub(crate) fn restore(self, model: &mut Model, path: &Path, file: &SafeTensors<'_>) -> Result<()> {
        let slots = OptimizerState::new(self.optimizer.clone()).slot_names();
        let mut values = Vec::new();
        if self.has_slots {
            let names = file.names();
            for (variable, var) in named_params(model) {
                let mut per_slot = Vec::new();
                for slot in slots {
                    let name = slot_tensor_name(&variable, slot);
                    if !var.is_variable() && !names.iter().any(|n| **n == name) {
                        continue;
                    }
                    let data = read_f32(path, file, &name, var.dims())?;
                    per_slot.push(Tensor::from_vec(data, var.dims(), &model.device)?);
                }
                values.push(per_slot);
            }
        }
        let outputs = model.output_names().len();
        let losses: Losses = match self.losses.as_slice() {
            [one] => Losses::from(*one),
            many if many.len() == outputs => {
                Losses::from(many.iter().map(|&l| OutputLoss::from(l)).collect::<Vec<_>>())
            }
            many => {
                let reason = format!("{} losses for a model of {outputs} outputs", many.len());
                return Err(SavingError::TrainingState { path: path.to_path_buf(), reason }.into());
            }
        };
        let losses = match self.loss_weights {
            Some(w) => losses.weights(w),
            None => losses,
        };
        model.compile(losses, self.optimizer.clone(), &self.metrics)?;
        model.epochs_done = self.epochs_done;
        let compiled = model.compiled.as_mut().expect("compiled above");
        compiled.optimizer = OptimizerState::restored(self.optimizer, self.iterations, values);
        Ok(())
    }
}
