//! [`SavingError`]: why weights or a model could not be saved or loaded.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why weights (or a whole model) could not be saved or loaded.
///
/// Every variant names the file, and a mismatch names the first tensor that does not fit, so
/// that a user can tell which layer of which file is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum SavingError {
    /// The file (or the folder holding it) could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done: "read", "write", "replace", ...
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not a valid safetensors file (bad header, offsets or JSON).
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// The model has no weights yet, so there is nothing to save or load into.
    NotBuilt {
        /// The file.
        path: PathBuf,
    },
    /// The model has a variable the file lacks.
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name, e.g. `dense_1/kernel`.
        name: String,
        /// The shape the model needs.
        expected_shape: Vec<usize>,
    },
    /// The file holds a tensor the model has no variable for.
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// A tensor's shape differs from the model variable's.
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is not 32-bit float, the only element type the models use.
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The element type in the file, as safetensors names it (`F16`, `I64`, ...).
        found: String,
    },
    /// The model's architecture (saved by `Sequential::save`) is missing or cannot be rebuilt.
    Architecture {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The training state saved with a compiled model (optimizer, epochs done) cannot be read.
    TrainingState {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A Keras `.keras` file (a zip archive) is malformed: not a zip, an entry missing or
    /// unreadable, `config.json` not JSON of Keras' layout, or `model.weights.h5` not HDF5.
    KerasFile {
        /// The file.
        path: PathBuf,
        /// The part at fault: `"zip"`, `"config.json"`, `"metadata.json"` or `"model.weights.h5"`.
        part: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A model's architecture uses a layer class this library does not have (the first such
    /// layer in the file's order).
    UnknownLayer {
        /// The file.
        path: PathBuf,
        /// The layer's name in the file, e.g. `lstm`.
        layer: String,
        /// Its Keras class, e.g. `LSTM`.
        class: String,
    },
    /// A checkpoint was not written because a weight is NaN or infinite (the previous file, if
    /// any, is kept).
    NonFiniteWeights {
        /// The file that was not written.
        path: PathBuf,
        /// The first variable holding a non-finite value, e.g. `dense_1/kernel`.
        name: String,
    },
}

impl fmt::Display for SavingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SavingError::Io { path, action, source } => {
                write!(f, "{}: cannot {action}: {source}", path.display())
            }
            SavingError::Format { path, reason } => {
                write!(f, "{}: not a valid safetensors file: {reason}", path.display())
            }
            SavingError::NotBuilt { path } => write!(
                f,
                "{}: the model is not built yet, so it has no weights: give the first layer an \
                 input_shape, or call build(), before saving or loading weights",
                path.display()
            ),
            SavingError::MissingTensor { path, name, expected_shape } => write!(
                f,
                "{}: no tensor '{name}' (the model needs one of shape {expected_shape:?})",
                path.display()
            ),
            SavingError::UnexpectedTensor { path, name, shape } => write!(
                f,
                "{}: tensor '{name}' of shape {shape:?} matches no variable of the model",
                path.display()
            ),
            SavingError::ShapeMismatch { path, name, expected, found } => write!(
                f,
                "{}: tensor '{name}' has shape {found:?}, the model needs {expected:?}",
                path.display()
            ),
            SavingError::DtypeMismatch { path, name, found } => {
                write!(f, "{}: tensor '{name}' has element type {found}, the model needs F32", path.display())
            }
            SavingError::Architecture { path, reason } => {
                write!(f, "{}: cannot rebuild the model: {reason}", path.display())
            }
            SavingError::TrainingState { path, reason } => {
                write!(f, "{}: cannot read the training state: {reason}", path.display())
            }
            SavingError::KerasFile { path, part, reason } => {
                write!(f, "{}: not a valid Keras file ({part}): {reason}", path.display())
            }
            SavingError::UnknownLayer { path, layer, class } => write!(
                f,
                "{}: layer '{layer}' is a {class}, a layer class this library does not have",
                path.display()
            ),
            SavingError::NonFiniteWeights { path, name } => write!(
                f,
                "{}: not written: weight '{name}' is NaN or infinite (the previous file is kept)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SavingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SavingError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
