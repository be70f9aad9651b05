//! Reverse-mode automatic differentiation.
//!
//! Each op result that depends on a variable keeps a `Node`: its inputs and a closure that
//! maps the output's gradient to the inputs' gradients. [`Tensor::backward`] orders the graph
//! topologically from the loss and runs the closures once each, summing the gradients of a
//! tensor used more than once. Backward closures run with recording switched off, so computing
//! gradients builds no graph of its own. [`Tensor::backward_with`] also reports each variable's
//! gradient the moment it is complete (for distributed training to start summing it).

use crate::error::{Result, TensorError};
use crate::tensor::{Tensor, TensorId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// What a backward closure receives.
pub struct BackwardCtx<'a> {
    /// The op's inputs, in the order the op listed them.
    pub inputs: &'a [Tensor],
    /// The op's output (already computed forward values).
    pub output: &'a Tensor,
    /// Gradient of the loss with respect to the output.
    pub grad: &'a Tensor,
    /// Per input: whether its gradient is wanted (it leads to a variable).
    pub needs: &'a [bool],
}

/// Maps the output gradient to one optional gradient per input (`None` where not needed).
pub trait BackwardFn: Fn(&BackwardCtx) -> Result<Vec<Option<Tensor>>> + Send + Sync {}
impl<F: Fn(&BackwardCtx) -> Result<Vec<Option<Tensor>>> + Send + Sync> BackwardFn for F {}

/// How a tracked op result was computed.
pub(crate) struct Node {
    pub name: &'static str,
    pub inputs: Vec<Tensor>,
    pub backward: Box<dyn BackwardFn>,
}

/// Whether and how a tensor takes part in differentiation.
pub(crate) enum Track {
    /// A constant, or computed without gradient recording.
    None,
    /// A variable: gradients stop and are collected here.
    Leaf,
    /// Computed from tracked inputs.
    Op(Node),
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread currently record graphs.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Switches graph recording off on this thread until dropped (then restores the previous mode).
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    /// Stops recording.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { previous }
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` with graph recording on this thread set to `enabled`, then restores the previous
/// mode (a host loop moved to another thread keeps its caller's mode).
pub(crate) fn with_grad_mode<R>(enabled: bool, f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard { previous: GRAD_ENABLED.with(|g| g.replace(enabled)) };
    f()
}

/// Runs `f` without recording graphs (evaluation, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// Gradients of a loss with respect to the variables it depends on.
#[derive(Default)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient for `variable`, if the loss depends on it.
    pub fn get(&self, variable: &Tensor) -> Option<&Tensor> {
        self.map.get(&variable.id())
    }
    /// Removes and returns the gradient for `variable`.
    pub fn remove(&mut self, variable: &Tensor) -> Option<Tensor> {
        self.map.remove(&variable.id())
    }
    /// Number of variables with a gradient.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether no variable received a gradient.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Adds `grad` to the gradient stored for `variable` (or stores it).
    pub fn accumulate(&mut self, variable: &Tensor, grad: Tensor) -> Result<()> {
        accumulate(&mut self.map, variable.id(), grad)
    }
}

fn accumulate(map: &mut HashMap<TensorId, Tensor>, id: TensorId, grad: Tensor) -> Result<()> {
    let sum = match map.remove(&id) {
        Some(existing) => existing.add(&grad)?,
        None => grad,
    };
    map.insert(id, sum);
    Ok(())
}

/// Tracked tensors reachable from `root` in post-order (inputs before the ops that use them).
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // Iterative DFS: deep graphs (long unrolled chains) must not overflow the stack.
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Track::Op(node) = t.track() {
            for input in &node.inputs {
                if input.tracks_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

impl Tensor {
    /// Back-propagates from this scalar (the loss) and returns the gradient of every variable
    /// it depends on. Gradients of a tensor used several times are summed.
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_with(|_, _| Ok(()))
    }

    /// [`backward`](Self::backward), calling `on_leaf_ready(variable, gradient)` once per
    /// variable as soon as its gradient is complete (every op that uses it has run), while the
    /// rest of the pass goes on: what PyTorch's gradient hooks give DistributedDataParallel, so
    /// it can start summing a layer's gradients over processes while earlier layers are still
    /// differentiated. In a chain of layers the last layer's variables come first. An error of
    /// the hook stops the pass and is returned. The gradients are the same, bit for bit, as
    /// `backward`'s: the ops run in the same order.
    pub fn backward_with<E: From<TensorError>>(
        &self,
        mut on_leaf_ready: impl FnMut(&Tensor, &Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<Gradients, E> {
        if self.numel() != 1 {
            return Err(TensorError::NotScalar(self.shape().clone()).into());
        }
        let _guard = NoGradGuard::new();
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        let mut leaves = Gradients::default();
        if !self.tracks_grad() {
            return Ok(leaves);
        }
        grads.insert(self.id(), Tensor::ones(self.shape().clone(), self.device())?);
        let order = topological_order(self);
        // Per variable, the uses by ops still to run: at 0 its gradient is final. (Waiting for
        // the variable's own turn in the order would often be the very end of the pass.)
        let mut pending_uses: HashMap<TensorId, usize> = HashMap::new();
        for t in &order {
            if let Track::Op(node) = t.track() {
                for input in node.inputs.iter().filter(|i| matches!(i.track(), Track::Leaf)) {
                    *pending_uses.entry(input.id()).or_default() += 1;
                }
            }
        }
        for t in order.iter().rev() {
            match t.track() {
                Track::Leaf => {
                    // Only the loss itself (a variable used by no op) is still here.
                    if let Some(grad) = grads.remove(&t.id()) {
                        on_leaf_ready(t, &grad)?;
                        leaves.accumulate(t, grad)?;
                    }
                }
                Track::None => {}
                Track::Op(node) => {
                    // A non-leaf's gradient is complete once every op that uses it has run,
                    // which reverse post-order guarantees; drop it after use to free memory
                    // early.
                    if let Some(grad) = grads.remove(&t.id()) {
                        let needs: Vec<bool> = node.inputs.iter().map(Tensor::tracks_grad).collect();
                        let ctx = BackwardCtx { inputs: &node.inputs, output: t, grad: &grad, needs: &needs };
                        let input_grads = (node.backward)(&ctx)?;
                        for ((input, g), need) in node.inputs.iter().zip(input_grads).zip(&needs) {
                            let (Some(g), true) = (g, *need) else { continue };
                            if g.shape() != input.shape() {
                                return Err(TensorError::ShapeMismatch {
                                    op: "backward: gradient vs input (internal error)",
                                    lhs: g.shape().clone(),
                                    rhs: input.shape().clone(),
                                }
                                .into());
                            }
                            accumulate(&mut grads, input.id(), g)?;
                        }
                    }
                    // An op that got no gradient still counts as run for its variables.
                    for input in node.inputs.iter().filter(|i| matches!(i.track(), Track::Leaf)) {
                        let uses = pending_uses.get_mut(&input.id()).expect("counted above");
                        *uses -= 1;
                        if *uses == 0 {
                            if let Some(grad) = grads.remove(&input.id()) {
                                on_leaf_ready(input, &grad)?;
                                leaves.accumulate(input, grad)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(leaves)
    }
}
