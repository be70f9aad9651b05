//! 2-D convolution (NHWC input, HWIO filter, optional bias) and its two backward passes.

use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::shape::{Conv2dSpec, Padding};
use crate::tensor::Tensor;

impl Tensor {
    /// Checks a convolution's optional `bias` against its filter: on this tensor's device,
    /// shaped `[out_c]`. `op` names the op for a device error, then for a shape error.
    pub(crate) fn check_conv_bias(
        &self,
        filter: &Tensor,
        bias: Option<&Tensor>,
        out_c: usize,
        (op, bias_op): (&'static str, &'static str),
    ) -> Result<()> {
        let Some(b) = bias else { return Ok(()) };
        self.same_device(b, op)?;
        if b.dims() != [out_c] {
            return Err(TensorError::ShapeMismatch {
                op: bias_op,
                lhs: filter.shape().clone(),
                rhs: b.shape().clone(),
            });
        }
        Ok(())
    }

    /// Convolves this NHWC batch with an HWIO `filter`, adding `bias` (`[out_c]`) if given.
    /// `strides` are (vertical, horizontal); padding follows Keras (`Valid` or `Same`).
    pub fn conv2d(
        &self,
        filter: &Tensor,
        bias: Option<&Tensor>,
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Tensor> {
        self.same_device(filter, "conv2d")?;
        let spec = Conv2dSpec::new(self.shape(), filter.shape(), strides, padding)?;
        self.check_conv_bias(filter, bias, spec.out_c, ("conv2d", "conv2d (bias must be [filters])"))?;
        let bias_storage = bias.map(|b| b.storage());
        let storage = self
            .device()
            .call("conv2d", &spec, |b| b.conv2d(self.storage(), filter.storage(), bias_storage, &spec))?;
        let mut inputs = vec![self, filter];
        inputs.extend(bias);
        Ok(Tensor::from_op(storage, spec.output_shape(), self.device(), &inputs, "conv2d", move |ctx| {
            let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
            let dy = ctx.grad;
            let mut grads = vec![
                grad_if(ctx.needs[0], || {
                    let dx = x.device().call("conv2d_backward_input", &spec, |b| {
                        b.conv2d_backward_input(dy.storage(), w.storage(), &spec)
                    })?;
                    Tensor::from_storage(dx, spec.input_shape(), x.device())
                })?,
                grad_if(ctx.needs[1], || {
                    let dw = x.device().call("conv2d_backward_filter", &spec, |b| {
                        b.conv2d_backward_filter(x.storage(), dy.storage(), &spec)
                    })?;
                    Tensor::from_storage(dw, spec.filter_shape(), x.device())
                })?,
            ];
            if let Some(b) = ctx.inputs.get(2) {
                grads.push(grad_if(ctx.needs[2], || dy.sum_to_shape(b.shape()))?);
            }
            Ok(grads)
        }))
    }
}
