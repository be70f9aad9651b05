//! Ops that move data without arithmetic: `reshape`, `flatten`, `concat`, `narrow`, and
//! `dropout` (a multiplication by a counter-based random mask).

use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::shape::{ConcatSpec, NarrowSpec, PermuteSpec, Shape};
use crate::tensor::Tensor;

impl Tensor {
    /// The same data with another shape of the same size (no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(TensorError::ShapeMismatch { op: "reshape", lhs: self.shape().clone(), rhs: shape });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        Ok(Tensor::from_op(self.storage().clone(), shape, self.device(), &[self], "reshape", |ctx| {
            Ok(vec![Some(ctx.grad.reshape(ctx.inputs[0].shape().clone())?)])
        }))
    }

    /// Rows `indices` of the first axis, stacked in that order: `[n, ...] -> [k, ...]`. A data
    /// op for batching (the result records no gradient), so a whole data set can stay on the
    /// device while each step sends only its indices.
    pub fn gather_rows(&self, indices: &[u32]) -> Result<Tensor> {
        let Some((&rows, rest)) = self.dims().split_first() else {
            return Err(TensorError::InvalidAxis { axis: 0, shape: self.shape().clone() });
        };
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= rows) {
            return Err(TensorError::InvalidArgument(format!(
                "gather_rows: row {bad} is outside the {rows} rows of shape {}",
                self.shape()
            )));
        }
        let row_len: usize = rest.iter().product();
        let mut dims = self.dims().to_vec();
        dims[0] = indices.len();
        if row_len == 0 || indices.is_empty() {
            return Tensor::zeros(dims, self.device());
        }
        let storage =
            self.device().call("gather_rows", &format_args!("{}x{row_len}", indices.len()), |b| {
                b.gather_rows(self.storage(), row_len, indices)
            })?;
        Tensor::from_storage(storage, dims, self.device())
    }

    /// Keeps the first (batch) axis and flattens the rest: `[n, ...] -> [n, prod(...)]`.
    pub fn flatten(&self) -> Result<Tensor> {
        let Some((&n, rest)) = self.dims().split_first() else {
            return Err(TensorError::InvalidAxis { axis: 0, shape: self.shape().clone() });
        };
        self.reshape([n, rest.iter().product()])
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    pub fn concat(parts: &[&Tensor], axis: isize) -> Result<Tensor> {
        let Some(first) = parts.first() else {
            return Err(TensorError::InvalidArgument("concat of no tensors".into()));
        };
        let axis = first.shape().axis(axis)?;
        let mut out_dims = first.dims().to_vec();
        out_dims[axis] = 0;
        let mut part_inner = Vec::with_capacity(parts.len());
        let mut lengths = Vec::with_capacity(parts.len());
        for p in parts {
            first.same_device(p, "concat")?;
            let compatible = p.rank() == first.rank()
                && (0..p.rank()).all(|i| i == axis || p.dims()[i] == first.dims()[i]);
            if !compatible {
                return Err(TensorError::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape().clone(),
                    rhs: p.shape().clone(),
                });
            }
            let (_, len, inner) = p.shape().split_at_axis(axis);
            part_inner.push(len * inner);
            lengths.push(len);
            out_dims[axis] += len;
        }
        let (outer, _, _) = first.shape().split_at_axis(axis);
        let storages: Vec<_> = parts.iter().map(|p| p.storage()).collect();
        let spec = ConcatSpec { outer, part_inner };
        let storage = first.device().call("concat", &spec, |b| b.concat(&storages, &spec))?;
        Ok(Tensor::from_op(storage, out_dims, first.device(), parts, "concat", move |ctx| {
            let mut start = 0;
            let mut grads = Vec::with_capacity(lengths.len());
            for (i, &len) in lengths.iter().enumerate() {
                grads.push(grad_if(ctx.needs[i], || ctx.grad.narrow(axis as isize, start, len))?);
                start += len;
            }
            Ok(grads)
        }))
    }

    /// The tensor with its axes reordered: output axis `i` is axis `axes[i]` (NumPy's
    /// `transpose(axes)`; `[0, 2, 3, 1]` turns NCHW images into NHWC). Differentiable.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        let spec = PermuteSpec::new(self.shape(), axes)?;
        if axes.iter().enumerate().all(|(i, &a)| i == a) {
            return Ok(self.clone());
        }
        let storage =
            self.device().call("permute", &format_args!("{spec:?}"), |b| b.permute(self.storage(), &spec))?;
        let out_dims = spec.out_dims.clone();
        let axes = axes.to_vec();
        Ok(Tensor::from_op(storage, out_dims, self.device(), &[self], "permute", move |ctx| {
            let mut inverse = vec![0; axes.len()];
            for (i, &a) in axes.iter().enumerate() {
                inverse[a] = i;
            }
            Ok(vec![Some(ctx.grad.permute(&inverse)?)])
        }))
    }

    /// Elements `start..start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let axis = self.shape().axis(axis)?;
        let (outer, axis_len, inner) = self.shape().split_at_axis(axis);
        if start + len > axis_len {
            return Err(TensorError::InvalidArgument(format!(
                "narrow {start}..{} is outside axis {axis} of shape {}",
                start + len,
                self.shape()
            )));
        }
        let spec = NarrowSpec { outer, inner: axis_len * inner, offset: start * inner, len: len * inner };
        let storage = self.device().call("narrow", &spec, |b| b.narrow(self.storage(), &spec))?;
        let mut out_dims = self.dims().to_vec();
        out_dims[axis] = len;
        Ok(Tensor::from_op(storage, out_dims, self.device(), &[self], "narrow", move |ctx| {
            // Pad the gradient back with zeros on both sides of the slice.
            let x = &ctx.inputs[0];
            let zeros = |n: usize| {
                let mut d = x.dims().to_vec();
                d[axis] = n;
                Tensor::zeros(d, x.device())
            };
            let mut pieces = Vec::new();
            if start > 0 {
                pieces.push(zeros(start)?);
            }
            pieces.push(ctx.grad.clone());
            if start + len < axis_len {
                pieces.push(zeros(axis_len - start - len)?);
            }
            let refs: Vec<&Tensor> = pieces.iter().collect();
            Ok(vec![Some(Tensor::concat(&refs, axis as isize)?)])
        }))
    }

    /// Inverted dropout for training: zeroes each element with probability `rate` and scales
    /// the rest by `1 / (1 - rate)`. The mask is a pure function of `seed` (see
    /// [`crate::random`]), so every backend drops the same elements.
    pub fn dropout(&self, rate: f32, seed: u64) -> Result<Tensor> {
        if !(0.0..1.0).contains(&rate) {
            return Err(TensorError::InvalidArgument(format!("dropout rate {rate} must be in [0, 1)")));
        }
        if rate == 0.0 {
            return Ok(self.clone());
        }
        let mask = self
            .device()
            .call("dropout_mask", &self.numel(), |b| b.dropout_mask(self.numel(), rate, seed))?;
        let mask = Tensor::from_storage(mask, self.shape().clone(), self.device())?;
        self.mul(&mask)
    }
}
