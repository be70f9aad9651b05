//! Loads the real MNIST (and, where installed, Fashion-MNIST) and checks well-known facts.
//!
//! MNIST is taken from `$MNIST_DIR`, else `<workspace>/../shared/data/mnist`. Without either the
//! test is skipped with a note, except under CI (`CI=true`), which must have the data.

use std::path::{Path, PathBuf};

use nn::datasets::{find_workspace_root, mnist};
use nn::Array;

/// The MNIST folder to test, if there is one.
fn mnist_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MNIST_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let root = find_workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))?;
    Some(root.join("../shared/data/mnist")).filter(|dir| dir.is_dir())
}

/// Loads exactly `dir` (no fallback to other folders, no download).
fn load(dir: &Path) -> ((Array, Array), (Array, Array)) {
    mnist::load_dir(dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn class_counts(labels: &Array) -> [usize; 10] {
    let mut counts = [0; 10];
    for &label in labels.data() {
        counts[label as usize] += 1;
    }
    counts
}

#[test]
fn real_mnist_has_the_known_shape_and_statistics() {
    let Some(dir) = mnist_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must provide MNIST: set MNIST_DIR or put the files in ../shared/data/mnist"
        );
        eprintln!("note: MNIST not found (set MNIST_DIR or provide ../shared/data/mnist); test skipped");
        return;
    };
    let ((x_train, y_train), (x_test, y_test)) = load(&dir);

    assert_eq!(x_train.dims(), &[60000, 28, 28]);
    assert_eq!(y_train.dims(), &[60000]);
    assert_eq!(x_test.dims(), &[10000, 28, 28]);
    assert_eq!(y_test.dims(), &[10000]);
    assert_eq!(y_train.data()[0], 5.0);
    assert_eq!(y_test.data()[0], 7.0);
    assert_eq!(class_counts(&y_train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);

    for x in [&x_train, &x_test] {
        let (min, max) = x.data().iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((min, max), (0.0, 255.0), "raw, unscaled pixel values");
        assert!(x.data().iter().all(|v| v.fract() == 0.0));
    }
    let mean = x_train.data().iter().map(|&v| f64::from(v)).sum::<f64>() / x_train.data().len() as f64;
    assert!((mean - 33.318).abs() < 1e-2, "mean training pixel {mean}");
}

#[test]
fn real_fashion_mnist_when_installed() {
    let dir = std::env::var_os("FASHION_MNIST_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    if !dir.is_dir() {
        eprintln!("note: Fashion-MNIST not found (apt-get install dataset-fashion-mnist); test skipped");
        return;
    }
    let ((x_train, y_train), (x_test, y_test)) = load(&dir);
    assert_eq!(x_train.dims(), &[60000, 28, 28]);
    assert_eq!(x_test.dims(), &[10000, 28, 28]);
    assert_eq!(class_counts(&y_train), [6000; 10]);
    assert_eq!(class_counts(&y_test), [1000; 10]);
    assert_eq!(y_train.data()[0], 9.0, "the first training item is an ankle boot");
    assert_eq!(y_test.data()[0], 9.0);
}
