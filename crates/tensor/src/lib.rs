//! n-dimensional f32 tensors with reverse-mode automatic differentiation, over a pluggable
//! compute [`Backend`].
//!
//! - [`shape`]: shapes and the shape arithmetic all backends share (broadcasting, convolution
//!   and pooling geometry).
//! - [`backend`]: the trait a kernels crate implements (storage + primitive kernels).
//! - [`Tensor`]: immutable tensors on a [`Device`]; the ops in `ops/` each define a forward
//!   (calling the backend) and a backward (in terms of other ops).
//! - [`autodiff`]: the graph walk behind [`Tensor::backward`], and [`no_grad`].
//!
//! Images are NHWC and convolution filters HWIO, as in Keras.

pub mod autodiff;
pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
mod ops;
pub mod random;
pub mod shape;
mod tensor;

pub use autodiff::{is_grad_enabled, no_grad, Gradients, NoGradGuard};
pub use backend::{
    Backend, BackendStorage, BinaryOp, Capabilities, ChannelCoefficients, ChannelGrad, ConvOps,
    ConvPoolBackward, ConvPoolGrads, ConvPoolSaved, ElementwiseOps, ImageOps, LayoutOps, MatmulOps,
    MemoryOps, NormOps, PoolOps, PooledGrad, ReduceOp, ReduceOps, SoftmaxOps, Storage, UnaryOp,
};
pub use error::{Result, TensorError};
pub use shape::{FillMode, Interpolation, Padding, PoolKind, PoolWindow, Shape};
pub use tensor::{Device, DispatchHook, Tensor, TensorId};
