//! Fashion-MNIST, as Keras' `keras.datasets.fashion_mnist`: 28x28 grey images of ten kinds of
//! clothing, in the same format and sizes as MNIST (60000 training and 10000 test images).

use super::mnist::{self, Split};
use super::{DatasetKind, LoadOptions};
use crate::Result;

/// The class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads Fashion-MNIST as `((x_train, y_train), (x_test, y_test))`, in the format of
/// [`mnist::load_data`]: images `[n, 28, 28]` with raw pixel values 0-255, labels `[n]` in 0-9.
///
/// Looks in `$FASHION_MNIST_DIR`, then `data/fashion-mnist` in the workspace, then
/// `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist` package), and downloads
/// into `data/fashion-mnist` if none holds the files.
pub fn load_data() -> Result<(Split, Split)> {
    mnist::load_data_with(&LoadOptions { dataset: DatasetKind::Fashion, ..LoadOptions::default() })
}
