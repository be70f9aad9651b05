//! `Dense`: `activation(x · kernel + bias)` over the last axis.

use tensor::Tensor;

use super::weight_options::WeightOptions;
use super::{ForwardCtx, Layer, LayerMeta};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Initializer;

/// A fully connected layer.
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
    meta: LayerMeta,
    weights: WeightOptions,
    kernel: Option<Tensor>,
    bias: Option<Tensor>,
}

impl Dense {
    /// A layer of `units` outputs, linear activation, with bias.
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            meta: LayerMeta::default(),
            weights: WeightOptions::default(),
            kernel: None,
            bias: None,
        }
    }
    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// Whether to add a bias (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }
    meta_builders!();
    weight_option_builders!();

    fn linear(&self, x: &Tensor) -> Result<Tensor> {
        let kernel = self.kernel.as_ref().ok_or_else(|| Error::Build("Dense used before build".into()))?;
        let inputs = kernel.dims()[0];
        let dims = x.dims();
        // Keras applies Dense to the last axis; fold any leading axes into the batch.
        let rows = x.numel() / inputs;
        let flat = x.reshape([rows, inputs])?;
        let y = match &self.bias {
            Some(b) => flat.linear(kernel, b)?,
            None => flat.matmul(kernel)?,
        };
        let mut out = dims.to_vec();
        *out.last_mut().expect("rank >= 2") = self.units;
        Ok(y.reshape(out)?)
    }
}

impl Layer for Dense {
    layer_meta!("Dense", "dense");
    fn build(&mut self, input_shape: &[usize], init: &mut Initializer) -> Result<Vec<usize>> {
        self.weights.check()?;
        let Some(&inputs) = input_shape.last() else {
            return Err(Error::Build("Dense needs an input with at least one axis".into()));
        };
        if self.units == 0 || inputs == 0 {
            return Err(Error::Build(format!("Dense of {} units on input {input_shape:?}", self.units)));
        }
        self.kernel = Some(self.weights.kernel_initializer.create(init, &[inputs, self.units])?);
        self.bias = if self.use_bias {
            Some(self.weights.bias_initializer.create(init, &[self.units])?)
        } else {
            None
        };
        let mut out = input_shape.to_vec();
        *out.last_mut().expect("checked non-empty") = self.units;
        Ok(out)
    }
    fn regularization_loss(&self) -> Result<Option<Tensor>> {
        self.weights.penalty(self.kernel.as_ref(), self.bias.as_ref())
    }
    fn params(&self) -> Vec<&Tensor> {
        self.kernel.iter().chain(self.bias.iter()).collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.kernel.iter_mut().chain(self.bias.iter_mut()).collect()
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        self.activation.apply(&self.linear(x)?)
    }
    fn forward_logits(&self, x: &Tensor, _ctx: ForwardCtx) -> Option<Result<Tensor>> {
        (self.activation == Activation::Softmax).then(|| self.linear(x))
    }
    fn config(&self) -> Option<serde_json::Value> {
        let mut config = serde_json::json!({
            "units": self.units,
            "activation": self.activation.keras_name(),
            "use_bias": self.use_bias,
        });
        self.weights.write_config(&mut config);
        Some(config)
    }
}
