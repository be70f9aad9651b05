//! `Dense`: `activation(x · kernel + bias)` over the last axis.

use tensor::Tensor;

use super::{ForwardCtx, Layer, LayerMeta};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::initializers::WeightInit;

/// A fully connected layer.
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
    meta: LayerMeta,
    kernel_initializer: WeightInit,
    bias_initializer: WeightInit,
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
            kernel_initializer: WeightInit::GlorotUniform,
            bias_initializer: WeightInit::Zeros,
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
    /// How the kernel is initialised (Keras' `kernel_initializer`; default
    /// [`WeightInit::GlorotUniform`]).
    pub fn kernel_initializer(mut self, init: WeightInit) -> Self {
        self.kernel_initializer = init;
        self
    }
    /// How the bias is initialised (Keras' `bias_initializer`; default [`WeightInit::Zeros`]).
    pub fn bias_initializer(mut self, init: WeightInit) -> Self {
        self.bias_initializer = init;
        self
    }

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
        let Some(&inputs) = input_shape.last() else {
            return Err(Error::Build("Dense needs an input with at least one axis".into()));
        };
        if self.units == 0 || inputs == 0 {
            return Err(Error::Build(format!("Dense of {} units on input {input_shape:?}", self.units)));
        }
        self.kernel = Some(self.kernel_initializer.create(init, &[inputs, self.units])?);
        self.bias =
            if self.use_bias { Some(self.bias_initializer.create(init, &[self.units])?) } else { None };
        let mut out = input_shape.to_vec();
        *out.last_mut().expect("checked non-empty") = self.units;
        Ok(out)
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
        // Keras writes both always; here only one that is not the default, so the configs
        // (and files) of models with the defaults are as they have always been.
        if self.kernel_initializer != WeightInit::GlorotUniform {
            config["kernel_initializer"] = self.kernel_initializer.to_json();
        }
        if self.bias_initializer != WeightInit::Zeros {
            config["bias_initializer"] = self.bias_initializer.to_json();
        }
        Some(config)
    }
}
