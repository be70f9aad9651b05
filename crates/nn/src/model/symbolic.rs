//! Symbolic tensors and the nodes they form as layers are applied to them.
//!
//! A [`SymbolicTensor`] is a node: the shape of a sample, and how it is computed (a model
//! input, a layer, a merge layer or a nested model applied to other nodes). Nodes point to their
//! inputs, so the graph behind a model's outputs is found by walking back from them
//! ([`super::graph::Graph::new`]).
//!
//! Layers get their automatic names (`dense_1`, `dense_2`, ...) from the model they end up in,
//! numbered per model in graph order; before that, a tensor is described by its layer's given
//! name or its kind (`dense`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tensor::Tensor;

use super::graph::Graph;
use super::merge::MergeLayer;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layers::Layer;
use crate::summary::batch_shape;

/// Ids of nodes and layers, unique in the process (they key maps, so they never repeat).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A placeholder for a model input, or the output of a layer applied to placeholders: a sample
/// shape (without the batch axis) and the recipe that computes it. Cloning is cheap and the
/// clone is the same tensor.
#[derive(Clone)]
pub struct SymbolicTensor {
    pub(crate) node: Arc<Node>,
}

/// One node of the graph.
pub(crate) struct Node {
    pub id: u64,
    /// Per-sample shape.
    pub shape: Vec<usize>,
    pub op: Op,
    pub inputs: Vec<SymbolicTensor>,
    /// Which call of its layer made this node (Keras' node index, shown as `dense_1[1][0]`).
    pub call_index: usize,
}

/// What computes a node: the "layer" of Keras' graph. Cloning shares the layer.
#[derive(Clone)]
pub(crate) enum Op {
    /// A model input, with the name the user gave it, if any.
    Input(Option<String>),
    /// A layer with one input.
    Layer(Arc<LayerCell>),
    /// A merge layer (several inputs, no weights).
    Merge(Arc<MergeCell>),
    /// A model used as a layer (Keras' nested model): its graph, whose layers it shares.
    Model(Arc<Graph>),
}

impl Op {
    /// The layer's identity: the same for every node a shared layer makes. An input's is its
    /// node's id (each input is its own layer).
    pub fn id(&self, node_id: u64) -> u64 {
        match self {
            Op::Input(_) => node_id,
            Op::Layer(cell) => cell.id,
            Op::Merge(cell) => cell.id,
            Op::Model(graph) => graph.id,
        }
    }

    /// The name the user gave the layer, if any.
    pub fn given_name(&self) -> Option<&str> {
        match self {
            Op::Input(name) => name.as_deref(),
            Op::Layer(cell) => cell.given_name.as_deref(),
            Op::Merge(cell) => cell.merge.given_name(),
            Op::Model(graph) => graph.given_name.as_deref(),
        }
    }

    /// The prefix of automatic names: `input`, `dense`, `concatenate`, `sequential`, ...
    pub fn base_name(&self) -> &'static str {
        match self {
            Op::Input(_) => "input",
            Op::Layer(cell) => cell.base_name,
            Op::Merge(cell) => cell.merge.base_name(),
            Op::Model(graph) => graph.kind.base_name(),
        }
    }

    /// Keras' class name: `InputLayer`, `Dense`, `Concatenate`, `Sequential`, ...
    pub fn class_name(&self) -> &'static str {
        match self {
            Op::Input(_) => "InputLayer",
            Op::Layer(cell) => cell.class_name,
            Op::Merge(cell) => cell.merge.class_name(),
            Op::Model(graph) => graph.kind.class_name(),
        }
    }

    /// The given name, else the kind of layer: how a node is described before a model names it.
    pub fn label(&self) -> &str {
        self.given_name().unwrap_or(self.base_name())
    }
}

/// A one-input layer (a [`Layer`]), shared by every node that applies it.
pub(crate) struct LayerCell {
    pub id: u64,
    pub given_name: Option<String>,
    pub class_name: &'static str,
    pub base_name: &'static str,
    pub state: Mutex<LayerState>,
}

/// The mutable part of a [`LayerCell`].
pub(crate) struct LayerState {
    pub layer: Box<dyn Layer>,
    /// The per-sample input and output shapes of its first call; later calls must match.
    pub shapes: Option<(Vec<usize>, Vec<usize>)>,
    /// Calls so far.
    pub calls: usize,
    /// Whether a model has created its weights. `apply` builds layers only to learn their
    /// output shapes (on throw-away weights); the first model that uses a layer builds it again
    /// from the model's seed on the model's device, in the model's order, so that a model's
    /// weights do not depend on how many layers were created before it.
    pub initialized: bool,
    /// Whether training updates the weights (Keras' `layer.trainable`). A frozen layer's
    /// weights are constants, so no gradient is computed for them.
    pub trainable: bool,
}

impl LayerCell {
    /// A cell for `layer`, not yet applied.
    pub fn new(layer: Box<dyn Layer>) -> Arc<LayerCell> {
        Arc::new(LayerCell {
            id: next_id(),
            given_name: layer.given_name().map(str::to_string),
            class_name: layer.class_name(),
            base_name: layer.base_name(),
            state: Mutex::new(LayerState {
                layer,
                shapes: None,
                calls: 0,
                initialized: false,
                trainable: true,
            }),
        })
    }

    /// Locks the layer. A panic while the lock was held (in a layer's own code) leaves nothing
    /// half-written that matters here, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, LayerState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl LayerState {
    /// Builds the layer's weights for its recorded input shape with `init`.
    pub fn initialize(&mut self, init: &mut Initializer) -> Result<()> {
        let (input, _) = self.shapes.clone().expect("a layer in a graph has been applied");
        self.layer.build(&input, init)?;
        self.initialized = true;
        if !self.trainable {
            self.set_trainable(false);
        }
        Ok(())
    }

    /// Freezes or unfreezes the weights: a frozen layer holds constants, a trainable one
    /// variables (the same values either way).
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
        for p in self.layer.params_mut() {
            *p = if trainable { p.to_variable() } else { p.detach() };
        }
    }

    /// Every weight with its Keras name, trainable ones first (Keras' `layer.weights`): the
    /// order of `get_weights` and of saved files.
    pub fn named_weights(&self) -> Vec<(&'static str, &Tensor)> {
        let weights = self.layer.params().into_iter().chain(self.layer.non_trainable());
        let names = self.layer.weight_names();
        weights.enumerate().map(|(i, w)| (names.get(i).copied().unwrap_or("variable"), w)).collect()
    }

    /// Replaces every weight, in [`named_weights`](Self::named_weights)' order (the caller
    /// checked the count and shapes): the gradient-trained ones become variables unless the
    /// layer is frozen; the non-trainable ones stay constants.
    pub fn assign_weights(&mut self, mut values: impl Iterator<Item = Tensor>) {
        let trainable = self.trainable;
        for p in self.layer.params_mut() {
            let t = values.next().expect("counted by the caller");
            *p = if trainable { t.to_variable() } else { t };
        }
        for p in self.layer.non_trainable_mut() {
            *p = values.next().expect("counted by the caller");
        }
    }

    /// Number of weights, trainable or not.
    pub fn param_count(&self) -> usize {
        self.named_weights().iter().map(|(_, w)| w.numel()).sum()
    }

    /// Number of weights training does not update: all of a frozen layer's, else its
    /// non-trainable ones.
    pub fn non_trainable_count(&self) -> usize {
        if self.trainable {
            self.layer.non_trainable().iter().map(|w| w.numel()).sum()
        } else {
            self.param_count()
        }
    }
}

/// A merge layer (`apply_many` consumes it, so it makes exactly one node).
pub(crate) struct MergeCell {
    pub id: u64,
    pub merge: Box<dyn MergeLayer>,
}

impl Node {
    /// The id of the layer (or input) that made this node.
    pub fn layer_id(&self) -> u64 {
        self.op.id(self.id)
    }
}

impl SymbolicTensor {
    pub(crate) fn new(shape: Vec<usize>, op: Op, inputs: Vec<SymbolicTensor>, call_index: usize) -> Self {
        SymbolicTensor { node: Arc::new(Node { id: next_id(), shape, op, inputs, call_index }) }
    }

    /// The per-sample shape (Keras shows it with a leading `None` for the batch).
    pub fn shape(&self) -> &[usize] {
        &self.node.shape
    }

    /// The name given to the layer (or input) that computes this tensor, else its kind
    /// (`dense`, `input`). A model numbers unnamed layers (`dense_1`, ...) when it is built: see
    /// [`Model::output_names`](crate::Model::output_names).
    pub fn name(&self) -> &str {
        self.node.op.label()
    }

    /// `dense output (None, 64)`, for error messages.
    pub(crate) fn describe(&self) -> String {
        format!("{} output {}", self.name(), batch_shape(self.shape()))
    }

    /// Whether two handles are the same tensor.
    pub fn same(&self, other: &SymbolicTensor) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl std::fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<SymbolicTensor {} from {}>", batch_shape(self.shape()), self.name())
    }
}

/// Model inputs, as Keras' `keras.Input`.
///
/// ```
/// use nn::functional::Input;
/// let image = Input::new([28, 28, 1]);
/// let digit = Input::named("digit", [10]);
/// assert_eq!(image.shape(), &[28, 28, 1]);
/// assert_eq!(digit.name(), "digit");
/// ```
pub struct Input;

impl Input {
    /// A model input of per-sample `shape`; its model names it (`input_1`, `input_2`, ... in the
    /// order of the model's inputs).
    // `new` returns the tensor, not `Self`, so that it reads as Keras' `keras.Input(shape)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl Into<Vec<usize>>) -> SymbolicTensor {
        SymbolicTensor::new(shape.into(), Op::Input(None), Vec::new(), 0)
    }

    /// A model input of per-sample `shape` called `name`.
    pub fn named(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> SymbolicTensor {
        SymbolicTensor::new(shape.into(), Op::Input(Some(name.into())), Vec::new(), 0)
    }
}

/// A layer that can be applied to symbolic tensors more than once, sharing its weights between
/// the calls (Keras: calling the same layer object twice). Cloning the handle clones the handle,
/// not the layer.
///
/// ```
/// use nn::functional::{Input, Model, Shared};
/// use nn::layers::Dense;
/// use nn::functional::{Add, MergeLayer};
///
/// # fn main() -> nn::Result<()> {
/// let (a, b) = (Input::new([4]), Input::new([4]));
/// let encoder = Shared::new(Dense::new(3));
/// let sum = Add::new().apply_many(&[&encoder.apply(&a)?, &encoder.apply(&b)?])?;
/// let model = Model::new(&[&a, &b], &[&sum])?;
/// assert_eq!(model.count_params(), 4 * 3 + 3); // one kernel and bias, used twice
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Shared {
    cell: Arc<LayerCell>,
}

impl Shared {
    /// Wraps `layer`.
    pub fn new(layer: impl Layer + 'static) -> Self {
        Self::from_box(Box::new(layer))
    }

    /// Wraps a boxed layer (one read from a file).
    pub(crate) fn from_box(layer: Box<dyn Layer>) -> Self {
        Shared { cell: LayerCell::new(layer) }
    }

    /// The layer's given name, else its kind (`dense`).
    pub fn name(&self) -> &str {
        self.cell.given_name.as_deref().unwrap_or(self.cell.base_name)
    }

    /// Applies the layer to `x`. The first call fixes the input shape the layer is built for;
    /// a later call on another shape is an error naming both tensors.
    pub fn apply(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        let cell = &self.cell;
        let mut state = cell.lock();
        let label = format!("layer {} ({})", self.name(), cell.class_name);
        let out_shape = match &state.shapes {
            Some((input, _)) if input.as_slice() != x.shape() => {
                return Err(Error::Build(format!(
                    "{label} was built for input {} but is applied to {}",
                    batch_shape(input),
                    x.describe()
                )))
            }
            Some((_, output)) => output.clone(),
            None => {
                if let Some(declared) = state.layer.declared_input_shape() {
                    if declared != x.shape() {
                        return Err(Error::Build(format!(
                            "{label} declares input_shape {} but is applied to {}",
                            batch_shape(declared),
                            x.describe()
                        )));
                    }
                }
                // Throw-away weights, only to learn the output shape (see `initialized`).
                let mut scratch = Initializer::new(0, &crate::device::default_device());
                let output =
                    state.layer.build(x.shape(), &mut scratch).map_err(|e| on_input(e, &label, x))?;
                state.shapes = Some((x.shape().to_vec(), output.clone()));
                output
            }
        };
        let call_index = state.calls;
        state.calls += 1;
        drop(state);
        Ok(SymbolicTensor::new(out_shape, Op::Layer(cell.clone()), vec![x.clone()], call_index))
    }
}

/// Names the layer and its input in an error from building it.
pub(crate) fn on_input(e: Error, label: &str, x: &SymbolicTensor) -> Error {
    let msg = match e {
        Error::Build(msg) => msg,
        other => other.to_string(),
    };
    Error::Build(format!("{label} applied to {}: {msg}", x.describe()))
}

/// Applying a layer to a symbolic tensor, Keras style:
/// `let x = Dense::new(64).activation(Relu).apply(&input)?;`.
///
/// The layer is consumed; to apply one layer (one set of weights) several times, wrap it in
/// [`Shared`] first.
pub trait Apply {
    /// Applies the layer to `x`, returning the symbolic output.
    fn apply(self, x: &SymbolicTensor) -> Result<SymbolicTensor>;
}

impl<L: Layer + 'static> Apply for L {
    fn apply(self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        Shared::new(self).apply(x)
    }
}

/// Applies a merge layer to `inputs` (used by [`MergeLayer::apply_many`]).
pub(crate) fn apply_merge(merge: Box<dyn MergeLayer>, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
    let label = format!("layer {} ({})", merge.given_name().unwrap_or(merge.base_name()), merge.class_name());
    let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
    let out_shape = merge.output_shape(&shapes).map_err(|m| {
        let reason = m.reason;
        match (m.first.and_then(|i| inputs.get(i)), m.second.and_then(|i| inputs.get(i))) {
            (Some(a), Some(b)) => {
                Error::Build(format!("{label} cannot merge {} with {}: {reason}", a.describe(), b.describe()))
            }
            (Some(a), None) => Error::Build(format!("{label} applied to {}: {reason}", a.describe())),
            _ => Error::Build(format!("{label}: {reason}")),
        }
    })?;
    let cell = Arc::new(MergeCell { id: next_id(), merge });
    let inputs = inputs.iter().map(|&x| x.clone()).collect();
    Ok(SymbolicTensor::new(out_shape, Op::Merge(cell), inputs, 0))
}
