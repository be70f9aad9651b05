//! Convolution followed by max pooling, as one differentiable op, so that a backend can fuse
//! them (see [`crate::ConvOps::conv2d_max_pool`]).

use crate::backend::ConvPoolBackward;
use crate::error::Result;
use crate::shape::{ConvPoolSpec, Padding, PoolWindow, Shape};
use crate::tensor::Tensor;

impl Tensor {
    /// `max_pool(conv2d(x, filter) + bias)`: the same values and gradients as
    /// [`Tensor::conv2d`] followed by [`Tensor::max_pool2d`], in one op that a backend may run
    /// fused. See [`Tensor::conv2d_relu_max_pool`] for the version with a ReLU.
    pub fn conv2d_max_pool(
        &self,
        filter: &Tensor,
        bias: Option<&Tensor>,
        strides: (usize, usize),
        padding: Padding,
        pool: PoolWindow,
    ) -> Result<Tensor> {
        let spec = ConvPoolSpec::new(self.shape(), filter.shape(), strides, padding, pool)?;
        self.conv_pool(filter, bias, spec)
    }

    /// `relu(max_pool(conv2d(x, filter) + bias))`, i.e. a `Conv2D(activation="relu")`
    /// followed by `MaxPooling2D` (max pooling commutes with ReLU), in one op that a backend
    /// may run fused: the same values and gradients as [`Tensor::conv2d`], [`Tensor::relu`]
    /// and [`Tensor::max_pool2d`].
    pub fn conv2d_relu_max_pool(
        &self,
        filter: &Tensor,
        bias: Option<&Tensor>,
        strides: (usize, usize),
        padding: Padding,
        pool: PoolWindow,
    ) -> Result<Tensor> {
        let spec = ConvPoolSpec::new(self.shape(), filter.shape(), strides, padding, pool)?;
        self.conv_pool(filter, bias, spec.with_relu())
    }

    fn conv_pool(&self, filter: &Tensor, bias: Option<&Tensor>, spec: ConvPoolSpec) -> Result<Tensor> {
        self.same_device(filter, "conv2d_max_pool")?;
        let ops = ("conv2d_max_pool", "conv2d_max_pool (bias must be [filters])");
        self.check_conv_bias(filter, bias, spec.conv.out_c, ops)?;
        let op = if spec.relu { "conv2d_relu_max_pool" } else { "conv2d_max_pool" };
        let bias_storage = bias.map(|b| b.storage());
        let (pooled, saved) = self
            .device()
            .call(op, &spec, |b| b.conv2d_max_pool(self.storage(), filter.storage(), bias_storage, &spec))?;
        let mut inputs = vec![self, filter];
        inputs.extend(bias);
        let shape = spec.pool.output_shape();
        Ok(Tensor::from_op(pooled, shape, self.device(), &inputs, "conv2d_max_pool", move |ctx| {
            let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
            let needs = [ctx.needs[0], ctx.needs[1], ctx.needs.get(2).copied().unwrap_or(false)];
            let args = ConvPoolBackward {
                x: x.storage(),
                filter: w.storage(),
                pooled: ctx.output.storage(),
                saved: &saved,
                dpooled: ctx.grad.storage(),
                spec: &spec,
                needs,
            };
            let op = if spec.relu { "conv2d_relu_max_pool_backward" } else { "conv2d_max_pool_backward" };
            let grads = x.device().call(op, &spec, |b| b.conv2d_max_pool_backward(&args))?;
            let wrap = |storage: Option<_>, shape: Shape| {
                storage.map(|s| Tensor::from_storage(s, shape, x.device())).transpose()
            };
            let mut out = vec![
                wrap(grads.input, spec.conv.input_shape())?,
                wrap(grads.filter, spec.conv.filter_shape())?,
            ];
            if ctx.inputs.len() > 2 {
                out.push(wrap(grads.bias, Shape::new([spec.conv.out_c]))?);
            }
            Ok(out)
        }))
    }
}
