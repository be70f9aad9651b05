//! Reverse-mode automatic differentiation.
//!
//! Each op result that depends on a variable keeps a `Node`: its inputs and a closure that
//! maps the output's gradient to the inputs' gradients. [`Tensor::backward`] orders the graph
//! topologically from the loss and runs the closures once each, summing the gradients of a
//! tensor used more than once. Backward closures run with recording switched off, so computing
//! gradients builds no graph of its own.

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
        if self.numel() != 1 {
            return Err(TensorError::NotScalar(self.shape().clone()));
        }
        let _guard = NoGradGuard::new();
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        let mut leaves = Gradients::default();
        if !self.tracks_grad() {
            return Ok(leaves);
        }
        grads.insert(self.id(), Tensor::ones(self.shape().clone(), self.device())?);
        for t in topological_order(self).iter().rev() {
            // A non-leaf's gradient is complete once every op that uses it has run, which
            // reverse post-order guarantees; drop it after use to free memory early.
            let Some(grad) = grads.remove(&t.id()) else { continue };
            match t.track() {
                Track::Leaf => leaves.accumulate(t, grad)?,
                Track::None => {}
                Track::Op(node) => {
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
                            });
                        }
                        accumulate(&mut grads, input.id(), g)?;
                    }
                }
            }
        }
        Ok(leaves)
    }
}
