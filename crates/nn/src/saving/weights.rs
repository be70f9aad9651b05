//! Weights in the safetensors format, keyed by Keras-style names (`conv2d_1/kernel`).
//!
//! Tensors keep the layouts Keras uses (HWIO convolution kernels, `[in, out]` dense kernels), as
//! little-endian `F32`, so the file can be read by any safetensors reader and compared one to one
//! with a Keras model's weights.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use tensor::Tensor;

use super::atomic::write_atomic_with;
use super::training_state;
use super::SavingError;
use crate::error::Result;
use crate::model::Model;

/// The model's weights with their file names (`layer/kernel`; in a nested model
/// `sequential_1/dense_1/kernel`), in the order of [`Model::variables`].
pub(crate) fn named_variables(model: &Model) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (layer, cell) in model.graph.weighted_layers() {
        for (name, w) in cell.lock().named_weights() {
            out.push((format!("{layer}/{name}"), w.clone()));
        }
    }
    out
}

/// The weights an optimizer is given (every layer's gradient-trained ones, frozen or not), with
/// their file names, in the optimizer's order: its state is saved under these names.
pub(crate) fn named_params(model: &Model) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (layer, cell) in model.graph.weighted_layers() {
        let state = cell.lock();
        let params = state.layer.params().len();
        for (name, w) in state.named_weights().into_iter().take(params) {
            out.push((format!("{layer}/{name}"), w.clone()));
        }
    }
    out
}

/// What a file holds besides the weights: header metadata, and more F32 tensors (the
/// optimizer's state in a checkpoint) as `(name, shape, values)`.
#[derive(Default)]
pub(crate) struct FileExtras {
    pub metadata: HashMap<String, String>,
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

/// Serialises the model's weights (plus `extras`).
pub(crate) fn weights_bytes(model: &Model, path: &Path, extras: Option<FileExtras>) -> Result<Vec<u8>> {
    let FileExtras { metadata, tensors: extra_tensors } = extras.unwrap_or_default();
    let le_bytes = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let mut tensors = Vec::new();
    for (name, var) in named_variables(model) {
        tensors.push((name, var.dims().to_vec(), le_bytes(&var.to_vec()?)));
    }
    tensors.extend(extra_tensors.into_iter().map(|(name, dims, values)| (name, dims, le_bytes(&values))));
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format_error(path, e))?;
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let bytes = safetensors::serialize(views, metadata).map_err(|e| format_error(path, e))?;
    Ok(with_sorted_header(bytes))
}

/// The same file with its JSON header's keys in sorted order. safetensors writes the metadata
/// map in hash order, which changes from run to run; sorted, the same model always gives the
/// same bytes (a resumed run's file can be compared byte for byte with an uninterrupted one's).
fn with_sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    const LEN: usize = size_of::<u64>();
    let header_len = u64::from_le_bytes(bytes[..LEN].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[LEN..LEN + header_len]).expect("safetensors wrote valid JSON");
    // serde_json's maps are sorted by key.
    let mut text = header.to_string().into_bytes();
    // safetensors pads the header with spaces to a multiple of 8 bytes, which keeps the data
    // aligned.
    text.resize(text.len().next_multiple_of(LEN), b' ');
    let mut out = Vec::with_capacity(LEN + text.len() + bytes.len() - LEN - header_len);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    out.extend_from_slice(&bytes[LEN + header_len..]);
    out
}

/// Saves the weights to `path` atomically; `sink` writes the serialised bytes to the temporary
/// file (a test passes one that fails half-way).
pub(crate) fn save_weights_with(
    model: &Model,
    path: &Path,
    extras: Option<FileExtras>,
    sink: impl FnOnce(&mut dyn Write, &[u8]) -> io::Result<()>,
) -> Result<()> {
    let bytes = weights_bytes(model, path, extras)?;
    Ok(write_atomic_with(path, |w| sink(w, &bytes))?)
}

/// Reads a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> std::result::Result<Vec<u8>, SavingError> {
    std::fs::read(path).map_err(|source| SavingError::Io { path: path.to_path_buf(), action: "read", source })
}

/// Parses safetensors `bytes` (read from `path`).
pub(crate) fn parse<'a>(path: &Path, bytes: &'a [u8]) -> std::result::Result<SafeTensors<'a>, SavingError> {
    SafeTensors::deserialize(bytes).map_err(|e| format_error(path, e))
}

/// The header's metadata (string to string), empty when the file has none.
pub(crate) fn metadata(
    path: &Path,
    bytes: &[u8],
) -> std::result::Result<HashMap<String, String>, SavingError> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format_error(path, e))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// The values of tensor `name`, checked to be present, `F32` and of shape `expected`.
pub(crate) fn read_f32(
    path: &Path,
    file: &SafeTensors<'_>,
    name: &str,
    expected: &[usize],
) -> std::result::Result<Vec<f32>, SavingError> {
    let Ok(view) = file.tensor(name) else {
        return Err(SavingError::MissingTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected_shape: expected.to_vec(),
        });
    };
    if view.dtype() != Dtype::F32 {
        let found = view.dtype().to_string();
        return Err(SavingError::DtypeMismatch { path: path.to_path_buf(), name: name.to_string(), found });
    }
    if view.shape() != expected {
        return Err(SavingError::ShapeMismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: expected.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    // safetensors checked the byte length against the shape; the data may be unaligned.
    Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn format_error(path: &Path, e: safetensors::SafeTensorError) -> SavingError {
    SavingError::Format { path: path.to_path_buf(), reason: e.to_string() }
}

/// Loads weights parsed from `path` into the model. `others` names the tensors the file may
/// hold besides the weights (a checkpoint's optimizer state), which are left to the caller.
///
/// Every tensor is checked (present, `F32`, same shape; no tensor left over) before any variable
/// is replaced, so a file that does not fit leaves the model as it was.
pub(crate) fn load_into(
    model: &mut Model,
    path: &Path,
    file: &SafeTensors<'_>,
    others: &[String],
) -> Result<()> {
    let variables = named_variables(model);
    let mut values = Vec::new();
    for (name, var) in &variables {
        let expected = var.dims().to_vec();
        values.push(crate::Array::new(read_f32(path, file, name, &expected)?, expected)?);
    }
    let mut known: HashSet<&str> = others.iter().map(String::as_str).collect();
    known.extend(variables.iter().map(|(n, _)| n.as_str()));
    let mut extra: Vec<&str> = file.names().into_iter().filter(|n| !known.contains(*n)).collect();
    extra.sort_unstable();
    if let Some(name) = extra.first() {
        let shape = file.tensor(name).map(|v| v.shape().to_vec()).unwrap_or_default();
        return Err(SavingError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            shape,
        }
        .into());
    }
    model.set_weights(&values)
}

/// Loads the weights file at `path` into the model; a checkpoint's optimizer state, if the file
/// holds one, is checked and skipped.
pub(crate) fn load_weights(model: &mut Model, path: &Path) -> Result<()> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    let others = match training_state::TrainingState::from_metadata(path, &metadata(path, &bytes)?)? {
        Some(state) => state.tensor_names(model),
        None => Vec::new(),
    };
    load_into(model, path, &file, &others)
}
