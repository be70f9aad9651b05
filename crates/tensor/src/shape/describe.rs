//! How specs print: the shapes of a backend call, as a [`DispatchHook`](crate::DispatchHook)
//! (`cargo xtask profile-step`) shows them, e.g. `conv2d 128x28x28x1 -> 20@5x5`.

use std::fmt;

use super::{
    BroadcastSpec, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec, NarrowSpec, Pool2dSpec, ReduceSpec,
};

impl fmt::Display for MatmulSpec {
    /// `128x784x100 (batch 1)`, `T` after a transposed operand's sizes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |on: bool| if on { "T" } else { "" };
        write!(
            f,
            "{}x{}{}x{}{} (batch {})",
            self.m,
            self.k,
            t(self.trans_a),
            self.n,
            t(self.trans_b),
            self.batch
        )
    }
}

impl fmt::Display for Conv2dSpec {
    /// `128x28x28x1 -> 20@5x5`: batch x height x width x channels -> filters @ kernel.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{}x{} -> {}@{}x{}",
            self.batch, self.in_h, self.in_w, self.in_c, self.out_c, self.kernel_h, self.kernel_w
        )
    }
}

impl fmt::Display for ConvPoolSpec {
    /// The convolution's shapes (see [`Conv2dSpec`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.conv.fmt(f)
    }
}

impl fmt::Display for Pool2dSpec {
    /// `128x24x24x20`: the input's batch x height x width x channels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}x{}", self.batch, self.in_h, self.in_w, self.channels)
    }
}

impl fmt::Display for ReduceSpec {
    /// `[outer, reduced, inner]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}, {}]", self.outer, self.reduced, self.inner)
    }
}

impl fmt::Display for BroadcastSpec {
    /// The output's dimensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.dims)
    }
}

impl fmt::Display for ConcatSpec {
    /// `3 parts`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} parts", self.part_inner.len())
    }
}

impl fmt::Display for NarrowSpec {
    /// `outer x inner -> len`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{} -> {}", self.outer, self.inner, self.len)
    }
}
