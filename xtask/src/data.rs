//! MNIST as the xtask commands feed it to the lecture models.

use std::path::PathBuf;

use nn::datasets::{DatasetKind, LoadOptions};
use nn::Array;

/// The training and test sets, images shaped for one model, labels one-hot.
pub struct Prepared {
    pub x_train: Array,
    pub y_train: Array,
    pub x_test: Array,
    pub y_test: Array,
}

/// Loads MNIST (or Fashion-MNIST) from `data` (or the usual places), each image shaped
/// `shape` (`[784]` or `[28, 28, 1]`); pixels stay 0-255, as the lecture feeds them, unless
/// `normalize` divides them by 255.
pub fn load(
    data: Option<&str>,
    dataset: DatasetKind,
    shape: &[usize],
    normalize: bool,
) -> Result<Prepared, String> {
    let options = LoadOptions { data_dir: data.map(PathBuf::from), dataset, ..LoadOptions::default() };
    let ((x_train, y_train), (x_test, y_test)) =
        nn::datasets::mnist::load_data_with(&options).map_err(|e| e.to_string())?;
    let scale = if normalize { 1.0 / 255.0 } else { 1.0 };
    let images = |x: Array| -> Result<Array, String> {
        let dims: Vec<usize> = std::iter::once(x.len()).chain(shape.iter().copied()).collect();
        x.map(|v| v * scale).reshape(dims).map_err(|e| e.to_string())
    };
    let onehot = |y: &Array| nn::to_categorical(y, 10).map_err(|e| e.to_string());
    Ok(Prepared {
        x_train: images(x_train)?,
        y_train: onehot(&y_train)?,
        x_test: images(x_test)?,
        y_test: onehot(&y_test)?,
    })
}

/// `--dataset mnist|fashion`.
pub fn dataset_kind(name: Option<&str>) -> Result<DatasetKind, String> {
    match name.unwrap_or("mnist") {
        "mnist" => Ok(DatasetKind::Mnist),
        "fashion" => Ok(DatasetKind::Fashion),
        other => Err(format!("--dataset: unknown dataset '{other}' (mnist or fashion)")),
    }
}

impl Prepared {
    /// The first `images` training images and their labels (`--train-images`; all of them
    /// when `None`), or an error naming the valid range.
    pub fn first_train(&self, images: Option<usize>) -> Result<(Array, Array), String> {
        let all = self.x_train.len();
        let n = images.unwrap_or(all);
        if n == 0 || n > all {
            return Err(format!("--train-images: 1 to {all}"));
        }
        Ok((self.x_train.slice(0, n), self.y_train.slice(0, n)))
    }
}

/// A lecture model on `device`, compiled with the lecture's settings (`nn::zoo::lecture_compiled`).
pub fn lecture_model(name: &str, device: &nn::Device, seed: u64) -> Result<nn::Model, String> {
    nn::zoo::lecture_compiled(name, device, seed).map_err(|e| e.to_string())
}
