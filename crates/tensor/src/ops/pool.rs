//! 2-D pooling (max, average, L2-norm) over NHWC input.

use crate::error::Result;
use crate::shape::{Padding, Pool2dSpec, PoolKind};
use crate::tensor::Tensor;

impl Tensor {
    /// Pools windows of `pool` (height, width) moved by `strides` over this NHWC batch.
    pub fn pool2d(
        &self,
        kind: PoolKind,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Tensor> {
        let spec = Pool2dSpec::new(self.shape(), pool, strides, padding)?;
        let storage = self
            .device()
            .call("pool2d", &format_args!("{kind:?} {spec}"), |b| b.pool2d(kind, self.storage(), &spec))?;
        Ok(Tensor::from_op(storage, spec.output_shape(), self.device(), &[self], "pool2d", move |ctx| {
            let x = &ctx.inputs[0];
            let dx = x.device().call("pool2d_backward", &format_args!("{kind:?} {spec}"), |b| {
                b.pool2d_backward(kind, x.storage(), ctx.output.storage(), ctx.grad.storage(), &spec)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, x.shape().clone(), x.device())?)])
        }))
    }

    /// Max pooling.
    pub fn max_pool2d(
        &self,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Tensor> {
        self.pool2d(PoolKind::Max, pool, strides, padding)
    }

    /// Average pooling (padding excluded from each window's count).
    pub fn avg_pool2d(
        &self,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Tensor> {
        self.pool2d(PoolKind::Average, pool, strides, padding)
    }

    /// L2-norm pooling: `sqrt(sum(x^2))` of each window.
    pub fn l2_pool2d(
        &self,
        pool: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
    ) -> Result<Tensor> {
        self.pool2d(PoolKind::L2, pool, strides, padding)
    }
}
