//! Axis permutations (`Tensor::permute`): which input element each output element reads.

use super::Shape;
use crate::error::{Result, TensorError};

/// Axes a permutation may have (the uniform of the wgpu kernel has room for this many).
pub const MAX_PERMUTE_RANK: usize = 8;

/// A permutation of a tensor's axes: output axis `i` is input axis `axes[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermuteSpec {
    /// The output's dimensions.
    pub out_dims: Vec<usize>,
    /// Per output axis, the input's element stride along it.
    pub in_strides: Vec<usize>,
}

impl PermuteSpec {
    /// The permutation `axes` of `shape`, checked to name each axis once.
    pub fn new(shape: &Shape, axes: &[usize]) -> Result<Self> {
        let rank = shape.rank();
        let mut seen = vec![false; rank];
        let valid =
            axes.len() == rank && axes.iter().all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid || rank > MAX_PERMUTE_RANK {
            return Err(TensorError::InvalidArgument(format!(
                "permute: {axes:?} is not a permutation of the {rank} axes of {shape} (at most {MAX_PERMUTE_RANK})"
            )));
        }
        let dims = shape.dims();
        let mut strides = vec![1; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * dims[i + 1];
        }
        Ok(PermuteSpec {
            out_dims: axes.iter().map(|&a| dims[a]).collect(),
            in_strides: axes.iter().map(|&a| strides[a]).collect(),
        })
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.out_dims.iter().product()
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input offset output element `index` reads.
    pub fn source(&self, mut index: usize) -> usize {
        let mut offset = 0;
        for (&d, &s) in self.out_dims.iter().zip(&self.in_strides).rev() {
            offset += (index % d) * s;
            index /= d;
        }
        offset
    }
}
