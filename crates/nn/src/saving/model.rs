//! Whole-model saving: the architecture as JSON in the safetensors header's metadata (under
//! `nn.architecture`), next to the weights, so one file rebuilds the model without its code.
//!
//! The JSON follows Keras' model config in spirit:
//! `{"class_name": "Sequential", "input_shape": [28, 28, 1], "seed": 0, "layers": [{"class_name":
//! "Dense", "name": "dense_1", "config": {"units": 10, ...}}, ...]}`. A compiled model also
//! saves its loss, metrics, optimizer state and epochs done (see [`super::training_state`]), and
//! loads compiled, ready to resume training.

use std::path::Path;

use serde_json::{json, Value};
use tensor::{Device, Padding};

use super::training_state::{self, TrainingState};
use super::weights::{self, load_into, parse, read_file};
use super::SavingError;
use crate::activation::Activation;
use crate::error::Result;
use crate::layers::{
    ActivationLayer, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, L2Pooling2D, MaxPooling2D, Reshape,
};
use crate::sequential::Sequential;

/// Metadata key of the architecture JSON.
pub const ARCHITECTURE_KEY: &str = "nn.architecture";
/// Metadata key of the format tag, so a future layout can be told apart.
const FORMAT_KEY: &str = "nn.format";
const FORMAT: &str = "sequential-v1";

/// Keras' name of a padding: `"valid"` or `"same"`.
pub fn padding_name(padding: Padding) -> &'static str {
    match padding {
        Padding::Valid => "valid",
        Padding::Same => "same",
    }
}

/// The model's architecture as JSON.
fn architecture(model: &Sequential, path: &Path) -> Result<Value> {
    let input_shape = match (model.is_built(), model.input_shape()) {
        (true, Some(shape)) => shape.to_vec(),
        _ => return Err(SavingError::NotBuilt { path: path.to_path_buf() }.into()),
    };
    let mut layers = Vec::new();
    for (layer, name) in model.layers.iter().zip(&model.names) {
        let Some(config) = layer.config() else {
            let reason =
                format!("layer '{name}' ({}) has no config, so it cannot be saved", layer.class_name());
            return Err(SavingError::Architecture { path: path.to_path_buf(), reason }.into());
        };
        layers.push(json!({ "class_name": layer.class_name(), "name": name, "config": config }));
    }
    Ok(
        json!({ "class_name": "Sequential", "input_shape": input_shape, "seed": model.seed, "layers": layers }),
    )
}

/// Saves architecture and weights to `path`, atomically.
pub(crate) fn save(model: &Sequential, path: &Path) -> Result<()> {
    let arch = architecture(model, path)?;
    let mut extras = training_state::capture(model, path)?.unwrap_or_default();
    extras.metadata.extend([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (ARCHITECTURE_KEY.to_string(), arch.to_string()),
    ]);
    weights::save_weights_with(model, path, Some(extras), |w, bytes| w.write_all(bytes))
}

/// Rebuilds a model saved by [`save`] on `device`, weights included.
pub(crate) fn load(path: &Path, device: &Device) -> Result<Sequential> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    let arch_err = |reason: String| SavingError::Architecture { path: path.to_path_buf(), reason };
    let metadata = weights::metadata(path, &bytes)?;
    let text = metadata.get(ARCHITECTURE_KEY).ok_or_else(|| {
        arch_err(
            "the file holds weights only (no architecture): build the model in code and call load_weights"
                .into(),
        )
    })?;
    let arch: Value = serde_json::from_str(text)
        .map_err(|e| arch_err(format!("the architecture is not valid JSON: {e}")))?;
    let field = |key: &str| arch.get(key).ok_or_else(|| arch_err(format!("the architecture has no '{key}'")));
    let seed = field("seed")?.as_u64().ok_or_else(|| arch_err("'seed' is not an integer".into()))?;
    let input_shape = usizes(field("input_shape")?)
        .ok_or_else(|| arch_err("'input_shape' is not a list of sizes".into()))?;
    let layers = field("layers")?.as_array().ok_or_else(|| arch_err("'layers' is not a list".into()))?;

    let mut model = Sequential::with_device(device).seed(seed);
    for (i, layer) in layers.iter().enumerate() {
        add_layer(&mut model, layer).map_err(|reason| arch_err(format!("layer {}: {reason}", i + 1)))?;
    }
    model.build(&input_shape)?;
    let training = TrainingState::from_metadata(path, &metadata)?;
    let others = training.as_ref().map(|t| t.tensor_names(&model)).unwrap_or_default();
    load_into(&mut model, path, &file, &others)?;
    if let Some(training) = training {
        training.restore(&mut model, path, &file)?;
    }
    Ok(model)
}

fn usizes(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect()
}

/// Adds the layer described by `desc` (class, name, config) to `model`; the error says what in
/// the description is wrong.
fn add_layer(model: &mut Sequential, desc: &Value) -> std::result::Result<(), String> {
    let class = desc.get("class_name").and_then(Value::as_str).ok_or("no 'class_name'")?;
    let name = desc.get("name").and_then(Value::as_str).ok_or("no 'name'")?.to_string();
    let config = desc.get("config").ok_or("no 'config'")?;
    let c = Config { class, name: &name, config };
    let added = match class {
        "Dense" => model.add(
            Dense::new(c.usize("units")?)
                .activation(c.activation()?)
                .use_bias(c.bool("use_bias")?)
                .name(name.clone()),
        ),
        "Conv2D" => model.add(
            Conv2D::new(c.usize("filters")?, c.pair("kernel_size")?)
                .strides(c.pair("strides")?)
                .padding(c.padding()?)
                .activation(c.activation()?)
                .use_bias(c.bool("use_bias")?)
                .name(name.clone()),
        ),
        "MaxPooling2D" => model.add(
            MaxPooling2D::new()
                .pool_size(c.pair("pool_size")?)
                .strides(c.pair("strides")?)
                .padding(c.padding()?)
                .name(name.clone()),
        ),
        "AveragePooling2D" => model.add(
            AveragePooling2D::new()
                .pool_size(c.pair("pool_size")?)
                .strides(c.pair("strides")?)
                .padding(c.padding()?)
                .name(name.clone()),
        ),
        "L2Pooling2D" => model.add(
            L2Pooling2D::new()
                .pool_size(c.pair("pool_size")?)
                .strides(c.pair("strides")?)
                .padding(c.padding()?)
                .name(name.clone()),
        ),
        "Dropout" => {
            let rate =
                config.get("rate").and_then(Value::as_f64).ok_or_else(|| c.missing("rate", "a number"))?;
            model.add(Dropout::new(rate as f32).name(name.clone()))
        }
        "Flatten" => model.add(Flatten::new().name(name.clone())),
        "Reshape" => {
            let target = config.get("target_shape").and_then(usizes);
            model.add(
                Reshape::new(target.ok_or_else(|| c.missing("target_shape", "a list of sizes"))?)
                    .name(name.clone()),
            )
        }
        "Activation" => model.add(ActivationLayer::new(c.activation()?).name(name.clone())),
        other => return Err(format!("unknown layer class '{other}' (layer '{name}')")),
    };
    added.map_err(|e| e.to_string())
}

/// One layer's config, read with messages naming the layer and field.
struct Config<'a> {
    class: &'a str,
    name: &'a str,
    config: &'a Value,
}

impl Config<'_> {
    fn missing(&self, key: &str, what: &str) -> String {
        format!("'{}' ({}): config field '{key}' is missing or not {what}", self.name, self.class)
    }
    fn usize(&self, key: &str) -> std::result::Result<usize, String> {
        let v = self.config.get(key).and_then(Value::as_u64).and_then(|v| usize::try_from(v).ok());
        v.ok_or_else(|| self.missing(key, "a size"))
    }
    fn bool(&self, key: &str) -> std::result::Result<bool, String> {
        self.config.get(key).and_then(Value::as_bool).ok_or_else(|| self.missing(key, "true or false"))
    }
    fn pair(&self, key: &str) -> std::result::Result<(usize, usize), String> {
        match self.config.get(key).and_then(usizes).as_deref() {
            Some(&[a, b]) => Ok((a, b)),
            _ => Err(self.missing(key, "a pair of sizes")),
        }
    }
    fn activation(&self) -> std::result::Result<Activation, String> {
        let name = self.config.get("activation").and_then(Value::as_str);
        name.and_then(|n| n.parse().ok()).ok_or_else(|| self.missing("activation", "a known activation"))
    }
    fn padding(&self) -> std::result::Result<Padding, String> {
        match self.config.get("padding").and_then(Value::as_str) {
            Some("valid") => Ok(Padding::Valid),
            Some("same") => Ok(Padding::Same),
            _ => Err(self.missing("padding", "\"valid\" or \"same\"")),
        }
    }
}
