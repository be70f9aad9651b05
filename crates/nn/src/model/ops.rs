//! Tensor ops on symbolic tensors, as Keras applies `keras.ops` to the tensors of a functional
//! model: each adds a layer to the graph (a merge layer for two tensors, `Reshape`, or a
//! [`Lambda`] for the rest), so the model runs them on every batch, differentiably.

use tensor::Tensor;

use super::merge::{Add, Divide, MergeLayer, Multiply, Subtract};
use super::symbolic::{Apply, SymbolicTensor};
use crate::error::{Error, Result};
use crate::layers::{Lambda, Reshape};

impl SymbolicTensor {
    /// Applies `f` to each batch (a [`Lambda`] layer).
    pub fn map(
        &self,
        f: impl Fn(&Tensor) -> tensor::Result<Tensor> + Send + Sync + 'static,
    ) -> Result<SymbolicTensor> {
        Lambda::new(f).apply(self)
    }

    /// `self * value`.
    pub fn mul_scalar(&self, value: f32) -> Result<SymbolicTensor> {
        self.map(move |t| t.mul_scalar(value))
    }

    /// `self + value`.
    pub fn add_scalar(&self, value: f32) -> Result<SymbolicTensor> {
        self.map(move |t| t.add_scalar(value))
    }

    /// Elements `start..start + len` of each sample's `axis` (Keras' `x[:, ..., start:end]`;
    /// the axes are a sample's, negative ones counted from the end).
    pub fn slice(&self, axis: isize, start: usize, len: usize) -> Result<SymbolicTensor> {
        let rank = self.shape().len() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(Error::Build(format!("slice: axis {axis} is not an axis of {}", self.describe())));
        }
        let size = self.shape()[resolved as usize];
        if start + len > size || len == 0 {
            return Err(Error::Build(format!(
                "slice: {start}..{} is not a non-empty range within axis {axis} of {} (length {size})",
                start + len,
                self.describe()
            )));
        }
        // The batch axis comes first in the batch the function sees.
        self.map(move |t| t.narrow(resolved + 1, start, len))
    }

    /// Each sample reshaped to `shape` (a `Reshape` layer).
    pub fn reshape(&self, shape: impl Into<Vec<usize>>) -> Result<SymbolicTensor> {
        Reshape::new(shape.into()).apply(self)
    }

    /// `self + other` (an `Add` layer; the same shapes).
    pub fn add(&self, other: &SymbolicTensor) -> Result<SymbolicTensor> {
        Add::new().apply_many(&[self, other])
    }

    /// `self - other` (a `Subtract` layer).
    pub fn sub(&self, other: &SymbolicTensor) -> Result<SymbolicTensor> {
        Subtract::new().apply_many(&[self, other])
    }

    /// `self * other`, element-wise (a `Multiply` layer).
    pub fn mul(&self, other: &SymbolicTensor) -> Result<SymbolicTensor> {
        Multiply::new().apply_many(&[self, other])
    }

    /// `self / other`, element-wise (a `Divide` layer).
    pub fn div(&self, other: &SymbolicTensor) -> Result<SymbolicTensor> {
        Divide::new().apply_many(&[self, other])
    }
}
