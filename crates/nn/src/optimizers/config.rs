//! An optimizer's configuration as JSON, with Keras' class names and `get_config` keys
//! (`{"class_name": "RMSprop", "config": {"learning_rate": 0.001, "rho": 0.9, ...,
//! "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null}}`), as
//! a checkpoint's training state holds it. The learning rate (a number or a schedule) is
//! written and read by the caller.
//!
//! Reading refuses what this library cannot honour rather than ignore it: an unknown key, and
//! Keras options it does not implement (`use_ema`, `loss_scale_factor`,
//! `gradient_accumulation_steps`, `ema_overwrite_frequency`) set to anything but their
//! defaults. Keys a file written before an option existed lacks (the base options, `amsgrad`)
//! read as their defaults.

use serde_json::{json, Map, Value};

use super::{Adagrad, Adam, AdamW, BaseOptions, LearningRate, Optimizer, RmsProp, Sgd};

/// `{"class_name": .., "config": {..}}` with `learning_rate` (already JSON) as the rate.
pub(crate) fn to_json(optimizer: &Optimizer, learning_rate: Value) -> Value {
    let mut config = match optimizer {
        Optimizer::Sgd(o) => json!({ "momentum": o.momentum, "nesterov": o.nesterov }),
        Optimizer::Adam(o) => adam_json([o.beta_1, o.beta_2, o.epsilon], o.amsgrad),
        Optimizer::AdamW(o) => adam_json([o.beta_1, o.beta_2, o.epsilon], o.amsgrad),
        Optimizer::RmsProp(o) => json!({
            "rho": o.rho, "momentum": o.momentum, "epsilon": o.epsilon, "centered": o.centered }),
        Optimizer::Adagrad(o) => {
            json!({ "initial_accumulator_value": o.initial_accumulator_value, "epsilon": o.epsilon })
        }
    };
    let base = optimizer.base();
    config["learning_rate"] = learning_rate;
    config["weight_decay"] = json!(base.weight_decay);
    config["clipnorm"] = json!(base.clipnorm);
    config["global_clipnorm"] = json!(base.global_clipnorm);
    config["clipvalue"] = json!(base.clipvalue);
    json!({ "class_name": optimizer.class_name(), "config": config })
}

fn adam_json([beta_1, beta_2, epsilon]: [f32; 3], amsgrad: bool) -> Value {
    json!({ "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "amsgrad": amsgrad })
}

/// Reads the keys of one optimizer's config, remembering which were read.
struct Reader<'a> {
    config: &'a Map<String, Value>,
    read: Vec<&'static str>,
}

impl Reader<'_> {
    fn value(&mut self, key: &'static str) -> Option<&Value> {
        self.read.push(key);
        self.config.get(key)
    }
    fn float(&mut self, key: &'static str) -> Result<f32, String> {
        match self.value(key) {
            Some(v) => v.as_f64().map(|x| x as f32).ok_or_else(|| format!("'{key}' is not a number")),
            None => Err(format!("no '{key}'")),
        }
    }
    fn bool(&mut self, key: &'static str) -> Result<bool, String> {
        match self.value(key) {
            Some(v) => v.as_bool().ok_or_else(|| format!("'{key}' is not true or false")),
            None => Err(format!("no '{key}'")),
        }
    }
    /// A key older files lack: its default when absent.
    fn bool_or(&mut self, key: &'static str, default: bool) -> Result<bool, String> {
        if self.config.contains_key(key) {
            self.bool(key)
        } else {
            Ok(default)
        }
    }
    /// A number or `null` (or absent, in older files).
    fn optional(&mut self, key: &'static str) -> Result<Option<f32>, String> {
        match self.value(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| format!("'{key}' is not a number")),
        }
    }
    fn base(&mut self) -> Result<BaseOptions, String> {
        Ok(BaseOptions {
            weight_decay: self.optional("weight_decay")?,
            clipnorm: self.optional("clipnorm")?,
            clipvalue: self.optional("clipvalue")?,
            global_clipnorm: self.optional("global_clipnorm")?,
        })
    }
    /// Refuses keys not read, except Keras' for options this library does not implement left at
    /// their defaults.
    fn finish(&self, class_name: &str) -> Result<(), String> {
        for (key, value) in self.config {
            if self.read.contains(&key.as_str()) {
                continue;
            }
            let default = match key.as_str() {
                "name" | "ema_momentum" => true,
                "use_ema" => *value == Value::Bool(false),
                "ema_overwrite_frequency" | "loss_scale_factor" | "gradient_accumulation_steps" => {
                    value.is_null()
                }
                _ => return Err(format!("{class_name}: unknown option '{key}'")),
            };
            if !default {
                return Err(format!("{class_name}: option '{key}' = {value} is not implemented"));
            }
        }
        Ok(())
    }
}

/// The optimizer of class `class_name` from its `config` (with `learning_rate` already read),
/// or why not.
pub(crate) fn from_json(
    class_name: &str,
    config: &Value,
    learning_rate: LearningRate,
) -> Result<Optimizer, String> {
    let config = config.as_object().ok_or_else(|| format!("the {class_name} config is not an object"))?;
    let mut r = Reader { config, read: vec!["learning_rate"] };
    let optimizer = match class_name {
        "SGD" => Optimizer::Sgd(Sgd {
            learning_rate,
            momentum: r.float("momentum")?,
            nesterov: r.bool("nesterov")?,
            base: r.base()?,
        }),
        "Adam" => Optimizer::Adam(Adam {
            learning_rate,
            beta_1: r.float("beta_1")?,
            beta_2: r.float("beta_2")?,
            epsilon: r.float("epsilon")?,
            amsgrad: r.bool_or("amsgrad", false)?,
            base: r.base()?,
        }),
        "AdamW" => Optimizer::AdamW(AdamW {
            learning_rate,
            beta_1: r.float("beta_1")?,
            beta_2: r.float("beta_2")?,
            epsilon: r.float("epsilon")?,
            amsgrad: r.bool("amsgrad")?,
            base: r.base()?,
        }),
        "RMSprop" => Optimizer::RmsProp(RmsProp {
            learning_rate,
            rho: r.float("rho")?,
            momentum: r.float("momentum")?,
            epsilon: r.float("epsilon")?,
            centered: r.bool("centered")?,
            base: r.base()?,
        }),
        "Adagrad" => Optimizer::Adagrad(Adagrad {
            learning_rate,
            initial_accumulator_value: r.float("initial_accumulator_value")?,
            epsilon: r.float("epsilon")?,
            base: r.base()?,
        }),
        _ => return Err(format!("unknown optimizer \"{class_name}\"")),
    };
    r.finish(class_name)?;
    optimizer.check().map_err(|e| e.to_string())?;
    Ok(optimizer)
}
