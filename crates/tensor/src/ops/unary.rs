//! Elementwise functions of one tensor (activations, exp/log, affine maps). Every one shares a
//! backward: the backend's `unary_backward`, which knows each derivative.

use crate::backend::UnaryOp;
use crate::error::Result;
use crate::tensor::Tensor;

impl Tensor {
    /// Applies `op` elementwise.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        let storage = self
            .device()
            .call("unary", &format_args!("{op:?} {}", self.numel()), |b| b.unary(op, self.storage()))?;
        Ok(Tensor::from_op(storage, self.shape().clone(), self.device(), &[self], "unary", move |ctx| {
            let x = &ctx.inputs[0];
            let dx = x.device().call("unary_backward", &format_args!("{op:?} {}", x.numel()), |b| {
                b.unary_backward(op, x.storage(), ctx.output.storage(), ctx.grad.storage())
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, x.shape().clone(), x.device())?)])
        }))
    }

    /// `-self`
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    /// `max(self, 0)`
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    /// `ln(1 + exp(self))`, Keras' `softplus`.
    pub fn softplus(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Softplus)
    }
    /// `self` where it is at least 0, else `negative_slope * self` (Keras' `leaky_relu`).
    pub fn leaky_relu(&self, negative_slope: f32) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu { negative_slope })
    }
    /// `self` where positive, else `alpha * (exp(self) - 1)` (Keras' `elu`).
    pub fn elu(&self, alpha: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Elu { alpha })
    }
    /// Keras' `gelu`: exact (through `erf`), or with `approximate` its tanh form.
    pub fn gelu(&self, approximate: bool) -> Result<Tensor> {
        self.unary(if approximate { UnaryOp::GeluTanh } else { UnaryOp::Gelu })
    }
    /// `self * sigmoid(self)` (Keras' `silu` / `swish`).
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// `exp(self)`
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    /// `self * self`
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    /// Absolute value.
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    /// Clamps into `[min, max]`; the gradient passes only strictly inside.
    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp { min, max })
    }
}
