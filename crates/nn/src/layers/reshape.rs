//! Layers without weights that reshape or transform: `Flatten`, `Reshape`, `Activation`.

use tensor::Tensor;

use super::{ForwardCtx, Layer};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Flattens each sample to one axis.
#[derive(Default)]
pub struct Flatten {
    name: Option<String>,
    input_shape: Option<Vec<usize>>,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Declares the per-sample input shape.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }
    /// Names the layer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn base_name(&self) -> &'static str {
        "flatten"
    }
    fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
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
    name: Option<String>,
    input_shape: Option<Vec<usize>>,
}

impl Reshape {
    /// Reshapes each sample to `target` (without the batch axis).
    pub fn new(target: impl Into<Vec<usize>>) -> Self {
        Reshape { target: target.into(), name: None, input_shape: None }
    }
    /// Declares the per-sample input shape.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }
    /// Names the layer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn base_name(&self) -> &'static str {
        "reshape"
    }
    fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
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
    input_shape: Option<Vec<usize>>,
    name: Option<String>,
}

impl ActivationLayer {
    /// A layer applying `activation`.
    pub fn new(activation: Activation) -> Self {
        ActivationLayer { activation, input_shape: None, name: None }
    }
    /// Declares the per-sample input shape.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self
    }
    /// Names the layer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Layer for ActivationLayer {
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn base_name(&self) -> &'static str {
        "activation"
    }
    fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
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
