//! Saving and loading any model: weights alone ([`Model::save_weights`] /
//! [`Model::load_weights`]), or the whole model ([`Model::save`] / [`Model::load`]), in the
//! safetensors format, written atomically.
//!
//! Weights are keyed by Keras-style names, `LAYER/kernel` and `LAYER/bias` (e.g.
//! `conv2d_1/kernel`; in a nested model `sequential_1/dense_1/kernel`), in Keras' layouts, so
//! other tools can read them. A save writes a temporary file beside the target and renames it
//! over the target only once it is complete and on disk (see [`atomic`]), so a crash or a full
//! disk mid-save leaves the previous file intact. A load checks every name, shape and element
//! type before it changes anything, and names the first mismatch.
//!
//! [`Model::save`] also stores the architecture as JSON in the file's metadata (key
//! [`ARCHITECTURE_KEY`]; see [`architecture`] for the two layouts, `Sequential` and
//! functional), and [`Model::load`] rebuilds the model from it, without its code. For a
//! compiled model it stores the training state too (key [`TRAINING_KEY`], plus the optimizer's
//! per-variable tensors), so a loaded model resumes training exactly where the saved one
//! stopped; this is what [`ModelCheckpoint`](crate::callbacks::ModelCheckpoint) writes.
//! `Sequential::save` and `load` are the same path.
//!
//! A path ending in `.keras` reads and writes Keras 3's own format instead; its two containers,
//! the subsets of [`zip`] and [`hdf5`] that Keras uses, are read and written by this library's
//! own modules, public for tools and tests that look inside such files.

pub mod architecture;
pub mod atomic;
mod error;
mod keras;
mod layer_config;
mod training_state;
mod weights;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use architecture::ARCHITECTURE_KEY;
pub use error::SavingError;
pub use keras::{hdf5, zip, KERAS_VERSION};
pub use layer_config::padding_name;
pub use training_state::TRAINING_KEY;

pub(crate) use architecture::check_savable;
use tensor::Device;

use crate::error::{Error, Result};
use crate::model::graph::GraphKind;
use crate::model::{Model, Sequential};

/// The name (`layer/variable`) of the first variable of `model` holding a NaN or infinity.
pub(crate) fn first_non_finite_variable(model: &Model) -> Result<Option<String>> {
    for (name, var) in weights::named_variables(model) {
        if var.to_vec()?.iter().any(|v| !v.is_finite()) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

impl Model {
    /// Saves the weights to `path` in the safetensors format (see [the module](crate::saving)),
    /// atomically: if the save fails, a previous file at `path` is left as it was.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        weights::save_weights_with(self, path.as_ref(), None, |w, bytes| w.write_all(bytes))
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) (or any safetensors file with
    /// the same names, shapes and `F32` element type).
    ///
    /// Fails, changing nothing, with a [`SavingError`] naming the file and the first tensor that
    /// is missing, unexpected, of another shape or of another element type.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        weights::load_weights(self, path.as_ref())
    }

    /// Saves the whole model, architecture and weights, to one safetensors file at `path`
    /// (atomically), which [`Model::load`] rebuilds without this code. A compiled model also
    /// saves its losses, metrics, optimizer with its state (momenta, step count, schedule) and
    /// the number of epochs done, so the loaded model resumes training as if never stopped.
    ///
    /// Fails if a layer has no config ([`Layer::config`](crate::layers::Layer::config)), or the
    /// model was compiled with a user loss (a closure no file can hold).
    ///
    /// A path ending in `.keras` writes a Keras 3 `.keras` file instead ([`Model::save_keras`]:
    /// architecture and weights, no training state).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if keras::is_keras_path(path) {
            return keras::save(self, path);
        }
        architecture::save(self, path)
    }

    /// Rebuilds a model saved by [`Model::save`] (or `Sequential::save`), with its weights, on
    /// the default device. A model saved compiled comes back compiled, with its optimizer state
    /// and [`epochs_done`](Model::epochs_done); resume with
    /// `fit(.., &FitOptions::new().epochs(total).initial_epoch(model.epochs_done()))`.
    ///
    /// A path ending in `.keras` is read as a Keras 3 `.keras` file ([`Model::load_keras`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_on(path, &crate::device::default_device())
    }

    /// As [`Model::load`], with the weights on `device`.
    pub fn load_on(path: impl AsRef<Path>, device: &Device) -> Result<Model> {
        let path = path.as_ref();
        if keras::is_keras_path(path) {
            return keras::load(path, device);
        }
        architecture::load(path, device)
    }
}

impl Sequential {
    /// Saves the weights (see [`Model::save_weights`]). Fails with [`SavingError::NotBuilt`] if
    /// the model has no weights yet.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.built_for(path.as_ref())?.save_weights(path)
    }

    /// Loads weights into this built model (see [`Model::load_weights`]).
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.built_for(path.as_ref())?;
        self.model_mut()?.load_weights(path)
    }

    /// Saves the whole model (see [`Model::save`]), as Keras saves a `Sequential`: its list of
    /// layers.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.built_for(path.as_ref())?.save(path)
    }

    /// Rebuilds a `Sequential` saved by [`Sequential::save`] on the default device (see
    /// [`Model::load`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Sequential> {
        Self::load_on(path, &crate::device::default_device())
    }

    /// As [`Sequential::load`], with the weights on `device`.
    pub fn load_on(path: impl AsRef<Path>, device: &Device) -> Result<Sequential> {
        let path = path.as_ref();
        let model = Model::load_on(path, device)?;
        if model.kind() != GraphKind::Sequential {
            let reason = "the file holds a functional model: load it with Model::load".to_string();
            return Err(SavingError::Architecture { path: path.to_path_buf(), reason }.into());
        }
        Sequential::from_model(model)
    }

    /// The built model, or [`SavingError::NotBuilt`] naming `path`.
    fn built_for(&self, path: &Path) -> Result<&Model> {
        self.model().map_err(|_| Error::Saving(SavingError::NotBuilt { path: path.to_path_buf() }))
    }
}
