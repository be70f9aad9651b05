//! Softmax and log-softmax over the last axis, and the fused softmax cross-entropy that
//! classification losses use (stable for any logits, and cheap to differentiate).

use crate::error::{Result, TensorError};
use crate::ops::binary::grad_if;
use crate::tensor::Tensor;

impl Tensor {
    fn softmax_impl(&self, log: bool) -> Result<Tensor> {
        if self.rank() == 0 {
            return Err(TensorError::InvalidAxis { axis: -1, shape: self.shape().clone() });
        }
        let (rows, cols) = self.shape().rows_cols();
        let storage = self.device().call("softmax", &format_args!("{rows}x{cols}"), |b| {
            b.softmax(self.storage(), rows, cols, log)
        })?;
        let name = if log { "log_softmax" } else { "softmax" };
        Ok(Tensor::from_op(storage, self.shape().clone(), self.device(), &[self], name, move |ctx| {
            let y = ctx.output;
            let dx = y.device().call("softmax_backward", &format_args!("{rows}x{cols}"), |b| {
                b.softmax_backward(y.storage(), ctx.grad.storage(), rows, cols, log)
            })?;
            Ok(vec![Some(Tensor::from_storage(dx, y.shape().clone(), y.device())?)])
        }))
    }

    /// Softmax over the last axis.
    pub fn softmax(&self) -> Result<Tensor> {
        self.softmax_impl(false)
    }

    /// Log-softmax over the last axis (computed as `x - max - log(sum(exp(x - max)))`).
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.softmax_impl(true)
    }

    /// Cross-entropy between `softmax(self)` (logits) and the probability rows `labels`
    /// (one-hot or soft), per row: `-sum(labels * log_softmax(self))` over the last axis.
    /// The result has the last axis removed. Its gradient with respect to the logits is the
    /// well-conditioned `(softmax(self) * sum(labels) - labels) * grad`, which is
    /// `softmax(self) - labels` for one-hot rows.
    pub fn softmax_cross_entropy(&self, labels: &Tensor) -> Result<Tensor> {
        self.same_device(labels, "softmax_cross_entropy")?;
        if self.shape() != labels.shape() || self.rank() == 0 {
            return Err(TensorError::ShapeMismatch {
                op: "softmax_cross_entropy (logits and labels must have the same shape)",
                lhs: self.shape().clone(),
                rhs: labels.shape().clone(),
            });
        }
        let (rows, cols) = self.shape().rows_cols();
        let (loss, probs) =
            self.device().call("softmax_cross_entropy", &format_args!("{rows}x{cols}"), |b| {
                b.softmax_cross_entropy(self.storage(), labels.storage(), rows, cols)
            })?;
        let probs = Tensor::from_storage(probs, self.shape().clone(), self.device())?;
        let mut row_shape = self.dims().to_vec();
        row_shape.pop();
        Ok(Tensor::from_op(
            loss,
            row_shape,
            self.device(),
            &[self, labels],
            "softmax_cross_entropy",
            move |ctx| {
                let [logits, labels] = ctx.inputs else { unreachable!() };
                let mut col = logits.dims().to_vec();
                *col.last_mut().expect("rank checked") = 1;
                let g = ctx.grad.reshape(col)?;
                Ok(vec![
                    grad_if(ctx.needs[0], || probs.mul(&labels.sum_axis(-1, true)?)?.sub(labels)?.mul(&g))?,
                    grad_if(ctx.needs[1], || logits.log_softmax()?.mul(&g)?.neg())?,
                ])
            },
        ))
    }
}
