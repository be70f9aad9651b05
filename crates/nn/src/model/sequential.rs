//! [`Sequential`]: a stack of layers, each feeding the next, as in Keras; a builder of the one
//! [`Model`] engine.

use std::sync::Arc;

use tensor::{Device, Tensor};

use super::graph::{Graph, GraphKind};
use super::symbolic::{LayerCell, Op, SymbolicTensor};
use super::{LayerHandle, Model};
use crate::array::Array;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layers::Layer;
use crate::losses::Losses;
use crate::optimizers::Optimizer;
use crate::training::{Arrays, FitOptions, History, Logs, Metric};

/// A linear stack of layers.
///
/// Layers are built as soon as their input shape is known (from the first layer's
/// `input_shape`, or from the data at the first `fit`), so a layer that does not fit its input
/// is reported by [`Sequential::add`], naming the layer, not in the middle of training. Once
/// built, the stack is a [`Model`] (see [`Sequential::model`]) and every method below that
/// trains, evaluates, saves or inspects delegates to it: one engine for both kinds of model.
pub struct Sequential {
    given_name: Option<String>,
    cells: Vec<Arc<LayerCell>>,
    names: Vec<String>,
    /// Per-sample output shape of each built layer.
    output_shapes: Vec<Vec<usize>>,
    input_shape: Option<Vec<usize>>,
    device: Device,
    seed: u64,
    init: Initializer,
    /// The chain as a model, once built.
    model: Option<Model>,
    /// What `compile` was given before the model was built.
    pending_compile: Option<(Losses, Optimizer, Vec<Metric>)>,
}

impl Sequential {
    /// An empty model on the default device, initialised from seed 0.
    pub fn new() -> Self {
        Self::with_device(&crate::device::default_device())
    }

    /// An empty model whose weights live on `device`.
    pub fn with_device(device: &Device) -> Self {
        Sequential {
            given_name: None,
            cells: Vec::new(),
            names: Vec::new(),
            output_shapes: Vec::new(),
            input_shape: None,
            device: device.clone(),
            init: Initializer::new(0, device),
            seed: 0,
            model: None,
            pending_compile: None,
        }
    }

    /// Seeds weight initialisation (and, unless `fit` is given its own, shuffling and dropout).
    /// Call before adding layers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.init = Initializer::new(seed, &self.device);
        self
    }

    /// Names the model (default `sequential_1`). Call before adding layers.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.given_name = Some(name.into());
        self
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Appends a layer, building it if the model's input shape is known.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<()> {
        self.add_boxed(Box::new(layer))
    }

    /// [`add`](Self::add) for a layer already boxed (a layer read from a file).
    pub(crate) fn add_boxed(&mut self, layer: Box<dyn Layer>) -> Result<()> {
        let cell = LayerCell::new(layer);
        let name = match &cell.given_name {
            Some(n) => n.clone(),
            None => {
                let base = cell.base_name;
                let earlier =
                    self.cells.iter().filter(|c| c.base_name == base && c.given_name.is_none()).count();
                super::graph::automatic_name(base, earlier)
            }
        };
        if self.names.contains(&name) {
            return Err(Error::Build(format!("two layers are named '{name}'")));
        }
        let declared = cell.lock().layer.declared_input_shape().map(<[usize]>::to_vec);
        if self.cells.is_empty() {
            self.input_shape = declared;
        } else if declared.is_some() {
            return Err(Error::Build(format!("{name}: only the first layer may declare input_shape")));
        }
        let built = self.is_built();
        if built {
            let input = self.output_shapes.last().or(self.input_shape.as_ref()).cloned().expect("built");
            let out = build_layer(&cell, &name, &input, &mut self.init)?;
            self.output_shapes.push(out);
        }
        self.cells.push(cell);
        self.names.push(name);
        self.rebuild().inspect_err(|_| {
            self.cells.pop();
            self.names.pop();
            if built {
                self.output_shapes.pop();
            }
        })
    }

    /// Whether every layer has weights (the input shape is known).
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some() && self.output_shapes.len() == self.cells.len()
    }

    /// Builds the layers for a per-sample `input_shape` (done by `fit` when no layer declared
    /// one). Fails, naming the layer, if the shapes do not fit.
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        if let Some(declared) = &self.input_shape {
            if declared.as_slice() != input_shape {
                return Err(Error::Data(format!(
                    "the model expects samples of shape {declared:?}, got {input_shape:?}"
                )));
            }
            if self.is_built() {
                return Ok(());
            }
        }
        let mut shapes = Vec::with_capacity(self.cells.len());
        let mut shape = input_shape.to_vec();
        for (cell, name) in self.cells.iter().zip(&self.names) {
            shape = build_layer(cell, name, &shape, &mut self.init)?;
            shapes.push(shape.clone());
        }
        self.input_shape = Some(input_shape.to_vec());
        self.output_shapes = shapes;
        self.rebuild()
    }

    /// Makes the chain a model again after a layer was added or built.
    fn rebuild(&mut self) -> Result<()> {
        if !self.is_built() || self.cells.is_empty() {
            return Ok(());
        }
        let input = super::symbolic::Input::new(self.input_shape.clone().expect("built"));
        let mut x = input.clone();
        for (cell, shape) in self.cells.iter().zip(&self.output_shapes) {
            x = SymbolicTensor::new(shape.clone(), Op::Layer(cell.clone()), vec![x], 0);
        }
        let graph = Graph::new(&[&input], &[&x], GraphKind::Sequential, self.given_name.clone())?;
        let mut model = Model::from_graph(graph, &self.device, self.seed)?;
        if let Some(old) = self.model.take() {
            model.compiled = old.compiled;
            model.epochs_done = old.epochs_done;
        }
        if let Some((losses, optimizer, metrics)) = self.pending_compile.take() {
            model.compile(losses, optimizer, &metrics)?;
        }
        self.model = Some(model);
        Ok(())
    }

    /// Builds the model for `x` if it is not built yet.
    fn build_for(&mut self, x: &Arrays<'_>) -> Result<()> {
        match x.first() {
            Some(first) if !self.is_built() => self.build(&first.dims()[1..]),
            _ => Ok(()),
        }
    }

    /// The stack a model of kind `Sequential` was built from (a loaded one). Layers added to it
    /// afterwards draw their weights from a generator seeded afresh.
    pub(crate) fn from_model(model: Model) -> Result<Sequential> {
        let graph = &model.graph;
        let mut cells = Vec::new();
        let mut names = Vec::new();
        let mut output_shapes = Vec::new();
        for layer in graph.layers.iter().filter(|l| !matches!(l.op, Op::Input(_))) {
            let Op::Layer(cell) = &layer.op else {
                return Err(Error::Build(format!(
                    "layer {} of a Sequential is not a one-input layer",
                    layer.name
                )));
            };
            cells.push(cell.clone());
            names.push(layer.name.clone());
            output_shapes.push(layer.output_shape.clone());
        }
        Ok(Sequential {
            given_name: graph.given_name.clone(),
            cells,
            names,
            output_shapes,
            input_shape: Some(graph.inputs[0].shape().to_vec()),
            device: model.device.clone(),
            seed: model.seed,
            init: Initializer::new(model.seed, &model.device),
            model: Some(model),
            pending_compile: None,
        })
    }

    /// The model this stack is, once built (every method below that needs one uses it).
    pub fn model(&self) -> Result<&Model> {
        self.model.as_ref().ok_or_else(not_built)
    }

    /// [`model`](Self::model), mutably.
    pub fn model_mut(&mut self) -> Result<&mut Model> {
        self.model.as_mut().ok_or_else(not_built)
    }

    /// The built model, owned: everything `Sequential` does, `Model` does (and saves as a
    /// `Sequential`).
    pub fn into_model(self) -> Result<Model> {
        self.model.ok_or_else(not_built)
    }

    /// The per-sample input shape, once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The per-sample output shape, once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        if self.is_built() {
            self.output_shapes.last().map(Vec::as_slice).or(self.input_shape.as_deref())
        } else {
            None
        }
    }

    /// The layers' names, in order (known from `add`, before the model is built).
    pub fn layer_names(&self) -> &[String] {
        &self.names
    }

    /// The layers, once built (see [`Model::layers`]).
    pub fn layers(&self) -> Result<Vec<LayerHandle>> {
        Ok(self.model()?.layers())
    }

    /// The layer called `name` (see [`Model::get_layer`]).
    pub fn get_layer(&self, name: &str) -> Result<LayerHandle> {
        self.model()?.get_layer(name)
    }

    /// Number of parameters of each layer (0 before it is built).
    pub fn layer_param_counts(&self) -> Vec<usize> {
        self.cells.iter().map(|c| c.lock().param_count()).collect()
    }

    /// Total number of parameters.
    pub fn count_params(&self) -> usize {
        self.layer_param_counts().iter().sum()
    }

    /// Parameters of the frozen layers.
    pub fn count_non_trainable_params(&self) -> usize {
        self.model.as_ref().map_or(0, Model::count_non_trainable_params)
    }

    /// The weights training updates, layer by layer (empty before the model is built).
    pub fn trainable_variables(&self) -> Vec<Tensor> {
        self.model.as_ref().map(Model::trainable_variables).unwrap_or_default()
    }

    /// Every weight, layer by layer (see [`Model::variables`]).
    pub fn variables(&self) -> Vec<Tensor> {
        self.model.as_ref().map(Model::variables).unwrap_or_default()
    }

    /// The weights as host arrays (see [`Model::get_weights`]).
    pub fn get_weights(&self) -> Result<Vec<Array>> {
        self.model()?.get_weights()
    }

    /// Replaces the weights (see [`Model::set_weights`]).
    pub fn set_weights(&mut self, weights: &[Array]) -> Result<()> {
        self.model_mut()?.set_weights(weights)
    }

    /// Epochs trained so far (see [`Model::epochs_done`]).
    pub fn epochs_done(&self) -> usize {
        self.model.as_ref().map_or(0, Model::epochs_done)
    }

    /// Keras' summary table (layer, output shape, parameter count, totals).
    pub fn summary(&self) -> Result<String> {
        self.model()?.summary()
    }

    /// Sets the loss (a built-in [`Loss`](crate::Loss) or a user closure, see
    /// [`Losses`]), optimizer and metrics, as Keras' `compile`. Before the model is built, they
    /// are kept and applied when it is.
    pub fn compile(
        &mut self,
        loss: impl Into<Losses>,
        optimizer: impl Into<Optimizer>,
        metrics: &[Metric],
    ) -> Result<()> {
        let (losses, optimizer) = (loss.into(), optimizer.into());
        match &mut self.model {
            Some(model) => model.compile(losses, optimizer, metrics),
            None => {
                crate::training::check_learning_rate(&optimizer)?;
                self.pending_compile = Some((losses, optimizer, metrics.to_vec()));
                Ok(())
            }
        }
    }

    /// Whether [`compile`](Self::compile) was called (or the model was loaded compiled).
    pub fn is_compiled(&self) -> bool {
        self.pending_compile.is_some() || self.model.as_ref().is_some_and(Model::is_compiled)
    }

    /// Trains the model, as Keras' `fit` (see [`Model::fit`]), building it from `x` if needed.
    pub fn fit<'x, 'y>(
        &mut self,
        x: impl Into<Arrays<'x>>,
        y: impl Into<Arrays<'y>>,
        options: &FitOptions,
    ) -> Result<History> {
        let x = x.into();
        self.build_for(&x)?;
        self.model_mut()?.fit(x, y, options)
    }

    /// Loss and metrics on `(x, y)` (see [`Model::evaluate`]).
    pub fn evaluate<'x, 'y>(
        &mut self,
        x: impl Into<Arrays<'x>>,
        y: impl Into<Arrays<'y>>,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Logs> {
        let x = x.into();
        self.build_for(&x)?;
        self.model()?.evaluate(x, y, batch_size)
    }

    /// The model's outputs for `x` (see [`Model::predict`]).
    pub fn predict<'x>(
        &mut self,
        x: impl Into<Arrays<'x>>,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Vec<Array>> {
        let x = x.into();
        self.build_for(&x)?;
        self.model()?.predict(x, batch_size)
    }

    /// Applies the stack to `x` as one layer of a functional model (a nested model, as Keras
    /// allows), building it for `x`'s shape if needed; the two models share the layers.
    pub fn apply(&mut self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        if !self.is_built() {
            self.build(x.shape())?;
        }
        self.model()?.apply(x)
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<Sequential> for Model {
    type Error = Error;
    fn try_from(sequential: Sequential) -> Result<Model> {
        sequential.into_model()
    }
}

fn not_built() -> Error {
    Error::Build("the model is not built yet: give the first layer an input_shape, or call build()".into())
}

/// Builds `cell`'s layer for `input` with `init`; returns its output shape.
fn build_layer(cell: &LayerCell, name: &str, input: &[usize], init: &mut Initializer) -> Result<Vec<usize>> {
    let mut state = cell.lock();
    let out = state
        .layer
        .build(input, init)
        .map_err(|e| with_layer(e, &format!("{name} ({})", cell.class_name)))?;
    state.shapes = Some((input.to_vec(), out.clone()));
    state.initialized = true;
    Ok(out)
}

/// Prefixes an error with the layer it happened in.
fn with_layer(e: Error, layer: &str) -> Error {
    match e {
        Error::Build(msg) => Error::Build(format!("layer {layer}: {msg}")),
        Error::Tensor(t) => Error::Build(format!("layer {layer}: {t}")),
        other => other,
    }
}
