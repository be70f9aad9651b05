//! [`Graph`]: the checked, named, ordered form of the nodes between a model's inputs and
//! outputs. Every model is one: a [`Sequential`](crate::Sequential) builds the chain of its
//! layers, [`Model::new`](crate::Model::new) takes any graph. The graph is immutable once built
//! and shared (a model used as a layer of another shares its graph, and so its weights).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::fusion::Fusion;
use super::symbolic::{next_id, LayerCell, Op, SymbolicTensor};
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::summary::batch_shape;
use tensor::Device;

/// How a model was described, which decides how it is summarised and saved: Keras' `Sequential`
/// (a list of layers) or `Functional` (a graph).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GraphKind {
    Sequential,
    Functional,
}

impl GraphKind {
    pub fn class_name(self) -> &'static str {
        match self {
            GraphKind::Sequential => "Sequential",
            GraphKind::Functional => "Functional",
        }
    }
    pub fn base_name(self) -> &'static str {
        match self {
            GraphKind::Sequential => "sequential",
            GraphKind::Functional => "functional",
        }
    }
}

/// One distinct layer of a graph (inputs and merge layers included), with its name there.
pub(crate) struct GraphLayer {
    pub name: String,
    pub op: Op,
    /// The layer's id (an input's is its node's).
    pub id: u64,
    /// The per-sample output shape of its first call.
    pub output_shape: Vec<usize>,
}

/// A model's graph.
pub(crate) struct Graph {
    pub id: u64,
    pub kind: GraphKind,
    pub given_name: Option<String>,
    /// The model's own name: given, or `sequential_1` / `functional_1`.
    pub name: String,
    pub inputs: Vec<SymbolicTensor>,
    pub outputs: Vec<SymbolicTensor>,
    /// Every node the outputs depend on, each after its inputs.
    pub nodes: Vec<SymbolicTensor>,
    /// How many nodes read each node's value, by node id.
    pub consumers: HashMap<u64, usize>,
    /// The distinct layers: the inputs in the model's order, then the others in order of first
    /// use. Their names are unique in the graph.
    pub layers: Vec<GraphLayer>,
    /// Position in `layers`, by layer id.
    index: HashMap<u64, usize>,
    /// Which layer chains run as one fused op (decided once, here).
    pub fusion: Fusion,
    /// Times this graph was applied as a layer of another model (its node index there).
    pub calls: AtomicUsize,
}

impl Graph {
    /// Checks the wiring from `inputs` to `outputs` and names the layers: every output must be
    /// computable from `inputs` alone, every input must be used, inputs and outputs must not
    /// repeat, and layer names must be unique.
    pub fn new(
        inputs: &[&SymbolicTensor],
        outputs: &[&SymbolicTensor],
        kind: GraphKind,
        given_name: Option<String>,
    ) -> Result<Graph> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::Build("a model needs at least one input and one output".into()));
        }
        for (i, x) in inputs.iter().enumerate() {
            if !matches!(x.node.op, Op::Input(_)) {
                return Err(Error::Build(format!(
                    "model input {i} is {}, not an Input: pass the Input tensors the model starts from",
                    x.describe()
                )));
            }
            if let Some(zero) = x.shape().iter().position(|&d| d == 0) {
                return Err(Error::Build(format!("input {} has size 0 on axis {}", x.describe(), zero + 1)));
            }
        }
        check_distinct(inputs, "input")?;
        check_distinct(outputs, "output")?;
        let nodes = topological_order(outputs);
        let input_ids: HashSet<u64> = inputs.iter().map(|x| x.node.id).collect();
        for node in &nodes {
            if matches!(node.node.op, Op::Input(_)) && !input_ids.contains(&node.node.id) {
                let output = outputs
                    .iter()
                    .find(|o| topological_order(&[o]).iter().any(|n| n.same(node)))
                    .expect("the node came from an output");
                return Err(Error::Build(format!(
                    "output {} is not reachable from the model's inputs: it needs input '{}' {}, \
                     which is not among them",
                    output.describe(),
                    node.name(),
                    batch_shape(node.shape())
                )));
            }
        }
        let used: HashSet<u64> = nodes.iter().map(|n| n.node.id).collect();
        if let Some(unused) = inputs.iter().find(|x| !used.contains(&x.node.id)) {
            return Err(Error::Build(format!(
                "input '{}' {} is not used by any output",
                unused.name(),
                batch_shape(unused.shape())
            )));
        }
        let mut consumers: HashMap<u64, usize> = HashMap::new();
        for node in &nodes {
            for x in &node.node.inputs {
                *consumers.entry(x.node.id).or_default() += 1;
            }
        }
        let (layers, index) = name_layers(inputs, &nodes)?;
        let graph_outputs: Vec<SymbolicTensor> = outputs.iter().map(|&x| x.clone()).collect();
        let fusion = Fusion::plan(&nodes, &graph_outputs, &consumers);
        let name = given_name.clone().unwrap_or_else(|| format!("{}_1", kind.base_name()));
        let graph = Graph {
            id: next_id(),
            kind,
            given_name,
            name,
            inputs: inputs.iter().map(|&x| x.clone()).collect(),
            outputs: graph_outputs,
            nodes,
            consumers,
            layers,
            index,
            fusion,
            calls: AtomicUsize::new(0),
        };
        let names = graph.output_names();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(Error::Build(format!(
                    "two model outputs come from layer '{name}'; outputs key losses and metrics by \
                     their layer's name, so each must come from its own layer"
                )));
            }
        }
        Ok(graph)
    }

    /// The name of the layer (or input) that computes `tensor` in this graph.
    pub fn name_of(&self, tensor: &SymbolicTensor) -> &str {
        &self.layers[self.index[&tensor.node.layer_id()]].name
    }

    /// The layer called `name`, if any.
    pub fn layer(&self, name: &str) -> Option<&GraphLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// The outputs' names, which key per-output losses and metrics.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| self.name_of(o).to_string()).collect()
    }

    /// The inputs' names.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|x| self.name_of(x).to_string()).collect()
    }

    /// The layers with weights, each once, looking into nested models, with their names
    /// (`dense_1`; in a nested model `sequential_1/dense_1`). Weights are ordered by this list.
    pub fn weighted_layers(&self) -> Vec<(String, Arc<LayerCell>)> {
        let mut out: Vec<(String, Arc<LayerCell>)> = Vec::new();
        let mut seen = HashSet::new();
        for layer in &self.layers {
            match &layer.op {
                Op::Layer(cell) => {
                    if seen.insert(cell.id) {
                        out.push((layer.name.clone(), cell.clone()));
                    }
                }
                Op::Model(inner) => {
                    for (name, cell) in inner.weighted_layers() {
                        if seen.insert(cell.id) {
                            out.push((format!("{}/{name}", layer.name), cell));
                        }
                    }
                }
                Op::Input(_) | Op::Merge(_) => {}
            }
        }
        out
    }

    /// Creates the weights of every layer not built by a model yet, in graph order from one
    /// generator drawn from `seed` (so a chain of layers gets the weights a `Sequential` of them
    /// would). A layer already built keeps its weights, which must live on `device`.
    pub fn initialize(&self, device: &Device, seed: u64) -> Result<()> {
        let mut init = Initializer::new(seed, device);
        for (name, cell) in self.weighted_layers() {
            let mut state = cell.lock();
            if !state.initialized {
                state
                    .initialize(&mut init)
                    .map_err(|e| Error::Build(format!("layer {name} ({}): {e}", cell.class_name)))?;
            } else if let Some(p) = state.layer.params().first() {
                if !p.device().same(device) {
                    return Err(Error::Build(format!(
                        "layer {name} ({}) holds its weights on {}, but the model is on {}",
                        cell.class_name,
                        p.device().name(),
                        device.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The number of times this graph has been applied as a layer, then one more.
    pub fn next_call(&self) -> usize {
        self.calls.fetch_add(1, Ordering::Relaxed)
    }
}

/// Names every layer: the inputs first (`input_1`, ... in the model's order), then the other
/// layers in graph order; a layer keeps the name it was given, else gets `base_k`, counting the
/// unnamed layers of its kind. Two layers of one name are an error.
fn name_layers(
    inputs: &[&SymbolicTensor],
    nodes: &[SymbolicTensor],
) -> Result<(Vec<GraphLayer>, HashMap<u64, usize>)> {
    let mut layers: Vec<GraphLayer> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut unnamed: HashMap<&'static str, usize> = HashMap::new();
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for tensor in inputs.iter().copied().chain(nodes) {
        let node = &tensor.node;
        let id = node.layer_id();
        if index.contains_key(&id) {
            continue;
        }
        let name = match node.op.given_name() {
            Some(name) => name.to_string(),
            None => {
                let count = unnamed.entry(node.op.base_name()).or_insert(0);
                *count += 1;
                automatic_name(node.op.base_name(), *count - 1)
            }
        };
        if by_name.insert(name.clone(), id).is_some() {
            return Err(Error::Build(format!("two layers are named '{name}'")));
        }
        index.insert(id, layers.len());
        layers.push(GraphLayer { name, op: node.op.clone(), id, output_shape: node.shape.clone() });
    }
    Ok((layers, index))
}

/// The name of an unnamed layer of kind `base` after `earlier` unnamed ones of its kind:
/// Keras' `dense_1`, `dense_2`, ...
pub(crate) fn automatic_name(base: &str, earlier: usize) -> String {
    format!("{base}_{}", earlier + 1)
}

/// Every node `outputs` depend on, each after its inputs (depth first, in the order the
/// outputs and each node's inputs are listed, so the order is deterministic).
pub(crate) fn topological_order(outputs: &[&SymbolicTensor]) -> Vec<SymbolicTensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // An explicit stack, not recursion: deep graphs must not overflow the thread's stack.
    let mut stack: Vec<(SymbolicTensor, bool)> = outputs.iter().rev().map(|&o| (o.clone(), false)).collect();
    while let Some((node, inputs_done)) = stack.pop() {
        if inputs_done {
            if seen.insert(node.node.id) {
                order.push(node);
            }
            continue;
        }
        if seen.contains(&node.node.id) {
            continue;
        }
        stack.push((node.clone(), true));
        for x in node.node.inputs.iter().rev() {
            if !seen.contains(&x.node.id) {
                stack.push((x.clone(), false));
            }
        }
    }
    order
}

fn check_distinct(tensors: &[&SymbolicTensor], kind: &str) -> Result<()> {
    for (i, a) in tensors.iter().enumerate() {
        if tensors[..i].iter().any(|b| b.same(a)) {
            return Err(Error::Build(format!("{} is listed twice as a model {kind}", a.describe())));
        }
    }
    Ok(())
}
