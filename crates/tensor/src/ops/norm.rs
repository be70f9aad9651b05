//! Per-channel statistics and affine maps, the pieces of a normalization layer:
//! `channel_moments` (mean and variance per channel) and `channel_affine`
//! (`x * scale[c] + shift[c]`), each one pass over memory forward and a few backward; and
//! `batch_norm`, a training step's whole batch normalization (and the ReLU after it) as one op
//! whose backward pass takes two passes over memory; and `batch_norm_relu_max_pool`, the same
//! with the 2x2 max pooling after the ReLU, whose full-size output is never formed.

use crate::autodiff::no_grad;
use crate::backend::{ChannelCoefficients, ChannelGrad, PooledGrad};
use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::shape::{ChannelSpec, Pool2dSpec, PoolKind, PoolWindow};
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
            b.channel_affine(self.storage(), scale.storage(), shift.storage(), false, &spec)
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
                        let grad = ChannelGrad::plain(ctx.grad.storage());
                        b.channel_sums(grad, x.storage(), None, &spec)
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

    /// A training step's batch normalization (Keras' `BatchNormalization` called with
    /// `training=True`) over `axis` (negative counts from the end), then `max(0, .)` when
    /// `relu`, as one op: `(x - mean) / sqrt(variance + epsilon) * gamma + beta` with each
    /// channel's mean and biased variance over the batch (no `gamma`: 1; no `beta`: 0).
    /// Differentiable in `self`, `gamma` and `beta`, through the statistics too.
    ///
    /// Returns the output and the batch's statistics as `[2, channels]` (the means, then the
    /// variances), which carry no gradient (they feed the moving averages).
    ///
    /// Its backward pass is one pass for the sums `sum(g)` and `sum(g * (x - mean))` and one
    /// for `dx = g * k + x * a + b` (per-channel `k`, `a`, `b`), the ReLU's mask computed
    /// again from `x` on the fly; composed from `channel_moments`, `channel_affine` and `relu` it
    /// takes six.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let device = Device::new(kernels_cpu::CpuBackend::new());
    /// let x = Tensor::from_slice(&[1.0, -2.0, 3.0, 4.0], [2, 2], &device)?;
    /// let (y, moments) = x.batch_norm(-1, None, None, 1e-3, false)?;
    /// assert_eq!(moments.to_vec()?, vec![2.0, 1.0, 1.0, 9.0]);
    /// let y = y.to_vec()?;
    /// assert!((y[0] + 0.9995).abs() < 1e-4 && (y[1] + 0.99994).abs() < 1e-4);
    /// # Ok::<(), tensor::TensorError>(())
    /// ```
    pub fn batch_norm(
        &self,
        axis: isize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        epsilon: f32,
        relu: bool,
    ) -> Result<(Tensor, Tensor)> {
        self.batch_norm_then(axis, gamma, beta, epsilon, relu, None)
    }

    /// [`Tensor::batch_norm`] over the last axis of an NHWC batch with its ReLU, then max
    /// pooling by `pool`: `max_pool2d(batch_norm(relu = true))`, the same values and
    /// gradients. Where the backend fuses it ([`crate::Capabilities::fused_norm_pool`]) and
    /// the windows are 2x2 with stride 2 tiling the input, one op: the forward pass writes
    /// only the pooled output, and the backward pass reads the pooled gradient through each
    /// window's winner, which the forward pass recorded; otherwise the two ops.
    ///
    /// Returns the pooled output and the batch's statistics, as [`Tensor::batch_norm`] does.
    pub fn batch_norm_relu_max_pool(
        &self,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        epsilon: f32,
        pool: PoolWindow,
    ) -> Result<(Tensor, Tensor)> {
        let spec = Pool2dSpec::new(self.shape(), pool.size, pool.strides, pool.padding)?;
        if spec.tiles_2x2() && self.device().capabilities().fused_norm_pool {
            return self.batch_norm_then(-1, gamma, beta, epsilon, true, Some(spec));
        }
        let (y, moments) = self.batch_norm(-1, gamma, beta, epsilon, true)?;
        Ok((y.pool2d(PoolKind::Max, pool.size, pool.strides, pool.padding)?, moments))
    }

    /// [`Tensor::batch_norm`], then the 2x2 max pooling `pool` (over the last axis, with the
    /// ReLU) when given.
    fn batch_norm_then(
        &self,
        axis: isize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        epsilon: f32,
        relu: bool,
        pool: Option<Pool2dSpec>,
    ) -> Result<(Tensor, Tensor)> {
        let spec = ChannelSpec::new(self.shape(), axis)?;
        let c = spec.channels;
        for (what, t) in [("gamma", gamma), ("beta", beta)] {
            let Some(t) = t else { continue };
            self.same_device(t, "batch_norm")?;
            if t.dims() != [c] {
                return Err(TensorError::InvalidArgument(format!(
                    "batch_norm: {what} has shape {}, but axis {axis} of {} has {c} channels",
                    t.shape(),
                    self.shape()
                )));
            }
        }
        let device = self.device();
        let x = self.detach();
        // The layer's arithmetic before this op existed, so the outputs are the same numbers.
        let (moments, mean, inv_std, scale, shift, relu_gate) = no_grad(|| -> Result<_> {
            let moments = x.channel_moments(axis)?;
            let (mean, variance) = (row(&moments, 0)?, row(&moments, 1)?);
            let inv_std = Tensor::ones([c], device)?.div(&variance.add_scalar(epsilon)?.sqrt()?)?;
            let scale = match gamma {
                Some(gamma) => inv_std.mul(&gamma.detach())?,
                None => inv_std.clone(),
            };
            let mut shift = mean.mul(&scale)?.neg()?;
            if let Some(beta) = beta {
                shift = shift.add(&beta.detach())?;
            }
            // The fused ReLU's mask is recomputed from `x` by the backward kernels.
            let relu_gate = relu.then(|| Tensor::concat(&[&scale, &shift], 0)).transpose()?;
            Ok((moments, mean, inv_std, scale, shift, relu_gate))
        })?;
        let (storage, winners, shape, name) = match &pool {
            None => {
                let storage = device.call("batch_norm", &format_args!("{spec:?} relu {relu}"), |b| {
                    b.channel_affine(x.storage(), scale.storage(), shift.storage(), relu, &spec)
                })?;
                (storage, None, self.shape().clone(), "batch_norm")
            }
            Some(pool) => {
                let name = "batch_norm_relu_max_pool";
                let (storage, winners) = device.call(name, &format_args!("{pool}"), |b| {
                    b.channel_affine_relu_max_pool(x.storage(), scale.storage(), shift.storage(), pool)
                })?;
                (storage, Some(winners), pool.output_shape(), name)
            }
        };
        let inputs: Vec<&Tensor> = [Some(self), gamma, beta].into_iter().flatten().collect();
        let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
        let y = Tensor::from_op(storage, shape, device, &inputs, name, move |ctx| {
            let x = &ctx.inputs[0];
            let device = x.device();
            let grad = ChannelGrad {
                dy: ctx.grad.storage(),
                relu_gate: relu_gate.as_ref().map(Tensor::storage),
                pooled: pool
                    .as_ref()
                    .zip(winners.as_ref())
                    .map(|(pool, winners)| PooledGrad { pool, winners }),
            };
            let storage = device.call(
                "channel_sums",
                &format_args!("{spec:?} relu {relu} pooled {}", pool.is_some()),
                |b| b.channel_sums(grad, x.storage(), Some(mean.storage()), &spec),
            )?;
            let sums = Tensor::from_storage(storage, [2, c], device)?;
            // sum(g * xhat) and sum(g): the gradients of gamma and beta.
            let (dgamma, dbeta) = (row(&sums, 0)?.mul(&inv_std)?, row(&sums, 1)?);
            let dx = grad_if(ctx.needs[0], || {
                let n = spec.per_channel() as f32;
                // dx = k/n (n g - sum(g) - xhat sum(g xhat)), k = gamma / std, as g k + x a + b.
                let x_scale = scale.mul(&dgamma)?.mul(&inv_std)?.mul_scalar(-1.0 / n)?;
                let shift = scale.mul(&dbeta)?.mul_scalar(-1.0 / n)?.sub(&mean.mul(&x_scale)?)?;
                let k = ChannelCoefficients {
                    g_scale: scale.storage(),
                    x_scale: x_scale.storage(),
                    shift: shift.storage(),
                };
                let storage = device.call(
                    "channel_affine_pair",
                    &format_args!("{spec:?} relu {relu} pooled {}", pool.is_some()),
                    |b| b.channel_affine_pair(grad, x.storage(), k, &spec),
                )?;
                Tensor::from_storage(storage, x.shape().clone(), device)
            })?;
            let mut grads = vec![dx];
            if has_gamma {
                grads.push(grad_if(ctx.needs[grads.len()], || Ok(dgamma.clone()))?);
            }
            if has_beta {
                grads.push(grad_if(ctx.needs[grads.len()], || Ok(dbeta.clone()))?);
            }
            Ok(grads)
        });
        Ok((y, moments))
    }
}
