//! Keras 3 `.keras` files: [`Model::load_keras`] reads one that `keras.Model.save("m.keras")`
//! wrote, [`Model::save_keras`] writes one that `keras.saving.load_model` opens. [`Model::load`]
//! and [`Model::save`] do the same for a path ending in `.keras`.
//!
//! A `.keras` file is a zip archive of three entries:
//!
//! - `config.json`: the architecture, Keras' `serialize_keras_object(model)`: `{"module":
//!   "keras", "class_name": "Sequential", "config": {"name": .., "layers": [{"class_name":
//!   "Conv2D", "config": {"filters": 20, ...}}, ...]}}` (a functional model lists each layer's
//!   calls in `inbound_nodes`). It is translated to this library's architecture JSON
//!   ([`architecture`](super::architecture)), whose layer configs are Keras' own, and built by
//!   the same code as [`Model::load`]'s.
//! - `model.weights.h5`: the weights, HDF5 datasets `layers/<layer>/vars/<i>` (see `h5.rs`).
//! - `metadata.json`: the Keras version of the layout, which is not checked on reading.
//!
//! What is not carried: a compiled model's optimizer state and compile config (Keras'
//! `optimizer/vars` group is ignored on reading and not written; a loaded model is
//! uncompiled), and assets. Entries are stored uncompressed, as Keras writes them; deflated
//! entries are read too.

mod config;
mod cursor;
mod h5;
pub mod hdf5;
pub mod zip;

use std::path::Path;

use serde_json::{json, Value};
use tensor::Device;

use super::atomic::write_atomic_with;
use super::weights::read_file;
use super::SavingError;
use crate::error::Result;
use crate::model::Model;

/// The Keras release whose `.keras` layout (config, weights paths) this module follows.
pub const KERAS_VERSION: &str = "3.15.1";

const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";

/// Whether `path` names a `.keras` file (by its extension, in any case).
pub(crate) fn is_keras_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("keras"))
}

fn file_error(path: &Path, part: &'static str, reason: impl Into<String>) -> SavingError {
    SavingError::KerasFile { path: path.to_path_buf(), part, reason: reason.into() }
}

/// Reads entry `name` of the archive whole, checked against its size and CRC-32, if it declares
/// no more than `limit` bytes.
fn entry(archive: &zip::Archive<'_>, path: &Path, name: &'static str, limit: u64) -> Result<Vec<u8>> {
    Ok(archive.read(name, limit).map_err(|e| file_error(path, "zip", e.to_string()))?)
}

fn json_entry(bytes: &[u8], path: &Path, part: &'static str) -> Result<Value> {
    Ok(serde_json::from_slice(bytes).map_err(|e| file_error(path, part, format!("not JSON: {e}")))?)
}

/// Reads a `.keras` file into a model on `device`.
pub(crate) fn load(path: &Path, device: &Device) -> Result<Model> {
    let bytes = read_file(path)?;
    // No entry can inflate to more than deflate's largest ratio allows from the whole file (the
    // reader also bounds each entry by its own compressed size).
    let limit = (bytes.len() as u64).saturating_mul(1032);
    let archive = zip::Archive::new(&bytes).map_err(|e| file_error(path, "zip", e.to_string()))?;
    let keras = json_entry(&entry(&archive, path, CONFIG, limit)?, path, CONFIG)?;
    let arch = config::to_architecture(&keras).map_err(|e| match e {
        config::ConfigError::Unknown { layer, class } => {
            SavingError::UnknownLayer { path: path.to_path_buf(), layer, class }
        }
        config::ConfigError::Invalid(reason) => file_error(path, CONFIG, reason),
    })?;
    let paths = config::weight_paths(&keras).map_err(|reason| file_error(path, CONFIG, reason))?;
    let mut model = super::architecture::build(&arch, device, 0)
        .map_err(|reason| SavingError::Architecture { path: path.to_path_buf(), reason })?;
    let weights = entry(&archive, path, WEIGHTS, limit)?;
    h5::load_weights(&mut model, path, weights, &paths)?;
    Ok(model)
}

/// The three entries of the `.keras` file of `model`: config, metadata, weights.
pub(crate) fn entries(model: &Model, path: &Path) -> Result<[(&'static str, Vec<u8>); 3]> {
    let keras = config::from_graph(&model.graph)
        .map_err(|reason| SavingError::Architecture { path: path.to_path_buf(), reason })?;
    let paths = config::weight_paths(&keras)
        .map_err(|reason| SavingError::Architecture { path: path.to_path_buf(), reason })?;
    let name = keras["config"]["name"].as_str().unwrap_or("model").to_string();
    let weights = h5::weights_bytes(model, path, &paths, &name)?;
    let metadata =
        json!({ "keras_version": KERAS_VERSION, "saved_by": format!("nn {}", env!("CARGO_PKG_VERSION")) });
    Ok([
        (METADATA, metadata.to_string().into_bytes()),
        (CONFIG, keras.to_string().into_bytes()),
        (WEIGHTS, weights),
    ])
}

/// Writes `model` as a `.keras` file at `path`, atomically.
pub(crate) fn save(model: &Model, path: &Path) -> Result<()> {
    let entries = entries(model, path)?;
    // Stored, as Keras writes them; the writer's fixed date keeps the bytes reproducible.
    let mut zip = zip::Writer::new();
    let zip_error = |e: zip::Error| file_error(path, "zip", e.to_string());
    for (name, bytes) in &entries {
        zip.add(name, bytes, zip::Method::Stored).map_err(zip_error)?;
    }
    let bytes = zip.finish().map_err(zip_error)?;
    Ok(write_atomic_with(path, |w| w.write_all(&bytes))?)
}

impl Model {
    /// Reads a Keras 3 `.keras` file (Keras' `keras.saving.load_model(path)`) on the default
    /// device: the architecture from its `config.json`, the weights from its
    /// `model.weights.h5`. The model comes back uncompiled; Keras' optimizer state is ignored.
    ///
    /// Fails with [`SavingError::UnknownLayer`] naming the first layer of a class this library
    /// does not have, [`SavingError::KerasFile`] for a malformed archive, config or HDF5 file,
    /// and the weights errors of [`Model::load_weights`] (each naming the dataset, e.g.
    /// `layers/dense/vars/0 (dense/kernel)`).
    ///
    /// ```
    /// use nn::layers::{Dense, Flatten};
    /// # fn main() -> nn::Result<()> {
    /// let mut model = nn::Sequential::new();
    /// model.add(Flatten::new().input_shape([4, 4, 1]))?;
    /// model.add(Dense::new(3).activation(nn::Activation::Softmax))?;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("model.keras");
    /// model.model()?.save_keras(&path)?;
    /// let loaded = nn::Model::load_keras(&path)?;
    /// assert_eq!(loaded.count_params(), model.count_params());
    /// # Ok(())
    /// # }
    /// ```
    pub fn load_keras(path: impl AsRef<Path>) -> Result<Model> {
        load(path.as_ref(), &crate::device::default_device())
    }

    /// As [`Model::load_keras`], with the weights on `device`.
    pub fn load_keras_on(path: impl AsRef<Path>, device: &Device) -> Result<Model> {
        load(path.as_ref(), device)
    }

    /// Writes the model as a Keras 3 `.keras` file (Keras' `model.save("model.keras")`),
    /// atomically, which `keras.saving.load_model` opens and which predicts as this model does.
    /// Only the architecture and weights are written (no optimizer state, no compile config).
    ///
    /// Every layer must be one Keras has (`L2Pooling2D` is this library's own, and Keras would
    /// refuse it); a layer with no config fails with [`SavingError::Architecture`].
    pub fn save_keras(&self, path: impl AsRef<Path>) -> Result<()> {
        save(self, path.as_ref())
    }
}
