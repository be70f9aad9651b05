//! `model.weights.h5` of a `.keras` file: each layer's weights as HDF5 datasets
//! `<layer path>/vars/0`, `/vars/1`, ... (the path from [`super::config::weight_paths`]) in the
//! order of [`Layer::named_weights`](crate::layers::Layer), which is Keras' (trainable, then
//! non-trainable: a `Dense`'s kernel then bias, a `BatchNormalization`'s gamma, beta, moving mean
//! and variance), in Keras' layouts. Read and written by [`super::hdf5`], the subset of HDF5 that
//! Keras uses.
//!
//! Keras also writes an `optimizer/vars/...` group for a compiled model; it is not written here
//! (a `.keras` file from this library holds no training state) and ignored on reading.

use std::collections::HashMap;
use std::path::Path;

use super::super::weights::named_variables;
use super::super::SavingError;
use super::hdf5::{self, File, FileBuilder};
use crate::error::Result;
use crate::model::Model;

const PART: &str = "model.weights.h5";

fn h5_error(path: &Path, what: &str, e: impl std::fmt::Display) -> SavingError {
    SavingError::KerasFile { path: path.to_path_buf(), part: PART, reason: format!("{what}: {e}") }
}

/// The HDF5 bytes of the model's weights. `paths` maps each layer (as [`named_variables`] names
/// it) to its group; `names` maps each group to the layer name Keras records in its attribute.
pub(super) fn weights_bytes(
    model: &Model,
    path: &Path,
    paths: &HashMap<String, String>,
    model_name: &str,
) -> Result<Vec<u8>> {
    let mut file = FileBuilder::new();
    let root = file.root();
    let invalid = |e| h5_error(path, "cannot write the weights", e);
    // Keras writes a `vars` group for every layer and the model; empty ones say "no weights".
    for (layer, group) in paths {
        let vars = root.group_at(&format!("{group}/vars")).map_err(invalid)?;
        vars.set_attr("name", layer.rsplit('/').next().unwrap_or(layer)).map_err(invalid)?;
    }
    root.group("vars").and_then(|vars| vars.set_attr("name", model_name)).map_err(invalid)?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (name, var) in named_variables(model) {
        let layer = name.rsplit_once('/').map_or(name.as_str(), |(l, _)| l).to_string();
        let index = counts.entry(layer.clone()).or_insert(0);
        *index += 1;
        let index = *index - 1;
        let group = paths.get(&layer).ok_or_else(|| SavingError::Architecture {
            path: path.to_path_buf(),
            reason: format!("no Keras path for '{layer}'"),
        })?;
        let shape: Vec<u64> = var.dims().iter().map(|&d| d as u64).collect();
        let vars = root.group_at(&format!("{group}/vars")).map_err(invalid)?;
        vars.add_f32(&index.to_string(), &shape, var.to_vec()?).map_err(invalid)?;
    }
    Ok(file.finish())
}

/// Loads the weights in HDF5 `bytes` into the model, every dataset checked (present, 32-bit
/// float, same shape, none left over in a layer's group) before any variable is replaced.
pub(super) fn load_weights(
    model: &mut Model,
    path: &Path,
    bytes: Vec<u8>,
    paths: &HashMap<String, String>,
) -> Result<()> {
    let file = File::from_bytes(bytes).map_err(|e| h5_error(path, "not an HDF5 file", e))?;
    let variables = named_variables(model);
    let mut values = Vec::with_capacity(variables.len());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (name, var) in &variables {
        let layer = name.rsplit_once('/').map_or(name.as_str(), |(l, _)| l).to_string();
        let group = paths.get(&layer).ok_or_else(|| SavingError::Architecture {
            path: path.to_path_buf(),
            reason: format!("layer '{layer}' has no place in the weights file"),
        })?;
        let count = counts.entry(layer.clone()).or_insert(0);
        let dataset_path = format!("{group}/vars/{count}");
        *count += 1;
        let label = format!("{dataset_path} ({name})");
        let expected = var.dims().to_vec();
        let dataset = match file.dataset(&dataset_path) {
            Ok(dataset) => dataset,
            // Only a name that resolves to nothing is a missing weight; a damaged file is not.
            Err(hdf5::Error::NotFound(_)) => {
                return Err(SavingError::MissingTensor {
                    path: path.to_path_buf(),
                    name: label,
                    expected_shape: expected,
                }
                .into())
            }
            Err(e) => return Err(h5_error(path, &label, e).into()),
        };
        let datatype = dataset.datatype();
        if !datatype.is_f32() {
            let found = datatype.label();
            return Err(SavingError::DtypeMismatch { path: path.to_path_buf(), name: label, found }.into());
        }
        // The shape is checked before the data is read, so a lying header allocates nothing.
        let found: Vec<usize> =
            dataset.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
        if found != expected {
            return Err(SavingError::ShapeMismatch {
                path: path.to_path_buf(),
                name: label,
                expected,
                found,
            }
            .into());
        }
        let data = dataset.read_f32().map_err(|e| h5_error(path, &label, e))?;
        if data.len() != expected.iter().product::<usize>() {
            return Err(
                h5_error(path, &label, format!("{} values for shape {expected:?}", data.len())).into()
            );
        }
        values.push(crate::Array::new(data, expected)?);
    }
    // A layer's group holding more datasets than the layer has weights is a different model.
    for (layer, group) in paths {
        let Ok(vars) = file.group(&format!("{group}/vars")) else { continue };
        let have = counts.get(layer).copied().unwrap_or(0);
        let mut names = vars.datasets().map_err(|e| h5_error(path, group, e))?;
        names.sort();
        if let Some(extra) = names.iter().find(|n| n.parse::<usize>().map_or(true, |i| i >= have)) {
            let name = format!("{group}/vars/{extra}");
            let shape = file
                .dataset(&name)
                .map(|d| d.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect())
                .unwrap_or_default();
            return Err(SavingError::UnexpectedTensor { path: path.to_path_buf(), name, shape }.into());
        }
    }
    model.set_weights(&values)
}
