//! [`Model`]: the graph between some inputs and some outputs, checked when it is built, and
//! its forward pass and `predict`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, MutexGuard};

use tensor::{no_grad, Device, Tensor};

use super::graph::{auto_name, LayerCell, LayerState, Node, Op, SymbolicTensor};
use super::training::CompiledModel;
use crate::array::Array;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layers::ForwardCtx;
use crate::losses::Prediction;
use crate::summary::batch_shape;

/// A model built the functional way (Keras' `keras.Model(inputs, outputs)`): any graph of
/// layers from one or more [`Input`](super::Input)s to one or more outputs, with branches,
/// skip connections, merge layers and shared layers.
///
/// ```
/// use nn::functional::{Apply, Concatenate, Input, MergeLayer, Model};
/// use nn::layers::Dense;
/// use nn::{Activation, Array, Loss, Metric, Sgd};
///
/// # fn main() -> nn::Result<()> {
/// let features = Input::named("features", [4]);
/// let hidden = Dense::new(8).activation(Activation::Relu).apply(&features)?;
/// // A skip connection: the output sees the hidden layer and the raw features.
/// let joined = Concatenate::new(-1).apply_many(&[&hidden, &features])?;
/// let out = Dense::new(1).activation(Activation::Sigmoid).name("out").apply(&joined)?;
/// let mut model = Model::new(&[&features], &[&out])?;
/// assert!(model.summary()?.contains("Connected to"));
///
/// model.compile(Loss::BinaryCrossentropy, Sgd::new(0.5), &[Metric::Accuracy])?;
/// let x = Array::new((0..64).map(|i| (i % 7) as f32 / 7.0).collect(), [16, 4])?;
/// let y = Array::new((0..16).map(|i| (i % 2) as f32).collect(), [16, 1])?;
/// model.fit(&[&x], &[&y], &nn::FitOptions::new().epochs(2).verbose(0))?;
/// let [p] = &model.predict(&[&x], 8)?[..] else { unreachable!() };
/// assert_eq!(p.dims(), &[16, 1]);
/// # Ok(())
/// # }
/// ```
pub struct Model {
    pub(crate) name: String,
    pub(crate) inputs: Vec<SymbolicTensor>,
    pub(crate) outputs: Vec<SymbolicTensor>,
    /// Every node the outputs depend on, each after its inputs.
    pub(crate) nodes: Vec<SymbolicTensor>,
    /// How many nodes read each node's value, by node id.
    consumers: HashMap<u64, usize>,
    /// The distinct layers with a [`Layer`](crate::layers::Layer) inside, in order of first use.
    pub(crate) layers: Vec<Arc<LayerCell>>,
    pub(crate) device: Device,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<CompiledModel>,
}

impl Model {
    /// The model from `inputs` to `outputs`, its weights initialised from seed 0 on the default
    /// device. See [`Model::with_device`].
    pub fn new(inputs: &[&SymbolicTensor], outputs: &[&SymbolicTensor]) -> Result<Model> {
        Self::with_device(inputs, outputs, &crate::device::default_device(), 0)
    }

    /// The model from `inputs` to `outputs`, with weights on `device` drawn from `seed`.
    ///
    /// Checks the wiring: every output must be computable from `inputs` alone, every input must
    /// be used, inputs and outputs must not repeat, and layer names must be unique. Layers are
    /// built in graph order, so two models of the same layers and seed get the same weights
    /// (and a chain of layers gets the weights a [`Sequential`](crate::Sequential) would). A
    /// layer already used by another model keeps its weights: the models then share them.
    pub fn with_device(
        inputs: &[&SymbolicTensor],
        outputs: &[&SymbolicTensor],
        device: &Device,
        seed: u64,
    ) -> Result<Model> {
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
        let mut layers: Vec<Arc<LayerCell>> = Vec::new();
        let mut names: HashMap<&str, u64> = HashMap::new();
        for node in &nodes {
            for x in &node.node.inputs {
                *consumers.entry(x.node.id).or_default() += 1;
            }
            let (name, layer_id) = (node.node.layer_name(), node.node.layer_id());
            if names.insert(name, layer_id).is_some_and(|other| other != layer_id) {
                return Err(Error::Build(format!("two layers are named '{name}'")));
            }
            if let Op::Layer(cell) = &node.node.op {
                if !layers.iter().any(|l| Arc::ptr_eq(l, cell)) {
                    layers.push(cell.clone());
                }
            }
        }
        let mut init = Initializer::new(seed, device);
        for cell in &layers {
            let mut state = cell.lock();
            if !state.initialized {
                let (input, _) = state.shapes.clone().expect("a layer in the graph has been applied");
                state.layer.build(&input, &mut init)?;
                state.initialized = true;
            }
        }
        let model_name = auto_name("functional");
        Ok(Model {
            name: model_name,
            inputs: inputs.iter().map(|&x| x.clone()).collect(),
            outputs: outputs.iter().map(|&x| x.clone()).collect(),
            nodes,
            consumers,
            layers,
            device: device.clone(),
            seed,
            compiled: None,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The model's inputs.
    pub fn inputs(&self) -> &[SymbolicTensor] {
        &self.inputs
    }

    /// The model's outputs.
    pub fn outputs(&self) -> &[SymbolicTensor] {
        &self.outputs
    }

    /// The outputs' names (their layers' names), which key per-output losses and metrics.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name().to_string()).collect()
    }

    /// The names of the layers with weights or a single input, in order of first use (inputs
    /// and merge layers excluded; [`Model::summary`] shows every layer).
    pub fn layer_names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// Total number of parameters (a shared layer counts once).
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| param_count(&l.lock())).sum()
    }

    /// The trainable variables, layer by layer (a shared layer's once).
    pub fn trainable_variables(&self) -> Vec<Tensor> {
        self.layers
            .iter()
            .flat_map(|l| l.lock().layer.params().into_iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Locks every layer, in order, for an optimizer step over all variables.
    pub(crate) fn lock_layers(&self) -> Vec<MutexGuard<'_, LayerState>> {
        self.layers.iter().map(|l| l.lock()).collect()
    }

    /// For a convolution node whose only use is a max pooling (and not a model output): the
    /// pooling node's id and its output, computed as one fused op
    /// ([`Layer::forward_relu_max_pooled`]). `None` when the pattern does not apply.
    fn forward_fused_with_pool(
        &self,
        node: &Node,
        state: &LayerState,
        x: &Tensor,
        ctx: ForwardCtx,
    ) -> Option<(u64, Result<Tensor>)> {
        if self.consumers.get(&node.id) != Some(&1) || self.outputs.iter().any(|o| o.node.id == node.id) {
            return None;
        }
        let consumer =
            self.nodes.iter().map(|n| &n.node).find(|n| n.inputs.iter().any(|i| i.node.id == node.id))?;
        let Op::Layer(pool) = &consumer.op else { return None };
        let window = pool.lock().layer.max_pool_window()?;
        let pooled = state.layer.forward_relu_max_pooled(x, window, ctx)?;
        Some((consumer.id, pooled))
    }

    /// Runs the graph on a batch of each input. For output `k` with `logits[k]`, an output layer
    /// ending in softmax returns its logits ([`Prediction::SoftmaxLogits`]) for a fused
    /// cross-entropy. Layers get the same per-layer seeds as in a `Sequential` of the same
    /// layers (numbered in graph order, inputs not counted).
    pub(crate) fn forward(
        &self,
        inputs: &[Tensor],
        training: bool,
        step_seed: u64,
        logits: &[bool],
    ) -> Result<Vec<Prediction>> {
        let wants_logits: HashSet<u64> =
            self.outputs.iter().zip(logits).filter(|(_, &l)| l).map(|(o, _)| o.node.id).collect();
        let plain_outputs: HashSet<u64> =
            self.outputs.iter().zip(logits).filter(|(_, &l)| !l).map(|(o, _)| o.node.id).collect();
        let mut values: HashMap<u64, Tensor> = HashMap::new();
        let mut logit_values: HashMap<u64, Tensor> = HashMap::new();
        // Max-pooling outputs already computed with their convolution, fused (as `Sequential`
        // does): by pooling node id.
        let mut fused: HashMap<u64, Tensor> = HashMap::new();
        let mut layer_index = 0u32;
        for node in &self.nodes {
            let node = &node.node;
            if let Some(pooled) = fused.remove(&node.id) {
                layer_index += 1;
                values.insert(node.id, pooled);
                continue;
            }
            let value = match &node.op {
                Op::Input(_) => {
                    let k = self.inputs.iter().position(|x| x.node.id == node.id).expect("checked in new");
                    inputs[k].clone()
                }
                Op::Layer(cell) => {
                    let ctx =
                        ForwardCtx { training, seed: tensor::random::hash32(layer_index) as u64 ^ step_seed };
                    layer_index += 1;
                    let x = &values[&node.inputs[0].node.id];
                    let state = cell.lock();
                    let on_layer = |e: Error| in_layer(e, &cell.name, cell.class_name);
                    if let Some((pool_id, pooled)) = self.forward_fused_with_pool(node, &state, x, ctx) {
                        fused.insert(pool_id, pooled.map_err(on_layer)?);
                        continue;
                    }
                    if wants_logits.contains(&node.id) {
                        if let Some(z) = state.layer.forward_logits(x, ctx) {
                            logit_values.insert(node.id, z.map_err(on_layer)?);
                            let needed_plain = self.consumers.get(&node.id).is_some_and(|&n| n > 0)
                                || plain_outputs.contains(&node.id);
                            if !needed_plain {
                                continue;
                            }
                        }
                    }
                    state.layer.forward(x, ctx).map_err(on_layer)?
                }
                Op::Merge(cell) => {
                    layer_index += 1;
                    let xs: Vec<&Tensor> = node.inputs.iter().map(|x| &values[&x.node.id]).collect();
                    cell.merge.forward(&xs).map_err(|e| in_layer(e, &cell.name, cell.merge.class_name()))?
                }
            };
            values.insert(node.id, value);
        }
        Ok(self
            .outputs
            .iter()
            .zip(logits)
            .map(|(o, &l)| match logit_values.get(&o.node.id) {
                Some(z) if l => Prediction::SoftmaxLogits(z.clone()),
                _ => Prediction::Output(values[&o.node.id].clone()),
            })
            .collect())
    }

    /// Checks one array per input, of the input's per-sample shape, all with the same number
    /// of samples; returns that number.
    pub(crate) fn check_inputs(&self, x: &[&Array], what: &str) -> Result<usize> {
        check_arrays(x, &self.inputs, "input", what)
    }

    /// The model's outputs for `x` (one array per input, in the order of the model's inputs),
    /// batch by batch: one array per output.
    pub fn predict(&self, x: &[&Array], batch_size: usize) -> Result<Vec<Array>> {
        if batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        let n = self.check_inputs(x, "predict")?;
        let mut data: Vec<Vec<f32>> = vec![Vec::new(); self.outputs.len()];
        no_grad(|| -> Result<()> {
            for start in (0..n).step_by(batch_size) {
                let end = (start + batch_size).min(n);
                let xb = x
                    .iter()
                    .map(|a| a.slice(start, end).to_tensor(&self.device))
                    .collect::<Result<Vec<_>>>()?;
                let preds = self.forward(&xb, false, 0, &vec![false; self.outputs.len()])?;
                for (out, p) in data.iter_mut().zip(preds) {
                    let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = p;
                    out.extend(p.to_vec()?);
                }
            }
            Ok(())
        })?;
        data.into_iter()
            .zip(&self.outputs)
            .map(|(values, o)| Array::new(values, [&[n][..], o.shape()].concat()))
            .collect()
    }
}

/// Checks arrays against symbolic tensors (inputs, or outputs for labels); returns the
/// number of samples.
pub(crate) fn check_arrays(
    arrays: &[&Array],
    against: &[SymbolicTensor],
    kind: &str,
    what: &str,
) -> Result<usize> {
    if arrays.len() != against.len() {
        return Err(Error::Data(format!(
            "{what}: the model has {} {kind}s ({}) but {} arrays were given",
            against.len(),
            against.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
            arrays.len()
        )));
    }
    let n = arrays[0].len();
    if n == 0 {
        return Err(Error::Data(format!("{what}: no samples")));
    }
    for (a, t) in arrays.iter().zip(against) {
        if a.len() != n {
            return Err(Error::Data(format!(
                "{what}: {} samples for {kind} '{}' but {n} for '{}'",
                a.len(),
                t.name(),
                against[0].name()
            )));
        }
        if kind == "input" && &a.dims()[1..] != t.shape() {
            return Err(Error::Data(format!(
                "{what}: {kind} '{}' expects samples of shape {:?}, got {:?}",
                t.name(),
                t.shape(),
                &a.dims()[1..]
            )));
        }
    }
    Ok(n)
}

/// Parameters of one layer.
pub(crate) fn param_count(state: &LayerState) -> usize {
    state.layer.params().iter().map(|p| p.numel()).sum()
}

/// Every node `outputs` depend on, each after its inputs (depth first, in the order the
/// outputs and each node's inputs are listed, so the order is deterministic).
fn topological_order(outputs: &[&SymbolicTensor]) -> Vec<SymbolicTensor> {
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
        if let Some(b) = tensors[..i].iter().find(|b| b.name() == a.name()) {
            return Err(Error::Build(format!(
                "model {kind}s {} and {} have the same name; give the layers distinct names",
                b.describe(),
                a.describe()
            )));
        }
    }
    Ok(())
}

/// Prefixes an error with the layer it happened in.
fn in_layer(e: Error, name: &str, class: &str) -> Error {
    match e {
        Error::Build(msg) => Error::Build(format!("layer {name} ({class}): {msg}")),
        Error::Tensor(t) => Error::Build(format!("layer {name} ({class}): {t}")),
        other => other,
    }
}
