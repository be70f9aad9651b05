//! `config.json` of a `.keras` file: Keras 3's serialisation of a model
//! (`{"module": .., "class_name": "Sequential" | "Functional", "config": {"layers": [..]}}`),
//! translated to and from this library's architecture JSON ([`super::super::architecture`]),
//! whose layer configs are already Keras' own, so one parser builds the layers.
//!
//! The weights file addresses a layer by its class, not its name: `layers/dense`,
//! `layers/dense_1`, ... numbered per class in the order of the model's `layers` (a
//! `Sequential`'s without its `InputLayer`, a functional model's with them), as Keras'
//! `_save_container_state` does. [`weight_paths`] computes those paths from a Keras config, for
//! reading and writing alike.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::super::architecture::layer_config;
use super::super::layer_config::Described;
use crate::model::graph::{Graph, GraphKind};
use crate::model::symbolic::{Op, SymbolicTensor};

/// Why a Keras config cannot be translated.
pub(super) enum ConfigError {
    /// A layer of a class this library lacks.
    Unknown { layer: String, class: String },
    /// Anything else: a missing field, a malformed node, ...
    Invalid(String),
}

impl From<String> for ConfigError {
    fn from(reason: String) -> Self {
        ConfigError::Invalid(reason)
    }
}

fn is_model(class: &str) -> bool {
    matches!(class, "Sequential" | "Functional" | "Model")
}

/// Keras' `naming.to_snake_case`: `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d`,
/// `ReLU` -> `re_lu`. The two regular expressions it applies, as plain scans.
pub(super) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // `(.)([A-Z][a-z]+)` -> `\1_\2`, left to right without overlaps.
    let mut first = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let word =
            i + 2 < chars.len() && chars[i + 1].is_ascii_uppercase() && chars[i + 2].is_ascii_lowercase();
        if word {
            let mut end = i + 3;
            while end < chars.len() && chars[end].is_ascii_lowercase() {
                end += 1;
            }
            first.push(chars[i]);
            first.push('_');
            first.extend_from_slice(&chars[i + 1..end]);
            i = end;
        } else {
            first.push(chars[i]);
            i += 1;
        }
    }
    // `([a-z])([A-Z])` -> `\1_\2`, then lower case.
    let mut out = String::with_capacity(first.len() + 4);
    let mut i = 0;
    while i < first.len() {
        if i + 1 < first.len() && first[i].is_ascii_lowercase() && first[i + 1].is_ascii_uppercase() {
            out.push(first[i]);
            out.push('_');
            out.push(first[i + 1]);
            i += 2;
        } else {
            out.push(first[i]);
            i += 1;
        }
    }
    out.to_lowercase()
}

fn layers_of(model: &Value) -> Result<&Vec<Value>, String> {
    model
        .get("config")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_array)
        .ok_or_else(|| "the model's config has no 'layers' list".to_string())
}

/// A layer's name: Keras 3 keeps it in the config (and, in a functional model, beside it).
fn name_of(layer: &Value) -> Result<String, String> {
    let name = layer.get("name").or_else(|| layer.get("config").and_then(|c| c.get("name")));
    name.and_then(Value::as_str).map(str::to_string).ok_or_else(|| "a layer has no 'name'".to_string())
}

fn class_of(layer: &Value) -> Result<&str, String> {
    layer.get("class_name").and_then(Value::as_str).ok_or_else(|| "a layer has no 'class_name'".to_string())
}

/// The weights-file path of every layer of a Keras model config (recursively for nested
/// models), keyed by its name as [`Model`](crate::Model)'s weights are (`outer/inner`).
pub(super) fn weight_paths(model: &Value) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    paths_into(model, "", "", &mut out)?;
    Ok(out)
}

fn paths_into(
    model: &Value,
    name_prefix: &str,
    path_prefix: &str,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    let sequential = class_of(model)? == "Sequential";
    let mut used: HashMap<String, usize> = HashMap::new();
    for layer in layers_of(model)? {
        let class = class_of(layer)?;
        if sequential && class == "InputLayer" {
            continue;
        }
        let base = snake_case(class);
        let count = used.entry(base.clone()).or_insert(0);
        let key = if *count == 0 { base } else { format!("{base}_{count}") };
        *count += 1;
        let (name, path) =
            (format!("{name_prefix}{}", name_of(layer)?), format!("{path_prefix}layers/{key}"));
        if is_model(class) {
            paths_into(layer, &format!("{name}/"), &format!("{path}/"), out)?;
        } else {
            out.insert(name, path);
        }
    }
    Ok(())
}

/// The architecture JSON of [`super::super::architecture`] for a Keras 3 model config; the
/// first layer of a class this library lacks is reported as [`ConfigError::Unknown`].
pub(super) fn to_architecture(model: &Value) -> Result<Value, ConfigError> {
    let class = class_of(model)?;
    let config = model.get("config").ok_or_else(|| "the model has no 'config'".to_string())?;
    let layers = layers_of(model)?;
    let mut arch = match class {
        "Sequential" => {
            let mut input_shape = None;
            let mut ours = Vec::new();
            for layer in layers {
                if class_of(layer)? == "InputLayer" {
                    let config = layer.get("config");
                    let shape =
                        config.and_then(|c| c.get("batch_shape").or_else(|| c.get("batch_input_shape")));
                    input_shape = shape.cloned();
                } else {
                    ours.push(to_layer(layer)?);
                }
            }
            // Without an InputLayer, Keras records the shape it was built for.
            let built = config.get("build_input_shape").or_else(|| {
                model.get("build_config").and_then(|b| b.get("input_shape")).filter(|s| !s.is_null())
            });
            let batch_shape = input_shape.or_else(|| built.cloned()).ok_or_else(|| {
                "the Sequential has no InputLayer and no build_input_shape: its input shape is unknown"
                    .to_string()
            })?;
            let shape = batch_shape
                .as_array()
                .filter(|s| !s.is_empty())
                .map(|s| Value::Array(s[1..].to_vec()))
                .ok_or_else(|| format!("input shape {batch_shape} is not [null, sizes...]"))?;
            json!({ "class_name": "Sequential", "input_shape": shape, "layers": ours })
        }
        "Functional" | "Model" => {
            let ours = layers.iter().map(to_layer).collect::<Result<Vec<_>, _>>()?;
            let ends = |key: &str| -> Result<Value, String> {
                let list = config.get(key).and_then(Value::as_array).ok_or(format!("no '{key}' list"))?;
                // One input or output may be written as a bare `[name, 0, 0]`.
                Ok(match list.first() {
                    Some(Value::String(_)) => json!([list]),
                    _ => Value::Array(list.clone()),
                })
            };
            json!({ "class_name": "Functional", "layers": ours,
                "input_layers": ends("input_layers")?, "output_layers": ends("output_layers")? })
        }
        other => return Err(format!("the model is a {other}, not a Sequential or functional Model").into()),
    };
    if let Some(name) = config.get("name").filter(|n| n.is_string()) {
        arch["name"] = name.clone();
    }
    Ok(arch)
}

/// One layer of a Keras config as the architecture JSON lists it.
fn to_layer(layer: &Value) -> Result<Value, ConfigError> {
    let class = class_of(layer)?;
    let name = name_of(layer)?;
    let config = if is_model(class) {
        to_architecture(layer)?
    } else {
        layer.get("config").cloned().ok_or_else(|| format!("layer '{name}' has no 'config'"))?
    };
    let mut ours = json!({ "class_name": class, "name": name, "config": config });
    // Keras 2 named an input's shape `batch_input_shape`.
    if class == "InputLayer" && ours["config"].get("batch_shape").is_none() {
        if let Some(shape) = ours["config"].get("batch_input_shape").cloned() {
            ours["config"]["batch_shape"] = shape;
        }
    }
    if !is_model(class) && class != "InputLayer" {
        let described = Described::read(&ours)?;
        // A config this library cannot build is reported when the model is built; here only
        // whether the class exists at all.
        let known = !matches!((described.layer(), described.merge()), (Ok(None), Ok(None)));
        if !known {
            return Err(ConfigError::Unknown { layer: name, class: class.to_string() });
        }
    }
    if let Some(nodes) = layer.get("inbound_nodes") {
        let nodes =
            nodes.as_array().ok_or_else(|| format!("layer '{name}': 'inbound_nodes' is not a list"))?;
        let calls: Vec<Value> = nodes
            .iter()
            .map(|node| match node.get("args") {
                // Keras 3: `{"args": [tensor or [tensors]], "kwargs": {}}`.
                Some(args) => {
                    let mut refs = Vec::new();
                    keras_tensors(args, &mut refs);
                    Value::Array(refs)
                }
                // Keras 2's `[[name, call, index, kwargs], ...]`.
                None => node.clone(),
            })
            .collect();
        ours["inbound_nodes"] = Value::Array(calls);
    }
    Ok(ours)
}

/// The `keras_history` (`[layer, call, index]`) of every `__keras_tensor__` in `args`.
fn keras_tensors(args: &Value, out: &mut Vec<Value>) {
    match args {
        Value::Array(items) => items.iter().for_each(|item| keras_tensors(item, out)),
        Value::Object(map) if map.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            if let Some(history) = map.get("config").and_then(|c| c.get("keras_history")) {
                out.push(history.clone());
            }
        }
        _ => {}
    }
}

/// Keras' order of a functional model's layers (`ops/function.py`'s `map_graph`): by depth
/// from the outputs, deepest (the inputs) first, ties in the order a depth-first walk from the
/// outputs meets them. Keras numbers the weights file's groups in this order when it loads a
/// model, so a file written in another order would swap the weights of same-class layers.
fn keras_order(graph: &Graph) -> Vec<usize> {
    let position: HashMap<u64, usize> = graph.layers.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let mut seen_layer: HashMap<u64, usize> = HashMap::new();
    let mut finished: Vec<u64> = Vec::new();
    let mut done = std::collections::HashSet::new();
    fn walk(
        t: &SymbolicTensor,
        seen_layer: &mut HashMap<u64, usize>,
        finished: &mut Vec<u64>,
        done: &mut std::collections::HashSet<u64>,
    ) {
        if done.contains(&t.node.id) {
            return;
        }
        let next = seen_layer.len();
        seen_layer.entry(t.node.layer_id()).or_insert(next);
        for input in &t.node.inputs {
            walk(input, seen_layer, finished, done);
        }
        done.insert(t.node.id);
        finished.push(t.node.id);
    }
    for output in &graph.outputs {
        walk(output, &mut seen_layer, &mut finished, &mut done);
    }
    let nodes: HashMap<u64, &SymbolicTensor> = graph.nodes.iter().map(|n| (n.node.id, n)).collect();
    let mut node_depth: HashMap<u64, usize> = HashMap::new();
    let mut layer_depth: HashMap<u64, usize> = HashMap::new();
    for id in finished.iter().rev() {
        let Some(node) = nodes.get(id) else { continue };
        let layer = node.node.layer_id();
        let depth = (*node_depth.entry(*id).or_insert(0)).max(layer_depth.get(&layer).copied().unwrap_or(0));
        layer_depth.insert(layer, depth);
        node_depth.insert(*id, depth);
        for input in &node.node.inputs {
            let d = node_depth.entry(input.node.id).or_insert(0);
            *d = (*d).max(depth + 1);
        }
    }
    let mut order: Vec<usize> = (0..graph.layers.len()).collect();
    order.sort_by_key(|&i| {
        let id = graph.layers[i].id;
        let depth = layer_depth.get(&id).copied().unwrap_or(0);
        (std::cmp::Reverse(depth), seen_layer.get(&id).copied().unwrap_or(usize::MAX), position[&id])
    });
    order
}

/// A graph as Keras 3 serialises the model (`keras.saving.serialize_keras_object`).
pub(super) fn from_graph(graph: &Graph) -> Result<Value, String> {
    let mut layers = Vec::new();
    let batch = |shape: &[usize]| {
        let mut s = vec![Value::Null];
        s.extend(shape.iter().map(|&d| json!(d)));
        Value::Array(s)
    };
    let entry = |layer: &crate::model::graph::GraphLayer| -> Result<Value, String> {
        Ok(match &layer.op {
            Op::Input(_) => json!({ "module": "keras.layers", "class_name": "InputLayer",
                "config": { "batch_shape": batch(&layer.output_shape), "dtype": "float32", "name": layer.name },
                "registered_name": null }),
            Op::Model(inner) => {
                let mut nested = from_graph(inner)?;
                nested["config"]["name"] = json!(layer.name);
                nested
            }
            op => {
                let mut config = layer_config(&layer.name, op)?;
                config["name"] = json!(layer.name);
                json!({ "module": "keras.layers", "class_name": op.class_name(), "config": config,
                    "registered_name": null })
            }
        })
    };
    let name = graph.given_name.clone().unwrap_or_else(|| graph.name.clone());
    match graph.kind {
        GraphKind::Sequential => {
            for layer in &graph.layers {
                layers.push(entry(layer)?);
            }
            let input = batch(graph.inputs[0].shape());
            Ok(json!({ "module": "keras", "class_name": "Sequential",
                "config": { "name": name, "trainable": true, "layers": layers },
                "registered_name": null, "build_config": { "input_shape": input } }))
        }
        GraphKind::Functional => {
            // A layer's calls in this graph, numbered from 0, as in the architecture JSON.
            let mut calls: HashMap<u64, Vec<&SymbolicTensor>> = HashMap::new();
            for node in &graph.nodes {
                calls.entry(node.node.layer_id()).or_default().push(node);
            }
            for nodes in calls.values_mut() {
                nodes.sort_by_key(|n| n.node.call_index);
            }
            let call_of = |t: &SymbolicTensor| calls[&t.node.layer_id()].iter().position(|n| n.same(t));
            let history = |t: &SymbolicTensor| json!([graph.name_of(t), call_of(t).unwrap_or(0), 0]);
            let tensor = |t: &SymbolicTensor| {
                json!({ "class_name": "__keras_tensor__", "config": { "shape": batch(t.shape()),
                    "dtype": "float32", "keras_history": history(t) } })
            };
            for i in keras_order(graph) {
                let layer = &graph.layers[i];
                let mut value = entry(layer)?;
                let nodes: Vec<Value> = calls[&layer.id]
                    .iter()
                    .filter(|_| !matches!(layer.op, Op::Input(_)))
                    .map(|n| {
                        let inputs: Vec<Value> = n.node.inputs.iter().map(tensor).collect();
                        // A merge (or a nested model of several inputs) takes one list.
                        let args = match (&layer.op, inputs.as_slice()) {
                            (Op::Layer(_), [one]) => json!([one]),
                            (Op::Model(_), [one]) => json!([one]),
                            _ => json!([inputs]),
                        };
                        json!({ "args": args, "kwargs": {} })
                    })
                    .collect();
                value["name"] = json!(layer.name);
                value["inbound_nodes"] = Value::Array(nodes);
                layers.push(value);
            }
            let inputs: Vec<Value> = graph.inputs.iter().map(history).collect();
            let outputs: Vec<Value> = graph.outputs.iter().map(history).collect();
            Ok(json!({ "module": "keras.src.models.functional", "class_name": "Functional",
                "config": { "name": name, "trainable": true, "layers": layers,
                    "input_layers": inputs, "output_layers": outputs },
                "registered_name": "Functional" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_is_keras_to_snake_case() {
        // Pairs printed by Keras 3.15.1's `keras.src.utils.naming.to_snake_case`.
        let keras = [
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("ReLU", "re_lu"),
            ("LeakyReLU", "leaky_re_lu"),
            ("BatchNormalization", "batch_normalization"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("InputLayer", "input_layer"),
            ("UpSampling2D", "up_sampling2d"),
            ("ZeroPadding2D", "zero_padding2d"),
            ("RandomFlip", "random_flip"),
            ("Functional", "functional"),
        ];
        for (class, snake) in keras {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }
}
