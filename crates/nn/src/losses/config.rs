//! How a loss is written in a saved training state, and read back.
//!
//! A loss without parameters is its Keras name, as files have always held it
//! (`"categorical_crossentropy"`). A loss with parameters is Keras' serialised object, its
//! class and its config: `{"class_name": "Huber", "config": {"name": "huber_loss", "reduction":
//! "sum_over_batch_size", "delta": 0.5}}`, `{"class_name": "CategoricalCrossentropy", "config":
//! {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits":
//! false, "label_smoothing": 0.1, "axis": -1}}`. Reading takes either form, for any loss; a
//! config value this library does not implement (`from_logits: true`, another axis or
//! reduction) is refused by name, as is an unknown key.

use serde_json::{json, Map, Value};

use super::Loss;
use crate::error::Error;

impl Loss {
    /// The loss as a saved training state holds it.
    pub(crate) fn to_json(self) -> Value {
        let loss = self.normalized();
        let (name, mut config) = match loss {
            Loss::Huber { delta } => ("huber_loss", json!({ "delta": delta })),
            Loss::SmoothedCategoricalCrossentropy { label_smoothing }
            | Loss::SmoothedBinaryCrossentropy { label_smoothing } => (
                loss.keras_name(),
                json!({ "from_logits": false, "label_smoothing": label_smoothing, "axis": -1 }),
            ),
            other => return json!(other.keras_name()),
        };
        config["name"] = json!(name);
        config["reduction"] = json!("sum_over_batch_size");
        json!({ "class_name": loss.keras_class_name(), "config": config })
    }

    /// A loss as [`Loss::to_json`] writes it, as a Keras name (`keras.losses.get`'s), or as
    /// Keras' serialised object (`{"class_name": .., "config": {..}}`, with or without
    /// `"module"` and `"registered_name"`).
    pub(crate) fn from_json(value: &Value) -> Result<Loss, String> {
        match value {
            Value::String(name) => name.parse().map_err(|_| format!("unknown loss {value}")),
            Value::Object(object) => from_object(object),
            other => Err(format!("loss {other} is neither a name nor a class and config")),
        }
    }
}

fn from_object(object: &Map<String, Value>) -> Result<Loss, String> {
    if let Some(key) =
        object.keys().find(|k| !["class_name", "config", "module", "registered_name"].contains(&k.as_str()))
    {
        return Err(format!("loss: unknown key '{key}'"));
    }
    let class = object.get("class_name").and_then(Value::as_str).ok_or("loss: no 'class_name'")?;
    let empty = Map::new();
    let config = match object.get("config") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(config)) => config,
        Some(other) => return Err(format!("loss {class}: config {other} is not an object")),
    };
    let base = match class {
        "CategoricalCrossentropy" => Loss::CategoricalCrossentropy,
        "SparseCategoricalCrossentropy" => Loss::SparseCategoricalCrossentropy,
        "BinaryCrossentropy" => Loss::BinaryCrossentropy,
        "MeanSquaredError" => Loss::MeanSquaredError,
        "MeanAbsoluteError" => Loss::MeanAbsoluteError,
        "Huber" => Loss::Huber { delta: 1.0 },
        "KLDivergence" => Loss::KLDivergence,
        other => return Err(format!("unknown loss class '{other}'")),
    };
    let number = |key: &str, v: &Value| {
        v.as_f64().map(|x| x as f32).ok_or_else(|| format!("loss {class}: '{key}' {v} is not a number"))
    };
    let mut loss = base;
    for (key, v) in config {
        let refuse = |why: &str| Err(format!("loss {class}: {key} {v} is not supported: {why}"));
        match key.as_str() {
            // A loss's name labels nothing here: a model's loss is logged as "loss".
            "name" if v.is_string() || v.is_null() => {}
            "reduction" if *v == "sum_over_batch_size" => {}
            "reduction" => {
                return refuse("only \"sum_over_batch_size\" (the mean over the batch) is implemented")
            }
            "dtype" if v.is_null() || *v == "float32" => {}
            "dtype" => return refuse("losses are computed in float32"),
            "from_logits" if base.uses_softmax_logits() || base.is_binary_crossentropy() => {
                if *v != false {
                    return refuse(
                        "losses take the model's outputs (a softmax output's logits are used \
                         automatically)",
                    );
                }
            }
            "axis" if base.uses_softmax_logits() || base.is_binary_crossentropy() => {
                if *v != -1 {
                    return refuse("losses are computed over the last axis");
                }
            }
            "ignore_class" if base == Loss::SparseCategoricalCrossentropy => {
                if !v.is_null() {
                    return refuse("no class can be ignored");
                }
            }
            "label_smoothing" if matches!(base, Loss::CategoricalCrossentropy | Loss::BinaryCrossentropy) => {
                loss = base.label_smoothing(number(key, v)?).map_err(|e| bare(&e))?;
            }
            "delta" if base == (Loss::Huber { delta: 1.0 }) => {
                loss = Loss::huber(number(key, v)?).map_err(|e| bare(&e))?;
            }
            _ => return Err(format!("loss {class}: unknown config key '{key}' ({v})")),
        }
    }
    Ok(loss)
}

/// The message of a parameter's error, without `Error`'s "cannot build model" prefix.
fn bare(error: &Error) -> String {
    match error {
        Error::Build(why) => why.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_losses_stay_names_and_parameters_round_trip() {
        assert_eq!(Loss::CategoricalCrossentropy.to_json(), json!("categorical_crossentropy"));
        assert_eq!(Loss::KLDivergence.to_json(), json!("kl_divergence"));
        let smoothed_zero = Loss::SmoothedBinaryCrossentropy { label_smoothing: 0.0 };
        assert_eq!(smoothed_zero.to_json(), json!("binary_crossentropy"));
        for loss in [
            Loss::CategoricalCrossentropy,
            Loss::SparseCategoricalCrossentropy,
            Loss::BinaryCrossentropy,
            Loss::MeanSquaredError,
            Loss::MeanAbsoluteError,
            Loss::Huber { delta: 1.0 },
            Loss::Huber { delta: 0.25 },
            Loss::KLDivergence,
            Loss::SmoothedCategoricalCrossentropy { label_smoothing: 0.1 },
            Loss::SmoothedBinaryCrossentropy { label_smoothing: 0.2 },
        ] {
            assert_eq!(Loss::from_json(&loss.to_json()), Ok(loss), "{}", loss.to_json());
        }
        assert_eq!(
            Loss::Huber { delta: 0.5 }.to_json(),
            json!({"class_name": "Huber", "config": {"name": "huber_loss",
                "reduction": "sum_over_batch_size", "delta": 0.5}})
        );
    }

    #[test]
    fn keras_objects_are_read_and_what_is_not_implemented_is_refused() {
        // As Keras 3 serialises them (its Huber leaves delta out of its config: the default).
        let keras = json!({"module": "keras.losses", "class_name": "Huber",
            "config": {"name": "huber_loss", "reduction": "sum_over_batch_size"}, "registered_name": null});
        assert_eq!(Loss::from_json(&keras), Ok(Loss::Huber { delta: 1.0 }));
        let cce = json!({"class_name": "CategoricalCrossentropy", "config": {"name": "categorical_crossentropy",
            "reduction": "sum_over_batch_size", "from_logits": false, "label_smoothing": 0.0, "axis": -1}});
        assert_eq!(Loss::from_json(&cce), Ok(Loss::CategoricalCrossentropy));
        assert_eq!(Loss::from_json(&json!("kld")), Ok(Loss::KLDivergence));
        assert_eq!(Loss::from_json(&json!("huber")), Ok(Loss::Huber { delta: 1.0 }));
        let err = |v: Value| Loss::from_json(&v).unwrap_err();
        assert!(err(json!("poisson")).contains("unknown loss \"poisson\""));
        assert!(err(json!({"class_name": "LogCosh", "config": {}})).contains("unknown loss class 'LogCosh'"));
        let logits = json!({"class_name": "BinaryCrossentropy", "config": {"from_logits": true}});
        assert!(err(logits).contains("from_logits true is not supported"));
        let axis = json!({"class_name": "CategoricalCrossentropy", "config": {"axis": 1}});
        assert!(err(axis).contains("axis 1 is not supported"));
        let reduction = json!({"class_name": "Huber", "config": {"reduction": "sum"}});
        assert!(err(reduction).contains("reduction \"sum\" is not supported"));
        let sparse =
            json!({"class_name": "SparseCategoricalCrossentropy", "config": {"label_smoothing": 0.1}});
        assert!(err(sparse).contains("unknown config key 'label_smoothing'"));
        let ignore = json!({"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 3}});
        assert!(err(ignore).contains("ignore_class 3 is not supported"));
        assert!(err(json!({"class_name": "Huber", "config": {"delta": -1.0}}))
            .contains("delta -1 must be positive"));
        let smoothing = json!({"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 1.5}});
        assert!(err(smoothing).contains("label_smoothing 1.5 must be in [0, 1]"));
        assert!(err(json!({"class_name": "KLDivergence", "config": {}, "extra": 1}))
            .contains("unknown key 'extra'"));
    }
}
