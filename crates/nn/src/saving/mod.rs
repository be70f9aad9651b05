//! Saving and loading: [`Sequential::save_weights`] / [`Sequential::load_weights`] in the
//! safetensors format, written atomically.
//!
//! Weights are keyed by Keras-style names, `LAYER/kernel` and `LAYER/bias` (e.g.
//! `conv2d_1/kernel`), in Keras' layouts, so other tools can read them. A save writes a temporary
//! file beside the target and renames it over the target only once it is complete and on disk
//! (see [`atomic`]), so a crash or a full disk mid-save leaves the previous file intact. A load
//! checks every name, shape and element type before it changes anything, and names the first
//! mismatch.
//!
//! [`Sequential::save`] also stores the architecture as JSON in the file's metadata (key
//! [`ARCHITECTURE_KEY`]), and [`Sequential::load`] rebuilds the model from it, without its code.
//! For a compiled model it stores the training state too (key [`TRAINING_KEY`], plus the
//! optimizer's per-variable tensors), so a loaded model resumes training exactly where the saved
//! one stopped; this is what [`ModelCheckpoint`](crate::callbacks::ModelCheckpoint) writes.

pub mod atomic;
mod error;
mod model;
mod training_state;
mod weights;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::SavingError;
pub use model::{padding_name, ARCHITECTURE_KEY};
pub use training_state::TRAINING_KEY;

use tensor::Device;

use crate::error::Result;
use crate::sequential::Sequential;

/// The name (`layer/variable`) of the first variable of `model` holding a NaN or infinity.
pub(crate) fn first_non_finite_variable(model: &Sequential) -> Result<Option<String>> {
    for (name, var) in weights::named_variables(model) {
        if var.to_vec()?.iter().any(|v| !v.is_finite()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

impl Sequential {
    /// Saves the weights to `path` in the safetensors format (see [the module](crate::saving)),
    /// atomically: if the save fails, a previous file at `path` is left as it was.
    ///
    /// Fails with [`SavingError::NotBuilt`] if the model has no weights yet.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        weights::save_weights_with(self, path.as_ref(), None, |w, bytes| w.write_all(bytes))
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) (or any safetensors file with
    /// the same names, shapes and `F32` element type) into this built model.
    ///
    /// Fails, changing nothing, with a [`SavingError`] naming the file and the first tensor that
    /// is missing, unexpected, of another shape or of another element type; or if the model is
    /// not built.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        weights::load_weights(self, path.as_ref())
    }

    /// Saves the whole model, architecture and weights, to one safetensors file at `path`
    /// (atomically), which [`Sequential::load`] rebuilds without this code. A compiled model
    /// also saves its loss, metrics, optimizer with its state (momenta, step count) and the
    /// number of epochs done, so the loaded model resumes training as if never stopped.
    ///
    /// Fails if the model is not built, or has a layer without a config
    /// ([`Layer::config`](crate::layers::Layer::config)).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        model::save(self, path.as_ref())
    }

    /// Rebuilds a model saved by [`Sequential::save`], with its weights, on the default device.
    /// A model saved compiled comes back compiled, with its optimizer state and
    /// [`epochs_done`](Sequential::epochs_done); resume with
    /// `fit(.., &FitOptions::new().epochs(total).initial_epoch(model.epochs_done()))`.
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential> {
        model::load(path.as_ref(), &crate::device::default_device())
    }

    /// As [`Sequential::load`], with the weights on `device`.
    pub fn load_on(path: impl AsRef<Path>, device: &Device) -> Result<Sequential> {
        model::load(path.as_ref(), device)
    }
}
