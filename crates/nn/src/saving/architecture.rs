//! Whole-model saving: the architecture as JSON in the safetensors header's metadata (under
//! [`ARCHITECTURE_KEY`]), next to the weights, so one file rebuilds any model without its code.
//!
//! As in Keras, a `Sequential` is saved as its list of layers and any other model as its graph:
//!
//! - `{"class_name": "Sequential", "input_shape": [28, 28, 1], "seed": 0, "layers":
//!   [{"class_name": "Dense", "name": "dense_1", "config": {"units": 10, ...}}, ...]}`
//!   (format `sequential-v1`, unchanged since the first saves);
//! - `{"class_name": "Functional", "seed": 0, "layers": [{"class_name": "InputLayer", "name":
//!   "image", "config": {"batch_shape": [null, 28, 28, 1]}, "inbound_nodes": []}, {"class_name":
//!   "Dense", "name": "dense_1", "config": {...}, "inbound_nodes": [[["image", 0, 0]]]}, ...],
//!   "input_layers": [["image", 0, 0]], "output_layers": [["dense_1", 0, 0]]}` (format
//!   `functional-v1`): each layer lists the inputs of each of its calls as
//!   `[layer, call, 0]`, Keras' `inbound_nodes`; a nested model's config is its own
//!   architecture.
//!
//! A frozen layer's config holds `"trainable": false`; a model given a name holds `"name"`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};
use tensor::Device;

use super::layer_config::{usizes, Described};
use super::training_state::{self, TrainingState};
use super::weights::{self, load_into, parse, read_file};
use super::SavingError;
use crate::error::Result;
use crate::model::graph::{Graph, GraphKind};
use crate::model::symbolic::{apply_merge, Input, Op, Shared, SymbolicTensor};
use crate::model::{Model, Sequential};

/// Metadata key of the architecture JSON.
pub const ARCHITECTURE_KEY: &str = "nn.architecture";
/// Metadata key of the format tag, so a future layout can be told apart.
const FORMAT_KEY: &str = "nn.format";

fn format_tag(kind: GraphKind) -> &'static str {
    match kind {
        GraphKind::Sequential => "sequential-v1",
        GraphKind::Functional => "functional-v1",
    }
}

/// The model's architecture as JSON.
fn architecture(model: &Model, path: &Path) -> Result<Value> {
    let mut arch = graph_config(&model.graph)
        .map_err(|reason| SavingError::Architecture { path: path.to_path_buf(), reason })?;
    arch["seed"] = json!(model.seed);
    Ok(arch)
}

/// A layer's config, with `"trainable": false` when it is frozen.
pub(super) fn layer_config(name: &str, op: &Op) -> std::result::Result<Value, String> {
    match op {
        Op::Input(_) => unreachable!("inputs are described by their shape"),
        Op::Layer(cell) => {
            let state = cell.lock();
            let Some(mut config) = state.layer.config() else {
                return Err(format!(
                    "layer '{name}' ({}) has no config, so it cannot be saved",
                    cell.class_name
                ));
            };
            if !state.trainable {
                config["trainable"] = json!(false);
            }
            Ok(config)
        }
        Op::Merge(cell) => Ok(cell.merge.config()),
        Op::Model(graph) => graph_config(graph),
    }
}

/// The JSON of one graph (a model, or a model nested in one).
fn graph_config(graph: &Graph) -> std::result::Result<Value, String> {
    let mut arch = match graph.kind {
        GraphKind::Sequential => {
            let mut layers = Vec::new();
            for layer in graph.layers.iter().filter(|l| !matches!(l.op, Op::Input(_))) {
                let config = layer_config(&layer.name, &layer.op)?;
                layers.push(
                    json!({ "class_name": layer.op.class_name(), "name": layer.name, "config": config }),
                );
            }
            json!({ "class_name": "Sequential", "input_shape": graph.inputs[0].shape(), "layers": layers })
        }
        GraphKind::Functional => functional_config(graph)?,
    };
    if let Some(name) = &graph.given_name {
        arch["name"] = json!(name);
    }
    Ok(arch)
}

fn functional_config(graph: &Graph) -> std::result::Result<Value, String> {
    // A layer's calls in this graph, numbered from 0 (its node indices here).
    let mut calls: HashMap<u64, Vec<&SymbolicTensor>> = HashMap::new();
    for node in &graph.nodes {
        calls.entry(node.node.layer_id()).or_default().push(node);
    }
    for nodes in calls.values_mut() {
        nodes.sort_by_key(|n| n.node.call_index);
    }
    let call_of =
        |t: &SymbolicTensor| calls[&t.node.layer_id()].iter().position(|n| n.same(t)).expect("in the graph");
    let reference = |t: &SymbolicTensor| json!([graph.name_of(t), call_of(t), 0]);
    let mut layers = Vec::new();
    for layer in &graph.layers {
        let nodes = &calls[&layer.id];
        if let Op::Input(_) = layer.op {
            let mut batch_shape = vec![Value::Null];
            batch_shape.extend(layer.output_shape.iter().map(|&d| json!(d)));
            layers.push(json!({ "class_name": "InputLayer", "name": layer.name,
                "config": { "batch_shape": batch_shape }, "inbound_nodes": [] }));
            continue;
        }
        let inbound: Vec<Value> =
            nodes.iter().map(|n| Value::Array(n.node.inputs.iter().map(reference).collect())).collect();
        layers.push(json!({ "class_name": layer.op.class_name(), "name": layer.name,
            "config": layer_config(&layer.name, &layer.op)?, "inbound_nodes": inbound }));
    }
    let inputs: Vec<Value> = graph.inputs.iter().map(reference).collect();
    let outputs: Vec<Value> = graph.outputs.iter().map(reference).collect();
    Ok(
        json!({ "class_name": "Functional", "layers": layers, "input_layers": inputs, "output_layers": outputs }),
    )
}

/// Checks that `model` can be saved whole (every layer has a config, every loss is built in),
/// without writing anything.
pub(crate) fn check_savable(model: &Model, path: &Path) -> Result<()> {
    architecture(model, path)?;
    training_state::check(model, path)
}

/// Saves architecture and weights (and a compiled model's training state) to `path`,
/// atomically.
pub(crate) fn save(model: &Model, path: &Path) -> Result<()> {
    let arch = architecture(model, path)?;
    let mut extras = training_state::capture(model, path)?.unwrap_or_default();
    extras.metadata.extend([
        (FORMAT_KEY.to_string(), format_tag(model.kind()).to_string()),
        (ARCHITECTURE_KEY.to_string(), arch.to_string()),
    ]);
    weights::save_weights_with(model, path, Some(extras), |w, bytes| w.write_all(bytes))
}

/// Rebuilds a model saved by [`save`] on `device`, weights (and training state) included.
pub(crate) fn load(path: &Path, device: &Device) -> Result<Model> {
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
    let seed = match arch.get("seed") {
        Some(seed) => seed.as_u64().ok_or_else(|| arch_err("'seed' is not an integer".into()))?,
        None => return Err(arch_err("the architecture has no 'seed'".into()).into()),
    };
    let mut model = build(&arch, device, seed).map_err(arch_err)?;
    let training = TrainingState::from_metadata(path, &metadata)?;
    let others = training.as_ref().map(|t| t.tensor_names(&model)).unwrap_or_default();
    load_into(&mut model, path, &file, &others)?;
    if let Some(training) = training {
        training.restore(&mut model, path, &file)?;
    }
    Ok(model)
}

/// The model an architecture describes, with fresh weights drawn from `seed`.
pub(super) fn build(arch: &Value, device: &Device, seed: u64) -> std::result::Result<Model, String> {
    let name = arch.get("name").and_then(Value::as_str).map(str::to_string);
    match arch.get("class_name").and_then(Value::as_str) {
        Some("Sequential") => {
            build_sequential(arch, name, device, seed)?.into_model().map_err(|e| e.to_string())
        }
        Some("Functional") => build_functional(arch, name, device, seed),
        other => Err(format!("unknown model class {other:?} (Sequential or Functional)")),
    }
}

fn field<'a>(arch: &'a Value, key: &str) -> std::result::Result<&'a Value, String> {
    arch.get(key).ok_or_else(|| format!("the architecture has no '{key}'"))
}

fn layer_list(arch: &Value) -> std::result::Result<&Vec<Value>, String> {
    field(arch, "layers")?.as_array().ok_or_else(|| "'layers' is not a list".to_string())
}

fn build_sequential(
    arch: &Value,
    name: Option<String>,
    device: &Device,
    seed: u64,
) -> std::result::Result<Sequential, String> {
    let input_shape = usizes(field(arch, "input_shape")?).ok_or("'input_shape' is not a list of sizes")?;
    let mut model = Sequential::with_device(device).seed(seed);
    if let Some(name) = name {
        model = model.name(name);
    }
    let mut frozen = Vec::new();
    for (i, desc) in layer_list(arch)?.iter().enumerate() {
        let layer = Described::read(desc).map_err(|reason| format!("layer {}: {reason}", i + 1))?;
        let boxed = layer.layer().map_err(|r| format!("layer {}: {r}", i + 1))?;
        let boxed = boxed.ok_or_else(|| format!("layer {}: {}", i + 1, layer.unknown()))?;
        model.add_boxed(boxed).map_err(|e| format!("layer {}: {e}", i + 1))?;
        if !layer.trainable() {
            frozen.push(layer.name.clone());
        }
    }
    model.build(&input_shape).map_err(|e| e.to_string())?;
    for name in frozen {
        model.get_layer(&name).map_err(|e| e.to_string())?.set_trainable(false);
    }
    Ok(model)
}

/// A layer of a functional architecture while its calls are being replayed.
enum Made {
    Input,
    Layer(Shared),
    Merge(Option<Box<dyn crate::functional::MergeLayer>>),
    Model(Box<Model>),
}

fn build_functional(
    arch: &Value,
    name: Option<String>,
    device: &Device,
    seed: u64,
) -> std::result::Result<Model, String> {
    let descs = layer_list(arch)?;
    let mut made = Vec::with_capacity(descs.len());
    let mut inbound: Vec<Vec<Value>> = Vec::with_capacity(descs.len());
    let mut names = Vec::with_capacity(descs.len());
    let mut tensors: HashMap<(String, usize), SymbolicTensor> = HashMap::new();
    let mut frozen = Vec::new();
    for (i, desc) in descs.iter().enumerate() {
        let layer = Described::read(desc).map_err(|reason| format!("layer {}: {reason}", i + 1))?;
        let calls = desc.get("inbound_nodes").and_then(Value::as_array).cloned();
        let calls = calls.ok_or_else(|| format!("layer '{}' has no 'inbound_nodes' list", layer.name))?;
        let thing = if layer.class == "InputLayer" {
            let shape = layer
                .config
                .get("batch_shape")
                .and_then(Value::as_array)
                .and_then(|s| usizes(&Value::Array(s[1..].to_vec())));
            let shape = shape
                .ok_or_else(|| format!("input '{}': 'batch_shape' is not [null, sizes...]", layer.name))?;
            tensors.insert((layer.name.clone(), 0), Input::named(layer.name.clone(), shape));
            Made::Input
        } else if matches!(layer.class, "Sequential" | "Functional") {
            let mut nested = layer.config.clone();
            nested["name"] = json!(layer.name);
            let model =
                build(&nested, device, 0).map_err(|r| format!("nested model '{}': {r}", layer.name))?;
            Made::Model(Box::new(model))
        } else if let Some(merge) = layer.merge()? {
            Made::Merge(Some(merge))
        } else {
            let boxed = layer.layer()?.ok_or_else(|| layer.unknown())?;
            Made::Layer(Shared::from_box(boxed))
        };
        if !layer.trainable() {
            frozen.push(layer.name.clone());
        }
        made.push(thing);
        inbound.push(calls);
        names.push(layer.name);
    }
    // Replay the calls, each once its inputs exist (Keras' deserialisation loop).
    let mut next_call = vec![0usize; descs.len()];
    loop {
        let mut progress = false;
        for i in 0..descs.len() {
            while next_call[i] < inbound[i].len() {
                let refs = parse_refs(&inbound[i][next_call[i]], &names[i])?;
                let Some(inputs) = refs.iter().map(|r| tensors.get(r)).collect::<Option<Vec<_>>>() else {
                    break;
                };
                let out = match &mut made[i] {
                    Made::Input => return Err(format!("input '{}' has inbound nodes", names[i])),
                    Made::Layer(shared) => match inputs.as_slice() {
                        [x] => shared.apply(x),
                        _ => {
                            return Err(format!(
                                "layer '{}' takes one input, {} given",
                                names[i],
                                inputs.len()
                            ))
                        }
                    },
                    Made::Merge(merge) => {
                        let merge = merge
                            .take()
                            .ok_or_else(|| format!("merge layer '{}' is called twice", names[i]))?;
                        apply_merge(merge, &inputs)
                    }
                    Made::Model(model) => model.apply_many(&inputs),
                }
                .map_err(|e| e.to_string())?;
                tensors.insert((names[i].clone(), next_call[i]), out);
                next_call[i] += 1;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    if let Some(i) = (0..descs.len()).find(|&i| next_call[i] < inbound[i].len()) {
        return Err(format!("layer '{}' reads a layer output that nothing computes", names[i]));
    }
    let ends = |key: &str| -> std::result::Result<Vec<SymbolicTensor>, String> {
        let list = field(arch, key)?.as_array().ok_or_else(|| format!("'{key}' is not a list"))?;
        list.iter()
            .map(|r| {
                let r = parse_ref(r, key)?;
                tensors
                    .get(&r)
                    .cloned()
                    .ok_or_else(|| format!("'{key}' names {}[{}], which is not computed", r.0, r.1))
            })
            .collect()
    };
    let (inputs, outputs) = (ends("input_layers")?, ends("output_layers")?);
    let (inputs, outputs): (Vec<&SymbolicTensor>, Vec<&SymbolicTensor>) =
        (inputs.iter().collect(), outputs.iter().collect());
    let graph = Graph::new(&inputs, &outputs, GraphKind::Functional, name).map_err(|e| e.to_string())?;
    let model = Model::from_graph(graph, device, seed).map_err(|e| e.to_string())?;
    for name in frozen {
        model.get_layer(&name).map_err(|e| e.to_string())?.set_trainable(false);
    }
    Ok(model)
}

/// `[["dense_1", 0, 0], ...]`: the (layer, call) of each input of one call.
fn parse_refs(call: &Value, layer: &str) -> std::result::Result<Vec<(String, usize)>, String> {
    let list = call.as_array().ok_or_else(|| format!("layer '{layer}': an inbound node is not a list"))?;
    list.iter().map(|r| parse_ref(r, layer)).collect()
}

fn parse_ref(r: &Value, context: &str) -> std::result::Result<(String, usize), String> {
    match r.as_array().map(Vec::as_slice) {
        Some([name, call, _]) => match (name.as_str(), call.as_u64()) {
            (Some(name), Some(call)) => Ok((name.to_string(), call as usize)),
            _ => Err(format!("{context}: {r} is not [layer, call, 0]")),
        },
        _ => Err(format!("{context}: {r} is not [layer, call, 0]")),
    }
}
