//! Symbolic tensors and the graph they form as layers are applied to them.
//!
//! A [`SymbolicTensor`] is a node: the shape of a sample, and how it is computed (a model
//! input, or a layer applied to other nodes). Nodes point to their inputs, so the graph behind
//! a model's outputs is found by walking back from them ([`super::Model::new`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::merge::MergeLayer;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layers::Layer;
use crate::summary::batch_shape;

/// Ids of nodes and layers, unique in the process (they key maps, so they never repeat).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// How many automatic names each prefix has handed out on this thread, as Keras counts per
    /// session: the first `Dense` is `dense_1`, the next `dense_2`, across models.
    static NAME_COUNTS: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
}

/// `base_1`, `base_2`, ... in the order layers are created on this thread.
pub(crate) fn auto_name(base: &str) -> String {
    NAME_COUNTS.with(|counts| {
        let mut counts = counts.borrow_mut();
        let n = counts.entry(base.to_string()).or_insert(0);
        *n += 1;
        format!("{base}_{n}")
    })
}

/// Restarts automatic names at `dense_1`, `input_1`, ... on this thread (Keras'
/// `clear_session`). Layers created before keep their names.
pub fn reset_names() {
    NAME_COUNTS.with(|counts| counts.borrow_mut().clear());
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

/// How a node is computed.
pub(crate) enum Op {
    /// A model input, with its name.
    Input(String),
    /// A layer with one input.
    Layer(Arc<LayerCell>),
    /// A merge layer (several inputs, no weights).
    Merge(Arc<MergeCell>),
}

/// A one-input layer (a [`Layer`]), shared by every node that applies it.
pub(crate) struct LayerCell {
    pub id: u64,
    pub name: String,
    pub class_name: &'static str,
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
}

impl LayerCell {
    /// Locks the layer. A panic while the lock was held (in a layer's own code) leaves nothing
    /// half-written that matters here, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, LayerState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A merge layer (`apply_many` consumes it, so it makes exactly one node).
pub(crate) struct MergeCell {
    pub id: u64,
    pub name: String,
    pub merge: Box<dyn MergeLayer>,
}

impl Node {
    /// The name of the layer (or input) that made this node.
    pub fn layer_name(&self) -> &str {
        match &self.op {
            Op::Input(name) => name,
            Op::Layer(cell) => &cell.name,
            Op::Merge(cell) => &cell.name,
        }
    }

    /// The id of the layer (or input) that made this node.
    pub fn layer_id(&self) -> u64 {
        match &self.op {
            Op::Input(_) => self.id,
            Op::Layer(cell) => cell.id,
            Op::Merge(cell) => cell.id,
        }
    }

    /// Keras' class name of the layer that made this node.
    pub fn class_name(&self) -> &'static str {
        match &self.op {
            Op::Input(_) => "InputLayer",
            Op::Layer(cell) => cell.class_name,
            Op::Merge(cell) => cell.merge.class_name(),
        }
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

    /// The name of the layer (or input) that computes this tensor; a model output's name keys
    /// its loss and its `History` entries.
    pub fn name(&self) -> &str {
        self.node.layer_name()
    }

    /// `dense_1 output (None, 64)`, for error messages.
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
    /// A model input of per-sample `shape`, named automatically (`input_1`, `input_2`, ...).
    // `new` returns the tensor, not `Self`, so that it reads as Keras' `keras.Input(shape)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl Into<Vec<usize>>) -> SymbolicTensor {
        Self::with_name(auto_name("input"), shape.into())
    }

    /// A model input of per-sample `shape` called `name`.
    pub fn named(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> SymbolicTensor {
        Self::with_name(name.into(), shape.into())
    }

    fn with_name(name: String, shape: Vec<usize>) -> SymbolicTensor {
        SymbolicTensor::new(shape, Op::Input(name), Vec::new(), 0)
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
    /// Wraps `layer`, naming it (its given name, or Keras' automatic one).
    pub fn new(layer: impl Layer + 'static) -> Self {
        let layer: Box<dyn Layer> = Box::new(layer);
        let name = match layer.given_name() {
            Some(name) => name.to_string(),
            None => auto_name(layer.base_name()),
        };
        let class_name = layer.class_name();
        let state = LayerState { layer, shapes: None, calls: 0, initialized: false };
        Shared { cell: Arc::new(LayerCell { id: next_id(), name, class_name, state: Mutex::new(state) }) }
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    /// Applies the layer to `x`. The first call fixes the input shape the layer is built for;
    /// a later call on another shape is an error naming both tensors.
    pub fn apply(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        let cell = &self.cell;
        let mut state = cell.lock();
        let label = format!("layer {} ({})", cell.name, cell.class_name);
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
fn on_input(e: Error, label: &str, x: &SymbolicTensor) -> Error {
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
    let name = match merge.given_name() {
        Some(name) => name.to_string(),
        None => auto_name(merge.base_name()),
    };
    let label = format!("layer {name} ({})", merge.class_name());
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
    let cell = Arc::new(MergeCell { id: next_id(), name, merge });
    let inputs = inputs.iter().map(|&x| x.clone()).collect();
    Ok(SymbolicTensor::new(out_shape, Op::Merge(cell), inputs, 0))
}
