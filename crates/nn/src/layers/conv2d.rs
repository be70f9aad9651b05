//! `Conv2D`: 2-D convolution over NHWC images, HWIO kernel, per-filter bias, activation.

use tensor::{Padding, PoolWindow, Tensor};

use super::weight_options::WeightOptions;
use super::{DataFormat, ForwardCtx, Layer, LayerMeta};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Initializer;

/// A 2-D convolution layer.
pub struct Conv2D {
    filters: usize,
    kernel_size: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    data_format: DataFormat,
    meta: LayerMeta,
    weights: WeightOptions,
    kernel: Option<Tensor>,
    bias: Option<Tensor>,
}

impl Conv2D {
    /// `filters` filters of `kernel_size` (height, width); stride 1, `valid` padding, linear.
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        Conv2D {
            filters,
            kernel_size,
            strides: (1, 1),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            data_format: DataFormat::ChannelsLast,
            meta: LayerMeta::default(),
            weights: WeightOptions::default(),
            kernel: None,
            bias: None,
        }
    }
    /// Sets the strides (vertical, horizontal).
    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }
    /// Sets the padding (`Valid` or `Same`).
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
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
    /// Where the channel axis is (Keras' `data_format`; default `ChannelsLast`).
    pub fn data_format(mut self, data_format: DataFormat) -> Self {
        self.data_format = data_format;
        self
    }
    meta_builders!();
    weight_option_builders!();

    /// Whether the convolution fuses with a following max pooling: a ReLU one on
    /// `channels_last` images.
    pub(crate) fn fuses_with_max_pool(&self) -> bool {
        self.activation == Activation::Relu && self.data_format == DataFormat::ChannelsLast
    }

    /// `relu(conv(x))` max-pooled over `window`, as one op that a backend may fuse
    /// ([`Tensor::conv2d_relu_max_pool`]); for a ReLU convolution (see `model/fusion.rs`).
    pub(crate) fn relu_max_pooled(&self, x: &Tensor, window: PoolWindow) -> Result<Tensor> {
        debug_assert!(self.fuses_with_max_pool());
        let kernel = self.kernel.as_ref().ok_or_else(|| Error::Build("Conv2D used before build".into()))?;
        Ok(x.conv2d_relu_max_pool(kernel, self.bias.as_ref(), self.strides, self.padding, window)?)
    }

    fn convolve(&self, x: &Tensor) -> Result<Tensor> {
        let kernel = self.kernel.as_ref().ok_or_else(|| Error::Build("Conv2D used before build".into()))?;
        let x = self.data_format.to_nhwc(x)?;
        let y = x.conv2d(kernel, self.bias.as_ref(), self.strides, self.padding)?;
        self.data_format.restore_format(&y)
    }
}

impl Layer for Conv2D {
    layer_meta!("Conv2D", "conv2d");
    fn build(&mut self, input_shape: &[usize], init: &mut Initializer) -> Result<Vec<usize>> {
        self.weights.check()?;
        let [h, w, c] = self.data_format.to_hwc("Conv2D", input_shape)?;
        let (kh, kw) = self.kernel_size;
        let (out_h, _) = tensor::shape::window_geometry(h, kh, self.strides.0, self.padding)?;
        let (out_w, _) = tensor::shape::window_geometry(w, kw, self.strides.1, self.padding)?;
        if self.filters == 0 {
            return Err(Error::Build("Conv2D needs at least one filter".into()));
        }
        let shape = [kh, kw, c, self.filters];
        self.kernel = Some(self.weights.kernel_initializer.create(init, &shape)?);
        self.bias = if self.use_bias {
            Some(self.weights.bias_initializer.create(init, &[self.filters])?)
        } else {
            None
        };
        Ok(self.data_format.shape_in_format([out_h, out_w, self.filters]))
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
        self.activation.apply(&self.convolve(x)?)
    }
    fn forward_logits(&self, x: &Tensor, _ctx: ForwardCtx) -> Option<Result<Tensor>> {
        (self.activation == Activation::Softmax).then(|| self.convolve(x))
    }
    fn config(&self) -> Option<serde_json::Value> {
        let mut config = serde_json::json!({
            "filters": self.filters,
            "kernel_size": [self.kernel_size.0, self.kernel_size.1],
            "strides": [self.strides.0, self.strides.1],
            "padding": crate::saving::padding_name(self.padding),
            "activation": self.activation.keras_name(),
            "use_bias": self.use_bias,
        });
        if self.data_format != DataFormat::ChannelsLast {
            config["data_format"] = self.data_format.keras_name().into();
        }
        self.weights.write_config(&mut config);
        Some(config)
    }
}
