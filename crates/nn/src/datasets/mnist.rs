//! MNIST handwritten digits, as Keras' `keras.datasets.mnist`.
//!
//! ```no_run
//! let ((x_train, y_train), (x_test, y_test)) = nn::datasets::mnist::load_data()?;
//! assert_eq!(x_train.dims(), &[60000, 28, 28]);
//! let x_train = x_train.map(|v| v / 255.0); // scaling is the caller's choice, as in Keras
//! # Ok::<(), nn::Error>(())
//! ```

use std::path::Path;

use super::{idx, locate, DatasetError, DatasetFiles, DatasetKind, LoadOptions, NUM_CLASSES};
use crate::{Array, Result};

/// A dataset split: images `[n, rows, cols]` and labels `[n]`.
pub type Split = (Array, Array);

/// Loads MNIST as `((x_train, y_train), (x_test, y_test))`.
///
/// Images are `[n, 28, 28]` with the raw pixel values 0-255 as `f32` (not scaled); labels are
/// `[n]`, the digits 0-9 as `f32`. The files are searched for as [`load_data_with`] describes
/// with default options, and downloaded if none are found.
pub fn load_data() -> Result<(Split, Split)> {
    load_data_with(&LoadOptions::default())
}

/// Loads the dataset `options.dataset` (MNIST or Fashion-MNIST), in the format of [`load_data`].
///
/// Looks for the four files in `options.data_dir`, then the folder in `$MNIST_DIR`
/// (`$FASHION_MNIST_DIR`), then `data/mnist` (`data/fashion-mnist`) in the workspace root, then
/// (Fashion-MNIST only) `/usr/share/datasets/fashion-mnist`; if none holds them and
/// `options.download` is set, downloads them into the workspace folder, verifying checksums.
pub fn load_data_with(options: &LoadOptions) -> Result<(Split, Split)> {
    load_files(&locate(options)?)
}

/// Loads the four files in `dir` (each raw or gzipped), without searching or downloading.
pub fn load_dir(dir: &Path) -> Result<(Split, Split)> {
    let files = DatasetFiles::find_in(dir).ok_or_else(|| DatasetError::NotFound {
        dataset: "an MNIST-format dataset",
        searched: vec![dir.to_path_buf()],
        default_dir: dir.to_path_buf(),
        files: super::FILE_STEMS.iter().map(|stem| stem.to_string()).collect(),
        env_var: DatasetKind::Mnist.env_var(),
    })?;
    load_files(&files)
}

/// Loads the given four files.
pub fn load_files(files: &DatasetFiles) -> Result<(Split, Split)> {
    // The two splits are independent; decompressing them in parallel saves a third of the time.
    let (train, test) = std::thread::scope(|scope| {
        let test = scope.spawn(|| load_split(&files.test_images, &files.test_labels));
        let train = load_split(&files.train_images, &files.train_labels);
        (train, test.join().expect("loading the test split panicked"))
    });
    Ok((train?, test?))
}

/// Loads one split and checks its image and label counts agree.
pub fn load_split(images_path: &Path, labels_path: &Path) -> Result<Split> {
    let images = idx::read_images(images_path)?;
    let labels = idx::read_labels(labels_path, NUM_CLASSES)?;
    if images.len() != labels.len() {
        return Err(DatasetError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.len(),
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        }
        .into());
    }
    let x = Array::new(images.data.iter().map(|&p| f32::from(p)).collect(), images.dims)?;
    let y = Array::new(labels.data.iter().map(|&l| f32::from(l)).collect(), labels.dims)?;
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::datasets::idx::tests::{gzip, idx_bytes};
    use crate::Error;

    /// Writes a 2-training, 1-test dataset of 2x3 images into `dir`: training files gzipped, test
    /// files raw, to load both kinds in one go.
    fn write_dataset(dir: &Path, train_labels: &[u8]) {
        let train_images = idx_bytes(8, &[2, 2, 3], &[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 255]);
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gzip(&train_images)).unwrap();
        let labels = idx_bytes(8, &[train_labels.len() as u32], train_labels);
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&labels)).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx_bytes(8, &[1, 2, 3], &[1, 2, 3, 4, 5, 6]))
            .unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_bytes(8, &[1], &[9])).unwrap();
    }

    #[test]
    fn loads_raw_pixel_values_and_labels_as_f32() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[3, 8]);
        let ((x_train, y_train), (x_test, y_test)) = load_dir(tmp.path()).unwrap();
        assert_eq!(x_train.dims(), &[2, 2, 3]);
        assert_eq!(x_train.data()[..3], [0.0, 10.0, 20.0]);
        assert_eq!(x_train.data()[11], 255.0, "pixels are not scaled");
        assert_eq!(y_train.dims(), &[2]);
        assert_eq!(y_train.data(), &[3.0, 8.0]);
        assert_eq!(x_test.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(y_test.data(), &[9.0]);
    }

    #[test]
    fn load_data_with_an_explicit_folder_loads_it() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[1, 2]);
        let options =
            LoadOptions { data_dir: Some(tmp.path().to_path_buf()), download: false, ..Default::default() };
        let ((_, y_train), _) = load_data_with(&options).unwrap();
        assert_eq!(y_train.data(), &[1.0, 2.0]);
    }

    #[test]
    fn rejects_more_labels_than_images() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[1, 2, 3]);
        let err = load_dir(tmp.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Dataset(DatasetError::CountMismatch { images: 2, labels: 3, .. })),
            "{err:?}"
        );
        assert!(msg.contains("train-images-idx3-ubyte.gz") && msg.contains("train-labels-idx1-ubyte.gz"));
    }

    #[test]
    fn rejects_label_10() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[1, 10]);
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Dataset(DatasetError::LabelOutOfRange { label: 10, index: 1, .. })));
        assert!(err.to_string().contains("train-labels-idx1-ubyte.gz"), "{err}");
    }

    #[test]
    fn missing_file_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        write_dataset(tmp.path(), &[1, 2]);
        std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::Dataset(DatasetError::NotFound { .. })), "{err:?}");
    }
}
