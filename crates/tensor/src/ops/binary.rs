//! Broadcasting elementwise arithmetic: `add`, `sub`, `mul`, `div`, `maximum`, `minimum`,
//! their scalar forms, and comparisons. Backward reduces each gradient back to its input's
//! shape with [`Tensor::sum_to_shape`].

use crate::backend::{BinaryOp, UnaryOp};
use crate::error::{Result, TensorError};
use crate::shape::broadcast;
use crate::tensor::Tensor;

impl Tensor {
    /// Runs a binary kernel with broadcasting and records `backward` for it.
    fn binary_op(
        &self,
        rhs: &Tensor,
        op: BinaryOp,
        name: &'static str,
        backward: impl crate::autodiff::BackwardFn + 'static,
    ) -> Result<Tensor> {
        self.same_device(rhs, name)?;
        let (shape, spec) = broadcast(self.shape(), rhs.shape())?;
        let storage = self.device().call("binary", &format_args!("{op:?} {spec}"), |b| {
            b.binary(op, self.storage(), rhs.storage(), &spec)
        })?;
        Ok(Tensor::from_op(storage, shape, self.device(), &[self, rhs], name, backward))
    }

    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Add, "add", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || ctx.grad.sum_to_shape(a.shape()))?,
                grad_if(ctx.needs[1], || ctx.grad.sum_to_shape(b.shape()))?,
            ])
        })
    }

    /// `self + alpha * rhs` for two tensors of the same shape, in one kernel (an optimizer's
    /// update step). The same values as `self.add(&rhs.mul_scalar(alpha)?)`.
    pub fn add_scaled(&self, rhs: &Tensor, alpha: f32) -> Result<Tensor> {
        self.same_device(rhs, "add_scaled")?;
        if self.shape() != rhs.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "add_scaled (shapes must be equal)",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        let storage = self
            .device()
            .call("scaled_add", &self.numel(), |b| b.scaled_add(self.storage(), rhs.storage(), alpha))?;
        Ok(Tensor::from_op(
            storage,
            self.shape().clone(),
            self.device(),
            &[self, rhs],
            "add_scaled",
            move |ctx| {
                Ok(vec![
                    grad_if(ctx.needs[0], || Ok(ctx.grad.clone()))?,
                    grad_if(ctx.needs[1], || ctx.grad.mul_scalar(alpha))?,
                ])
            },
        ))
    }

    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Sub, "sub", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || ctx.grad.sum_to_shape(a.shape()))?,
                grad_if(ctx.needs[1], || ctx.grad.neg()?.sum_to_shape(b.shape()))?,
            ])
        })
    }

    /// `self * rhs` elementwise, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Mul, "mul", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || ctx.grad.mul(b)?.sum_to_shape(a.shape()))?,
                grad_if(ctx.needs[1], || ctx.grad.mul(a)?.sum_to_shape(b.shape()))?,
            ])
        })
    }

    /// `self / rhs` elementwise, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Div, "div", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || ctx.grad.div(b)?.sum_to_shape(a.shape()))?,
                // d(a/b)/db = -(a/b)/b
                grad_if(ctx.needs[1], || ctx.grad.mul(ctx.output)?.div(b)?.neg()?.sum_to_shape(b.shape()))?,
            ])
        })
    }

    /// Elementwise maximum; on ties the gradient goes to `self`.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Maximum, "maximum", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            let a_wins = a.greater_equal(b)?;
            select_grads(ctx.grad, &a_wins, a, b, ctx.needs)
        })
    }

    /// Elementwise minimum; on ties the gradient goes to `self`.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary_op(rhs, BinaryOp::Minimum, "minimum", |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            let a_wins = b.greater_equal(a)?;
            select_grads(ctx.grad, &a_wins, a, b, ctx.needs)
        })
    }

    /// `1.0` where `self >= rhs`, else `0.0` (a constant: no gradient).
    pub fn greater_equal(&self, rhs: &Tensor) -> Result<Tensor> {
        self.comparison(rhs, BinaryOp::GreaterEqual)
    }

    /// `1.0` where `self == rhs`, else `0.0` (a constant: no gradient).
    pub fn equal(&self, rhs: &Tensor) -> Result<Tensor> {
        self.comparison(rhs, BinaryOp::Equal)
    }

    fn comparison(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.same_device(rhs, "comparison")?;
        let (shape, spec) = broadcast(self.shape(), rhs.shape())?;
        let storage = self.device().call("binary", &format_args!("{op:?} {spec}"), |b| {
            b.binary(op, self.storage(), rhs.storage(), &spec)
        })?;
        Tensor::from_storage(storage, shape, self.device())
    }

    /// `self * scale + shift`.
    pub fn affine(&self, scale: f32, shift: f32) -> Result<Tensor> {
        if scale == 1.0 && shift == 0.0 {
            // The identity (a mean over an axis of one): no pass over memory.
            return Ok(self.clone());
        }
        self.unary(UnaryOp::Affine { scale, shift })
    }

    /// `self + value`.
    pub fn add_scalar(&self, value: f32) -> Result<Tensor> {
        self.affine(1.0, value)
    }

    /// `self * value`.
    pub fn mul_scalar(&self, value: f32) -> Result<Tensor> {
        self.affine(value, 0.0)
    }
}

/// Gradients of a two-way selection: `grad` where `a_wins`, else to `b`.
fn select_grads(
    grad: &Tensor,
    a_wins: &Tensor,
    a: &Tensor,
    b: &Tensor,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let to_a = grad.mul(a_wins)?;
    Ok(vec![
        grad_if(needs[0], || to_a.sum_to_shape(a.shape()))?,
        grad_if(needs[1], || grad.sub(&to_a)?.sum_to_shape(b.shape()))?,
    ])
}

/// Computes a gradient only when it is needed.
pub(crate) fn grad_if(need: bool, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    if need {
        f().map(Some)
    } else {
        Ok(None)
    }
}
