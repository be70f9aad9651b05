//! Per-channel statistics and affine maps, the pieces of a normalization layer:
//! `channel_moments` (mean and variance per channel) and `channel_affine`
//! (`x * scale[c] + shift[c]`), each one pass over memory forward and a few backward.

use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::shape::ChannelSpec;
use crate::tensor::Tensor;

/// Row `row` of a `[2, channels]` tensor, as `[channels]`.
fn row(t: &Tensor, row: usize) -> Result<Tensor> {
    let c = t.dims()[1];
    t.narrow(0, row, 1)?.reshape([c])
}

impl Tensor {
    /// Each channel's mean and biased variance (divided by the count) over every axis but
    /// `axis` (negative counts from the end), as `[2, channels]`: the means, then the
    /// variances. Differentiable.
    pub fn channel_moments(&self, axis: isize) -> Result<Tensor> {
        let spec = ChannelSpec::new(self.shape(), axis)?;
        if spec.per_channel() == 0 {
            return Err(TensorError::InvalidArgument(format!(
                "channel_moments over axis {axis} of shape {}: no elements per channel",
                self.shape()
            )));
        }
        let storage = self.device().call("channel_moments", &format_args!("{spec:?}"), |b| {
            b.channel_moments(self.storage(), &spec)
        })?;
        Ok(Tensor::from_op(
            storage,
            [2, spec.channels],
            self.device(),
            &[self],
            "channel_moments",
            move |ctx| {
                // d/dx of (mean, var): dmean / n + dvar * 2 (x - mean) / n, as one channel affine.
                let n = spec.per_channel() as f32;
                let (dmean, dvar, mean) = (row(ctx.grad, 0)?, row(ctx.grad, 1)?, row(ctx.output, 0)?);
                let scale = dvar.mul_scalar(2.0 / n)?;
                let shift = dmean.mul_scalar(1.0 / n)?.sub(&scale.mul(&mean)?)?;
                Ok(vec![Some(ctx.inputs[0].channel_affine(axis, &scale, &shift)?)])
            },
        ))
    }

    /// `self * scale[c] + shift[c]` with `c` the index along `axis` (negative counts from the
    /// end); `scale` and `shift` are `[channels]`. Differentiable in all three.
    pub fn channel_affine(&self, axis: isize, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        self.same_device(scale, "channel_affine")?;
        self.same_device(shift, "channel_affine")?;
        let spec = ChannelSpec::new(self.shape(), axis)?;
        for (what, t) in [("scale", scale), ("shift", shift)] {
            if t.dims() != [spec.channels] {
                return Err(TensorError::InvalidArgument(format!(
                    "channel_affine: {what} has shape {}, but axis {axis} of {} has {} channels",
                    t.shape(),
                    self.shape(),
                    spec.channels
                )));
            }
        }
        let storage = self.device().call("channel_affine", &format_args!("{spec:?}"), |b| {
            b.channel_affine(self.storage(), scale.storage(), shift.storage(), &spec)
        })?;
        let inputs = [self, scale, shift];
        Ok(Tensor::from_op(
            storage,
            self.shape().clone(),
            self.device(),
            &inputs,
            "channel_affine",
            move |ctx| {
                let [x, scale, _] = ctx.inputs else { unreachable!() };
                let dx = grad_if(ctx.needs[0], || {
                    let zeros = Tensor::zeros([spec.channels], x.device())?;
                    ctx.grad.channel_affine(axis, scale, &zeros)
                })?;
                let sums = if ctx.needs[1] || ctx.needs[2] {
                    let storage = x.device().call("channel_sums", &format_args!("{spec:?}"), |b| {
                        b.channel_sums(ctx.grad.storage(), x.storage(), &spec)
                    })?;
                    Some(Tensor::from_storage(storage, [2, spec.channels], x.device())?)
                } else {
                    None
                };
                let pick = |need: bool, r: usize| {
                    grad_if(need, || row(sums.as_ref().expect("computed when needed"), r))
                };
                Ok(vec![dx, pick(ctx.needs[1], 0)?, pick(ctx.needs[2], 1)?])
            },
        ))
    }
}
