//! The view normalization ops take of a tensor: `[outer, channels, inner]` around one axis.

use super::Shape;
use crate::error::Result;

/// A tensor viewed as `[outer, channels, inner]` around its channel axis: per-channel
/// statistics run over `outer` and `inner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// Product of the dimensions before the channel axis.
    pub outer: usize,
    /// The channel axis' length.
    pub channels: usize,
    /// Product of the dimensions after it (1 for channels-last images).
    pub inner: usize,
}

impl ChannelSpec {
    /// The view of `shape` around `axis` (negative counts from the end).
    pub fn new(shape: &Shape, axis: isize) -> Result<Self> {
        let axis = shape.axis(axis)?;
        let dims = shape.dims();
        Ok(ChannelSpec {
            outer: dims[..axis].iter().product(),
            channels: dims[axis],
            inner: dims[axis + 1..].iter().product(),
        })
    }

    /// Elements per channel.
    pub fn per_channel(&self) -> usize {
        self.outer * self.inner
    }

    /// Elements in all.
    pub fn len(&self) -> usize {
        self.outer * self.channels * self.inner
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
