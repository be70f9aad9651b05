//! `save_weights` / `load_weights`: the file's names and layouts, round trips, and a typed error
//! naming the file and the first mismatch for each way a file can fail to fit.

use std::path::Path;

use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use nn::{Activation, Error, SavingError, Sequential};
use safetensors::{Dtype, SafeTensors};

/// conv2d_1 (3x3, 1 -> 4) -> max_pooling2d_1 -> flatten_1 -> dense_1 (16 -> 3).
fn model(seed: u64, dense_units: usize, dense_bias: bool) -> Sequential {
    let mut m = Sequential::new().seed(seed);
    m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).input_shape([6, 6, 1])).unwrap();
    m.add(MaxPooling2D::new()).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(dense_units).use_bias(dense_bias).activation(Activation::Softmax)).unwrap();
    m
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect()
}

fn load_err(m: &mut Sequential, path: &Path) -> SavingError {
    match m.load_weights(path) {
        Err(Error::Saving(e)) => e,
        other => panic!("expected a saving error, got {other:?}"),
    }
}

/// Writes a safetensors file of the given F32 tensors (name, shape), filled with 0.5.
fn write_tensors(path: &Path, tensors: &[(&str, Vec<usize>, Dtype)]) {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape, dtype)| vec![0u8; shape.iter().product::<usize>() * dtype.bitsize() / 8])
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape, dtype), bytes)| {
            (*name, safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn file_has_keras_names_layouts_and_little_endian_f32_values() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.safetensors");
    let m = model(7, 3, true);
    m.save_weights(&path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort_unstable();
    assert_eq!(names, ["conv2d_1/bias", "conv2d_1/kernel", "dense_1/bias", "dense_1/kernel"]);
    // HWIO convolution kernel, [in, out] dense kernel, as Keras stores them.
    let expect = [
        ("conv2d_1/kernel", vec![3, 3, 1, 4]),
        ("conv2d_1/bias", vec![4]),
        ("dense_1/kernel", vec![16, 3]),
        ("dense_1/bias", vec![3]),
    ];
    for ((name, shape), values) in expect.iter().zip(weights(&m)) {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let read: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(read, values, "{name}");
    }
}

#[test]
fn round_trip_restores_weights_and_predictions_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.safetensors");
    let mut saved = model(1, 3, true);
    saved.save_weights(&path).unwrap();
    let mut loaded = model(2, 3, true);
    assert_ne!(weights(&loaded), weights(&saved));
    loaded.load_weights(&path).unwrap();
    assert_eq!(weights(&loaded), weights(&saved));
    // Loaded weights are trainable variables again.
    assert!(loaded.trainable_variables().iter().all(|v| v.is_variable()));

    let x = nn::Array::new((0..72).map(|i| (i % 7) as f32 / 7.0).collect(), [2, 6, 6, 1]).unwrap();
    let (a, b) = (saved.predict(&x, 2).unwrap(), loaded.predict(&x, 2).unwrap());
    assert_eq!(a, b);
    // Saving what was loaded gives the same file.
    let again = tmp.path().join("again.safetensors");
    loaded.save_weights(&again).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn missing_tensor_is_named_with_the_shape_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("no-bias.safetensors");
    model(1, 3, false).save_weights(&path).unwrap();
    let mut m = model(2, 3, true);
    let before = weights(&m);
    let err = load_err(&mut m, &path);
    assert!(
        matches!(&err, SavingError::MissingTensor { name, expected_shape, .. }
            if name == "dense_1/bias" && expected_shape == &[3]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{}: no tensor 'dense_1/bias' (the model needs one of shape [3])", path.display())
    );
    assert_eq!(weights(&m), before, "a failed load changes nothing, not even the layers that fit");
}

#[test]
fn unexpected_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("with-bias.safetensors");
    model(1, 3, true).save_weights(&path).unwrap();
    let err = load_err(&mut model(2, 3, false), &path);
    assert!(
        matches!(&err, SavingError::UnexpectedTensor { name, shape, .. } if name == "dense_1/bias" && shape == &[3])
    );
    assert_eq!(
        err.to_string(),
        format!("{}: tensor 'dense_1/bias' of shape [3] matches no variable of the model", path.display())
    );
}

#[test]
fn wrong_shape_names_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("three-units.safetensors");
    model(1, 3, true).save_weights(&path).unwrap();
    let err = load_err(&mut model(2, 5, true), &path);
    assert!(
        matches!(&err, SavingError::ShapeMismatch { name, expected, found, .. }
            if name == "dense_1/kernel" && expected == &[16, 5] && found == &[16, 3]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{}: tensor 'dense_1/kernel' has shape [16, 3], the model needs [16, 5]", path.display())
    );
}

#[test]
fn wrong_dtype_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f64.safetensors");
    write_tensors(
        &path,
        &[
            ("conv2d_1/kernel", vec![3, 3, 1, 4], Dtype::F64),
            ("conv2d_1/bias", vec![4], Dtype::F32),
            ("dense_1/kernel", vec![16, 3], Dtype::F32),
            ("dense_1/bias", vec![3], Dtype::F32),
        ],
    );
    let err = load_err(&mut model(2, 3, true), &path);
    assert!(
        matches!(&err, SavingError::DtypeMismatch { name, found, .. } if name == "conv2d_1/kernel" && found == "F64")
    );
    assert_eq!(
        err.to_string(),
        format!("{}: tensor 'conv2d_1/kernel' has element type F64, the model needs F32", path.display())
    );
}

#[test]
fn a_file_written_by_another_tool_loads() {
    // Same names and shapes from a plain safetensors writer: the format is the contract.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("other-tool.safetensors");
    write_tensors(
        &path,
        &[
            ("dense_1/bias", vec![3], Dtype::F32),
            ("conv2d_1/kernel", vec![3, 3, 1, 4], Dtype::F32),
            ("dense_1/kernel", vec![16, 3], Dtype::F32),
            ("conv2d_1/bias", vec![4], Dtype::F32),
        ],
    );
    let mut m = model(2, 3, true);
    m.load_weights(&path).unwrap();
    assert!(weights(&m).iter().flatten().all(|&v| v == 0.0));
}

#[test]
fn unbuilt_model_cannot_save_or_load() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.safetensors");
    model(1, 3, true).save_weights(&path).unwrap();
    let mut unbuilt = Sequential::new();
    unbuilt.add(Dense::new(3)).unwrap();
    let err = load_err(&mut unbuilt, &path);
    assert!(matches!(err, SavingError::NotBuilt { .. }), "{err:?}");
    assert!(err.to_string().contains("the model is not built yet"), "{err}");
    let other = tmp.path().join("unbuilt.safetensors");
    let err = unbuilt.save_weights(&other).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::NotBuilt { .. })), "{err:?}");
    assert!(!other.exists());
}

#[test]
fn missing_file_and_garbage_are_typed_errors_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = model(1, 3, true);
    let missing = tmp.path().join("nope.safetensors");
    let err = load_err(&mut m, &missing);
    assert!(
        matches!(&err, SavingError::Io { action: "read", source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert!(err.to_string().starts_with(&format!("{}: cannot read: ", missing.display())), "{err}");

    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a safetensors file at all").unwrap();
    let err = load_err(&mut m, &garbage);
    assert!(matches!(err, SavingError::Format { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}: not a valid safetensors file: ", garbage.display())));

    // A valid file cut short: the header's offsets no longer fit the data.
    let good = tmp.path().join("good.safetensors");
    m.save_weights(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = tmp.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    assert!(matches!(load_err(&mut m, &cut), SavingError::Format { .. }));
}

#[test]
fn saving_into_a_missing_folder_names_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("missing-dir").join("w.safetensors");
    let err = model(1, 3, true).save_weights(&path).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::Io { .. })), "{err:?}");
    assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
}

#[test]
fn named_layers_use_their_names() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("named.safetensors");
    let mut m = Sequential::new();
    m.add(Dense::new(2).name("encoder").input_shape([3])).unwrap();
    m.add(Dense::new(1)).unwrap();
    m.save_weights(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut names =
        SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(String::from).collect::<Vec<_>>();
    names.sort();
    assert_eq!(names, ["dense_1/bias", "dense_1/kernel", "encoder/bias", "encoder/kernel"]);
}
