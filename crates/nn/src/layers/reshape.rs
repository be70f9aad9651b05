//! Layers without weights that reshape or transform: `Flatten`, `Reshape`, `Activation`.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Flattens each sample to one axis.
#[derive(Default)]
pub struct Flatten {
    meta: LayerMeta,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
    meta_builders!();
}

impl Layer for Flatten {
    layer_meta!("Flatten", "flatten");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        Ok(vec![input_shape.iter().product()])
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        Ok(x.flatten()?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }
}

/// Reshapes each sample to a target shape of the same size.
pub struct Reshape {
    target: Vec<usize>,
    meta: LayerMeta,
}

impl Reshape {
    /// Reshapes each sample to `target` (without the batch axis).
    pub fn new(target: impl Into<Vec<usize>>) -> Self {
        Reshape { target: target.into(), meta: LayerMeta::default() }
    }
    meta_builders!();
}

impl Layer for Reshape {
    layer_meta!("Reshape", "reshape");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        let (from, to) = (input_shape.iter().product::<usize>(), self.target.iter().product::<usize>());
        if from != to {
            return Err(Error::Build(format!(
                "Reshape cannot turn {input_shape:?} ({from} values) into {:?} ({to} values)",
                self.target
            )));
        }
        Ok(self.target.clone())
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        let mut dims = vec![x.dims()[0]];
        dims.extend_from_slice(&self.target);
        Ok(x.reshape(dims)?)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "target_shape": self.target }))
    }
}

/// Applies an activation function.
pub struct ActivationLayer {
    activation: Activation,
    meta: LayerMeta,
}

impl ActivationLayer {
    /// A layer applying `activation`.
    pub fn new(activation: Activation) -> Self {
        ActivationLayer { activation, meta: LayerMeta::default() }
    }
    meta_builders!();

    /// Whether it applies the plain ReLU, `max(x, 0)`.
    pub(crate) fn is_relu(&self) -> bool {
        self.activation == Activation::Relu
    }
}

impl Layer for ActivationLayer {
    layer_meta!("Activation", "activation");
    fn build(&mut self, input_shape: &[usize], _init: &mut Initializer) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        self.activation.apply(x)
    }
    fn forward_logits(&self, x: &Tensor, _ctx: ForwardCtx) -> Option<Result<Tensor>> {
        (self.activation == Activation::Softmax).then(|| Ok(x.clone()))
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "activation": self.activation.keras_name() }))
    }
}
