//! The error type of everything in `nn`.

use std::fmt;

use crate::datasets::DatasetError;
use crate::saving::SavingError;

/// Result of an `nn` operation.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong while building, training or using a model, or loading data.
#[derive(Debug)]
pub enum Error {
    /// A tensor operation failed (shape mismatch, device error, ...).
    Tensor(tensor::TensorError),
    /// A model could not be built as described; the text names the layer.
    Build(String),
    /// Data passed to `fit`/`evaluate`/`predict` does not fit the model or is malformed.
    Data(String),
    /// A dataset could not be read, found or downloaded.
    Dataset(DatasetError),
    /// Weights or a model could not be saved or loaded.
    Saving(SavingError),
    /// A file given as input (an image) could not be read or used.
    Input {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file (a history, a plot, an image) could not be written.
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Training produced a non-finite loss (see
    /// [`FitOptions::terminate_on_nan`](crate::FitOptions::terminate_on_nan)).
    NonFiniteLoss {
        /// Epoch (1-based).
        epoch: usize,
        /// Step (batch) within the epoch (1-based).
        step: usize,
        /// The loss: NaN or infinite.
        loss: f32,
    },
    /// An option of `fit` (or of one of its callbacks) is invalid; the text names it.
    Options(String),
    /// Data-parallel training failed on another rank, or the ranks could not communicate
    /// (see [`distributed`](crate::distributed)); the text names the rank.
    Distributed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(e) => write!(f, "{e}"),
            Error::Build(msg) => write!(f, "cannot build model: {msg}"),
            Error::Data(msg) => write!(f, "bad data: {msg}"),
            Error::Dataset(e) => write!(f, "{e}"),
            Error::Saving(e) => write!(f, "{e}"),
            Error::Input { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Output { path, message } => write!(f, "cannot write {}: {message}", path.display()),
            Error::NonFiniteLoss { epoch, step, loss } => {
                write!(f, "epoch {epoch}, batch {step}: invalid loss ({loss}), terminating training")
            }
            Error::Options(msg) => write!(f, "bad option: {msg}"),
            Error::Distributed(msg) => write!(f, "distributed training: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Tensor(e) => Some(e),
            Error::Dataset(e) => Some(e),
            Error::Saving(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tensor::TensorError> for Error {
    fn from(e: tensor::TensorError) -> Self {
        Error::Tensor(e)
    }
}

impl From<DatasetError> for Error {
    fn from(e: DatasetError) -> Self {
        Error::Dataset(e)
    }
}

impl From<SavingError> for Error {
    fn from(e: SavingError) -> Self {
        Error::Saving(e)
    }
}
