//! The error type of every tensor operation.

use crate::shape::Shape;
use std::fmt;

/// Result of a tensor operation.
pub type Result<T> = std::result::Result<T, TensorError>;

/// What went wrong in a tensor operation. Shape errors name the operation and both shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorError {
    /// Two operands' shapes do not fit together for `op`.
    ShapeMismatch {
        /// The operation (and, where useful, the rule that was broken).
        op: &'static str,
        /// Shape of the first operand.
        lhs: Shape,
        /// Shape of the second operand.
        rhs: Shape,
    },
    /// A buffer's length does not match the shape it was given.
    DataLength {
        /// Elements the shape needs.
        expected: usize,
        /// Elements supplied.
        got: usize,
        /// The shape.
        shape: Shape,
    },
    /// An axis outside the tensor's rank.
    InvalidAxis {
        /// The axis asked for.
        axis: isize,
        /// The tensor's shape.
        shape: Shape,
    },
    /// Operands live on different devices.
    DeviceMismatch {
        /// The operation.
        op: &'static str,
        /// Name of the first operand's device.
        lhs: String,
        /// Name of the second operand's device.
        rhs: String,
    },
    /// A bad argument that is not a shape (a rate outside [0, 1), a zero stride, ...).
    InvalidArgument(String),
    /// `backward` was called on a tensor that is not a scalar.
    NotScalar(Shape),
    /// The backend failed (out of memory, device lost, a limit exceeded); the text says which.
    Backend(String),
    /// The backend does not implement this form of an op (it says so in
    /// [`Capabilities`](crate::backend::Capabilities), and the tensor ops do not ask it); the
    /// text says what.
    Unsupported(String),
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "shape mismatch in {op}: {lhs} vs {rhs}")
            }
            TensorError::DataLength { expected, got, shape } => {
                write!(f, "shape {shape} needs {expected} elements but the data has {got}")
            }
            TensorError::InvalidAxis { axis, shape } => {
                write!(f, "axis {axis} is out of range for shape {shape}")
            }
            TensorError::DeviceMismatch { op, lhs, rhs } => {
                write!(f, "{op} got tensors on different devices: {lhs} and {rhs}")
            }
            TensorError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            TensorError::NotScalar(shape) => {
                write!(f, "backward() needs a scalar (one-element) tensor, got shape {shape}")
            }
            TensorError::Backend(msg) => write!(f, "backend error: {msg}"),
            TensorError::Unsupported(msg) => write!(f, "not supported by the backend: {msg}"),
        }
    }
}

impl std::error::Error for TensorError {}
