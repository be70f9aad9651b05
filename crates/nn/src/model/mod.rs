//! The one model engine. Every model is a [`Model`]: a graph of layers between some inputs and
//! some outputs ([`graph`]), run by one forward pass ([`run`]) with its fused chains chosen once
//! ([`fusion`]), trained by one `fit` loop ([`crate::training`]), saved by one saving path
//! ([`crate::saving`]) and summarised by one summary ([`summary`]).
//!
//! [`Sequential`] is the builder Keras users know: it stacks layers and, once the input shape is
//! known, builds the chain as a `Model` (a graph of the kind `Sequential`, which decides how it
//! is summarised and saved) and delegates to it, as Keras' `Sequential` subclasses its
//! functional `Model`.

pub(crate) mod fusion;
pub(crate) mod graph;
pub(crate) mod handle;
pub(crate) mod merge;
mod ops;
pub(crate) mod run;
mod sequential;
mod summary;
pub(crate) mod symbolic;

use std::sync::Arc;

use tensor::{Device, Tensor};

pub use handle::LayerHandle;
pub use sequential::Sequential;

use crate::array::Array;
use crate::distributed::{Cluster, Communicator};
use crate::error::{Error, Result};
use crate::training::Compiled;
use graph::{Graph, GraphKind};
use symbolic::{Op, SymbolicTensor};

/// A model: any graph of layers from one or more inputs to one or more outputs (Keras'
/// `keras.Model(inputs, outputs)`), with branches, skip connections, merge layers, shared layers
/// and nested models. A [`Sequential`] builds one too; both train, evaluate, predict, save and
/// load through the same code.
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
/// model.fit(&x, &y, &nn::FitOptions::new().epochs(2).verbose(0))?;
/// let p = &model.predict(&x, 8)?[0];
/// assert_eq!(p.dims(), &[16, 1]);
/// # Ok(())
/// # }
/// ```
pub struct Model {
    pub(crate) graph: Arc<Graph>,
    pub(crate) device: Device,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<Compiled>,
    /// Epochs of training done so far (by `fit`, or restored from a checkpoint).
    pub(crate) epochs_done: usize,
    /// The ranks `fit` and `evaluate` share the work with ([`Model::distribute`]).
    pub(crate) cluster: Option<Cluster>,
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
    /// named per model (`dense_1`, `dense_2`, ... in graph order, unless given a name) and
    /// built in graph order, so two models of the same layers and seed get the same weights
    /// (and a chain of layers gets the weights a [`Sequential`] would). A layer already used by
    /// another model keeps its weights: the models then share them.
    pub fn with_device(
        inputs: &[&SymbolicTensor],
        outputs: &[&SymbolicTensor],
        device: &Device,
        seed: u64,
    ) -> Result<Model> {
        let graph = Graph::new(inputs, outputs, GraphKind::Functional, None)?;
        Self::from_graph(graph, device, seed)
    }

    /// A model of `graph`, creating the weights its layers do not have yet.
    pub(crate) fn from_graph(graph: Graph, device: &Device, seed: u64) -> Result<Model> {
        graph.initialize(device, seed)?;
        Ok(Model {
            graph: Arc::new(graph),
            device: device.clone(),
            seed,
            compiled: None,
            epochs_done: 0,
            cluster: None,
        })
    }

    /// Trains and evaluates data-parallel over `communicator`'s ranks from now on (see
    /// [`distributed`](crate::distributed)): every rank runs the same program on its own copy of
    /// the model, and `fit` starts by giving them all rank 0's weights. A communicator of one
    /// rank trains exactly as no communicator.
    pub fn distribute(&mut self, communicator: Arc<dyn Communicator>) {
        self.distribute_with_buckets(communicator, crate::distributed::DEFAULT_BUCKET_BYTES);
    }

    /// [`distribute`](Self::distribute) with gradient buckets of at most `bucket_bytes` (PyTorch
    /// DDP's `bucket_cap_mb`, Horovod's fusion threshold): a step's gradients are summed over
    /// the ranks in all-reduces of about this size, each started as soon as the backward pass
    /// has produced its gradients, so the communication overlaps the rest of the pass. A
    /// variable larger than the cap has a bucket of its own; 0 gives every variable its own,
    /// and `usize::MAX` sums them all in one all-reduce after the pass. The sums are the same
    /// whatever the size.
    pub fn distribute_with_buckets(&mut self, communicator: Arc<dyn Communicator>, bucket_bytes: usize) {
        self.cluster = (communicator.size() > 1).then(|| Cluster::new(communicator, bucket_bytes));
    }

    /// This process's rank and the number of ranks: `(0, 1)` unless distributed.
    pub fn rank_and_size(&self) -> (usize, usize) {
        self.cluster.as_ref().map_or((0, 1), |c| (c.rank(), c.size()))
    }

    /// The model's name (`functional_1`, or a `Sequential`'s).
    pub fn name(&self) -> &str {
        &self.graph.name
    }

    /// How the model was described, as Keras names the class: `Sequential` (built by a
    /// [`Sequential`], summarised and saved as its list of layers) or `Functional`.
    pub fn class_name(&self) -> &'static str {
        self.graph.kind.class_name()
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The seed the weights were drawn from, and the default seed of shuffling and dropout.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The model's inputs.
    pub fn inputs(&self) -> &[SymbolicTensor] {
        &self.graph.inputs
    }

    /// The model's outputs.
    pub fn outputs(&self) -> &[SymbolicTensor] {
        &self.graph.outputs
    }

    /// The inputs' names (`input_1`, ... unless given).
    pub fn input_names(&self) -> Vec<String> {
        self.graph.input_names()
    }

    /// The outputs' names (their layers' names), which key per-output losses and metrics.
    pub fn output_names(&self) -> Vec<String> {
        self.graph.output_names()
    }

    /// The per-sample shape of each input.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.graph.inputs.iter().map(|x| x.shape().to_vec()).collect()
    }

    /// The per-sample shape of each output.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.graph.outputs.iter().map(|x| x.shape().to_vec()).collect()
    }

    /// Epochs trained so far: counted by `fit` (which sets it to the last epoch it finished)
    /// and restored by [`Model::load`] from a checkpoint. Pass it to
    /// [`FitOptions::initial_epoch`](crate::FitOptions::initial_epoch) to resume.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Whether [`compile`](Self::compile) was called (or the model was loaded from a compiled
    /// save, such as a checkpoint).
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    /// The layers, in order: a functional model's inputs first (as Keras 3 lists its
    /// `InputLayer`s), then every layer in order of first use; a `Sequential`'s added layers.
    pub fn layers(&self) -> Vec<LayerHandle> {
        let sequential = self.graph.kind == GraphKind::Sequential;
        self.graph
            .layers
            .iter()
            .filter(|l| !(sequential && matches!(l.op, Op::Input(_))))
            .map(LayerHandle::new)
            .collect()
    }

    /// The names of [`layers`](Self::layers).
    pub fn layer_names(&self) -> Vec<String> {
        self.layers().iter().map(|l| l.name().to_string()).collect()
    }

    /// The layer called `name` (Keras' `get_layer`); an error lists the names there are.
    pub fn get_layer(&self, name: &str) -> Result<LayerHandle> {
        match self.graph.layer(name) {
            Some(layer) => Ok(LayerHandle::new(layer)),
            None => Err(Error::Build(format!(
                "no layer named '{name}' in model {} (layers: {})",
                self.name(),
                self.layer_names().join(", ")
            ))),
        }
    }

    /// Number of parameters of each of [`layers`](Self::layers).
    pub fn layer_param_counts(&self) -> Vec<usize> {
        self.layers().iter().map(LayerHandle::count_params).collect()
    }

    /// Total number of parameters (a shared layer counts once).
    pub fn count_params(&self) -> usize {
        self.graph.weighted_layers().iter().map(|(_, cell)| cell.lock().param_count()).sum()
    }

    /// Parameters training does not update: all of a frozen layer's (`trainable = false`) and
    /// every layer's non-trainable weights (`BatchNormalization`'s moving statistics).
    pub fn count_non_trainable_params(&self) -> usize {
        self.graph.weighted_layers().into_iter().map(|(_, cell)| cell.lock().non_trainable_count()).sum()
    }

    /// Every weight, layer by layer (a shared layer's once), each layer's trainable ones
    /// (kernel before bias) before its non-trainable ones: Keras' `model.weights`, the order of
    /// [`get_weights`](Self::get_weights).
    pub fn variables(&self) -> Vec<Tensor> {
        let layers = self.graph.weighted_layers();
        layers
            .iter()
            .flat_map(|(_, cell)| {
                cell.lock().named_weights().into_iter().map(|(_, w)| w.clone()).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The weights training updates: those of the layers that are not frozen.
    pub fn trainable_variables(&self) -> Vec<Tensor> {
        let layers = self.graph.weighted_layers();
        layers
            .iter()
            .filter(|(_, cell)| cell.lock().trainable)
            .flat_map(|(_, cell)| cell.lock().layer.params().into_iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// The weights as host arrays, in Keras' order and layouts (Keras' `get_weights`): layer by
    /// layer, kernel before bias.
    pub fn get_weights(&self) -> Result<Vec<Array>> {
        self.variables().iter().map(Array::from_tensor).collect()
    }

    /// Replaces the weights with `weights`, in [`get_weights`](Self::get_weights)' order (Keras'
    /// `set_weights`). Checks the count and every shape first, naming the first that does not
    /// fit, so a mismatch changes nothing.
    pub fn set_weights(&mut self, weights: &[Array]) -> Result<()> {
        let layers = self.graph.weighted_layers();
        handle::set_layer_weights(&layers, weights, &self.device, &format!("model {}", self.name()))
    }

    /// Applies the model to `inputs` as one layer of a bigger model (Keras: calling a model on
    /// tensors). The bigger model shares this model's layers, so training either trains both.
    /// A model applied this way must have one output.
    pub fn apply_many(&self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        apply_graph(&self.graph, inputs)
    }

    /// [`apply_many`](Self::apply_many) for a model of one input.
    pub fn apply(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.apply_many(&[x])
    }

    /// The model's graph kind, for saving and the summary.
    pub(crate) fn kind(&self) -> GraphKind {
        self.graph.kind
    }
}

/// A node applying `graph` to `inputs`, after checking they fit its inputs.
fn apply_graph(graph: &Arc<Graph>, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
    let label = format!("model {} ({})", graph.name, graph.kind.class_name());
    if graph.outputs.len() != 1 {
        return Err(Error::Build(format!(
            "{label} has {} outputs; a model applied as a layer must have one",
            graph.outputs.len()
        )));
    }
    if inputs.len() != graph.inputs.len() {
        return Err(Error::Build(format!(
            "{label} takes {} inputs, but is applied to {}",
            graph.inputs.len(),
            inputs.len()
        )));
    }
    for (x, expected) in inputs.iter().zip(&graph.inputs) {
        if x.shape() != expected.shape() {
            return Err(Error::Build(format!(
                "{label} expects input {} but is applied to {}",
                crate::summary::batch_shape(expected.shape()),
                x.describe()
            )));
        }
    }
    let shape = graph.outputs[0].shape().to_vec();
    let inputs = inputs.iter().map(|&x| x.clone()).collect();
    Ok(SymbolicTensor::new(shape, Op::Model(graph.clone()), inputs, graph.next_call()))
}
