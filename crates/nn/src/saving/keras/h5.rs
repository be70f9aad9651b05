//! `model.weights.h5` of a `.keras` file: each layer's weights as HDF5 datasets
//! `<layer path>/vars/0`, `/vars/1`, ... (the path from [`super::config::weight_paths`]) in the
//! order of [`Layer::named_weights`](crate::layers::Layer), which is Keras' (trainable, then
//! non-trainable: a `Dense`'s kernel then bias, a `BatchNormalization`'s gamma, beta, moving mean
//! and variance), in Keras' layouts. Read and written with `hdf5-pure` (pure Rust: no libhdf5).
//!
//! Keras also writes an `optimizer/vars/...` group for a compiled model; it is not written here
//! (a `.keras` file from this library holds no training state) and ignored on reading.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use hdf5_pure::{AttrValue, Datatype, File, FileBuilder, GroupBuilder};

use super::super::weights::named_variables;
use super::super::SavingError;
use crate::error::Result;
use crate::model::Model;

const PART: &str = "model.weights.h5";

fn h5_error(path: &Path, what: &str, e: impl std::fmt::Display) -> SavingError {
    SavingError::KerasFile { path: path.to_path_buf(), part: PART, reason: format!("{what}: {e}") }
}

/// One group of the file being written: its `name` attribute, datasets and subgroups.
#[derive(Default)]
struct Tree {
    name: Option<String>,
    datasets: Vec<(String, Vec<u64>, Vec<f32>)>,
    groups: BTreeMap<String, Tree>,
}

impl Tree {
    fn at(&mut self, path: &str) -> &mut Tree {
        path.split('/')
            .filter(|p| !p.is_empty())
            .fold(self, |t, part| t.groups.entry(part.to_string()).or_default())
    }

    fn fill(self, group: &mut GroupBuilder) {
        if let Some(name) = self.name {
            group.set_attr("name", AttrValue::String(name));
        }
        for (name, shape, values) in &self.datasets {
            group.create_dataset(name).with_f32_data(values).with_shape(shape);
        }
        for (name, tree) in self.groups {
            let mut child = group.create_group(&name);
            tree.fill(&mut child);
            group.add_group(child.finish());
        }
    }
}

/// The HDF5 bytes of the model's weights. `paths` maps each layer (as [`named_variables`] names
/// it) to its group; `names` maps each group to the layer name Keras records in its attribute.
pub(super) fn weights_bytes(
    model: &Model,
    path: &Path,
    paths: &HashMap<String, String>,
    model_name: &str,
) -> Result<Vec<u8>> {
    let mut root = Tree::default();
    // Keras writes a `vars` group for every layer and the model; empty ones say "no weights".
    for (layer, group) in paths {
        let vars = root.at(&format!("{group}/vars"));
        vars.name = Some(layer.rsplit('/').next().unwrap_or(layer).to_string());
    }
    root.at("vars").name = Some(model_name.to_string());
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
        root.at(&format!("{group}/vars")).datasets.push((index.to_string(), shape, var.to_vec()?));
    }
    let mut builder = FileBuilder::new();
    for (name, tree) in root.groups {
        let mut group = builder.create_group(&name);
        tree.fill(&mut group);
        builder.add_group(group.finish());
    }
    Ok(builder.finish().map_err(|e| h5_error(path, "cannot write the weights", e))?)
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
            Err(hdf5_pure::Error::Format(hdf5_pure::FormatError::PathNotFound(_))) => {
                return Err(SavingError::MissingTensor {
                    path: path.to_path_buf(),
                    name: label,
                    expected_shape: expected,
                }
                .into())
            }
            Err(e) => return Err(h5_error(path, &label, e).into()),
        };
        match dataset.datatype().map_err(|e| h5_error(path, &label, e))? {
            Datatype::FloatingPoint { size: 4, .. } => {}
            Datatype::FloatingPoint { size, .. } => {
                let found = format!("F{}", size * 8);
                return Err(
                    SavingError::DtypeMismatch { path: path.to_path_buf(), name: label, found }.into()
                );
            }
            other => {
                let found = format!("{other:?}").split([' ', '{', '(']).next().unwrap_or("?").to_string();
                return Err(
                    SavingError::DtypeMismatch { path: path.to_path_buf(), name: label, found }.into()
                );
            }
        }
        // The shape is checked before the data is read, so a lying header allocates nothing.
        let shape = dataset.shape().map_err(|e| h5_error(path, &label, e))?;
        let found: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
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
                .and_then(|d| d.shape())
                .map(|s| s.iter().map(|&d| d as usize).collect())
                .unwrap_or_default();
            return Err(SavingError::UnexpectedTensor { path: path.to_path_buf(), name, shape }.into());
        }
    }
    model.set_weights(&values)
}
