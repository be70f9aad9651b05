//! Matrix products: `matmul` (optionally with transposed operands, optionally batched) and
//! `linear` (`x W + b` in one kernel call, the forward of a Dense layer).

use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::shape::{MatmulSpec, Shape};
use crate::tensor::Tensor;

/// Resolves `op(a) op(b)` for rank-2 (`[m, k]`) or equally batched rank-3 operands.
fn matmul_spec(a: &Shape, b: &Shape, trans_a: bool, trans_b: bool) -> Result<(MatmulSpec, Shape)> {
    let mismatch = || TensorError::ShapeMismatch { op: "matmul", lhs: a.clone(), rhs: b.clone() };
    let (batch, ad, bd) = match (a.dims(), b.dims()) {
        ([_, _], [_, _]) => (1, a.dims(), b.dims()),
        ([ba, _, _], [bb, _, _]) if ba == bb => (*ba, &a.dims()[1..], &b.dims()[1..]),
        _ => return Err(mismatch()),
    };
    let (m, ka) = if trans_a { (ad[1], ad[0]) } else { (ad[0], ad[1]) };
    let (kb, n) = if trans_b { (bd[1], bd[0]) } else { (bd[0], bd[1]) };
    if ka != kb {
        return Err(mismatch());
    }
    let out = if a.rank() == 3 { Shape::new([batch, m, n]) } else { Shape::new([m, n]) };
    Ok((MatmulSpec { batch, m, k: ka, n, trans_a, trans_b }, out))
}

impl Tensor {
    /// Matrix product `self · rhs` of `[m, k]` and `[k, n]` (or batched `[b, m, k]`, `[b, k, n]`).
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_ex(rhs, false, false)
    }

    /// Matrix product with either operand transposed first (no copy is made).
    pub fn matmul_ex(&self, rhs: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
        self.same_device(rhs, "matmul")?;
        let (spec, out) = matmul_spec(self.shape(), rhs.shape(), trans_a, trans_b)?;
        let storage =
            self.device().call("matmul", &spec, |b| b.matmul(self.storage(), rhs.storage(), None, &spec))?;
        Ok(Tensor::from_op(storage, out, self.device(), &[self, rhs], "matmul", move |ctx| {
            let [a, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || matmul_grad_lhs(ctx.grad, b, trans_a, trans_b))?,
                grad_if(ctx.needs[1], || matmul_grad_rhs(ctx.grad, a, trans_a, trans_b))?,
            ])
        }))
    }

    /// `self · weight + bias` for `self` `[batch, in]`, `weight` `[in, out]`, `bias` `[out]`:
    /// the Dense layer's forward, with the bias added inside the matmul kernel.
    pub fn linear(&self, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        self.same_device(weight, "linear")?;
        self.same_device(bias, "linear")?;
        let (spec, out) = matmul_spec(self.shape(), weight.shape(), false, false)?;
        if self.rank() != 2 || bias.dims() != [spec.n] {
            return Err(TensorError::ShapeMismatch {
                op: "linear (bias must be [out])",
                lhs: out,
                rhs: bias.shape().clone(),
            });
        }
        let storage = self.device().call("matmul+bias", &spec, |b| {
            b.matmul(self.storage(), weight.storage(), Some(bias.storage()), &spec)
        })?;
        Ok(Tensor::from_op(storage, out, self.device(), &[self, weight, bias], "linear", |ctx| {
            let [x, w, b] = ctx.inputs else { unreachable!() };
            Ok(vec![
                grad_if(ctx.needs[0], || matmul_grad_lhs(ctx.grad, w, false, false))?,
                grad_if(ctx.needs[1], || matmul_grad_rhs(ctx.grad, x, false, false))?,
                grad_if(ctx.needs[2], || ctx.grad.sum_to_shape(b.shape()))?,
            ])
        }))
    }
}

/// Gradient of the stored `a` in `C = op(a) op(b)`.
fn matmul_grad_lhs(dc: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
    if trans_a {
        // a is stored [k, m]: d(a) = (dC op(b)^T)^T = op(b) dC^T
        b.matmul_ex(dc, trans_b, true)
    } else {
        dc.matmul_ex(b, false, !trans_b)
    }
}

/// Gradient of the stored `b` in `C = op(a) op(b)`.
fn matmul_grad_rhs(dc: &Tensor, a: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
    if trans_b {
        // b is stored [n, k]: d(b) = (op(a)^T dC)^T = dC^T op(a)
        dc.matmul_ex(a, true, trans_a)
    } else {
        a.matmul_ex(dc, !trans_a, false)
    }
}
