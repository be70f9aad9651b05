//! Reductions (`sum`, `mean`, `max`, `argmax`) and their adjoint, broadcasting
//! (`broadcast_to`, `sum_to_shape`).

use crate::backend::ReduceOp;
use crate::error::{Result, TensorError};
use crate::shape::{broadcast, ReduceSpec, Shape};
use crate::tensor::Tensor;

impl Tensor {
    /// Reduces the contiguous axes `axes` (kept as size 1), recording the backward.
    fn reduce_axes(&self, op: ReduceOp, axes: std::ops::Range<usize>) -> Result<Tensor> {
        let dims = self.dims();
        let spec = ReduceSpec {
            outer: dims[..axes.start].iter().product(),
            reduced: dims[axes.clone()].iter().product(),
            inner: dims[axes.end..].iter().product(),
        };
        let mut out_dims = dims.to_vec();
        out_dims[axes].iter_mut().for_each(|d| *d = 1);
        if spec.reduced == 1 {
            // Nothing to reduce: the same values, reshaped (a max is still a constant).
            let same = if op == ReduceOp::Max { self.detach() } else { self.clone() };
            return same.reshape(out_dims);
        }
        let storage = self
            .device()
            .call("reduce", &format_args!("{op:?} {spec}"), |b| b.reduce(op, self.storage(), &spec))?;
        if op == ReduceOp::Max {
            return Tensor::from_storage(storage, out_dims, self.device());
        }
        Ok(Tensor::from_op(storage, out_dims, self.device(), &[self], "sum", |ctx| {
            Ok(vec![Some(ctx.grad.broadcast_to(ctx.inputs[0].shape())?)])
        }))
    }

    /// Sum of all elements, shape `[]`.
    pub fn sum_all(&self) -> Result<Tensor> {
        let all = self.reshape([self.numel()])?;
        all.reduce_axes(ReduceOp::Sum, 0..1)?.reshape(Shape::new([]))
    }

    /// Mean of all elements, shape `[]`.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_all()?.mul_scalar(1.0 / self.numel() as f32)
    }

    /// Sum along `axis` (negative counts from the end); `keepdim` keeps it as size 1.
    pub fn sum_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let axis = self.shape().axis(axis)?;
        let kept = self.reduce_axes(ReduceOp::Sum, axis..axis + 1)?;
        if keepdim {
            Ok(kept)
        } else {
            kept.reshape(drop_axis(self.dims(), axis))
        }
    }

    /// Mean along `axis`.
    pub fn mean_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let len = self.dims()[self.shape().axis(axis)?];
        self.sum_axis(axis, keepdim)?.mul_scalar(1.0 / len as f32)
    }

    /// Largest value along `axis` (a constant: no gradient flows through it).
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let axis = self.shape().axis(axis)?;
        let kept = self.reduce_axes(ReduceOp::Max, axis..axis + 1)?;
        if keepdim {
            Ok(kept)
        } else {
            kept.reshape(drop_axis(self.dims(), axis))
        }
    }

    /// Index of the largest value along the last axis (first on ties), as f32, with that axis
    /// removed. A constant: no gradient.
    pub fn argmax(&self) -> Result<Tensor> {
        if self.rank() == 0 {
            return Err(TensorError::InvalidAxis { axis: -1, shape: self.shape().clone() });
        }
        let (rows, cols) = self.shape().rows_cols();
        let storage = self
            .device()
            .call("argmax", &format_args!("{rows}x{cols}"), |b| b.argmax(self.storage(), rows, cols))?;
        Tensor::from_storage(storage, drop_axis(self.dims(), self.rank() - 1), self.device())
    }

    /// Repeats this tensor along broadcast axes to `shape` (NumPy rules).
    pub fn broadcast_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let (out, spec) = broadcast(self.shape(), shape)?;
        if &out != shape {
            return Err(TensorError::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape().clone(),
                rhs: shape.clone(),
            });
        }
        let storage = self.device().call("expand", &spec, |b| b.expand(self.storage(), &spec))?;
        Ok(Tensor::from_op(storage, out, self.device(), &[self], "broadcast_to", |ctx| {
            Ok(vec![Some(ctx.grad.sum_to_shape(ctx.inputs[0].shape())?)])
        }))
    }

    /// Sums over the axes along which `target` was broadcast to this tensor's shape: the
    /// gradient of [`Tensor::broadcast_to`].
    pub fn sum_to_shape(&self, target: &Shape) -> Result<Tensor> {
        if self.shape() == target {
            return Ok(self.clone());
        }
        let rank = self.rank();
        if target.rank() > rank {
            return Err(TensorError::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape().clone(),
                rhs: target.clone(),
            });
        }
        let mut padded = vec![1; rank - target.rank()];
        padded.extend_from_slice(target.dims());
        if padded.iter().zip(self.dims()).any(|(&t, &d)| t != 1 && t != d) {
            return Err(TensorError::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape().clone(),
                rhs: target.clone(),
            });
        }
        let reduced: Vec<bool> = padded.iter().zip(self.dims()).map(|(&t, &d)| t == 1 && d != 1).collect();
        // One reduction per run of adjacent broadcast axes.
        let mut t = self.clone();
        let mut i = 0;
        while i < rank {
            if !reduced[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < rank && reduced[i] {
                i += 1;
            }
            t = t.reduce_axes(ReduceOp::Sum, start..i)?;
        }
        t.reshape(target.clone())
    }
}

fn drop_axis(dims: &[usize], axis: usize) -> Vec<usize> {
    let mut d = dims.to_vec();
    d.remove(axis);
    d
}
