//! Keras 3 `.keras` files in and out: the fixtures Keras wrote (`benches/keras/keras_files.py`)
//! load and predict as Keras did, files written here read back identically and have Keras'
//! layout, and malformed files give typed errors.
//!
//! `NN_KERAS_OUT=DIR cargo test -p mnist-rs-nn --test keras_files` also leaves `DIR/model4.keras` and
//! `DIR/model4.txt` (inputs and nn's predictions; likewise `two.keras` and `two.txt`, the
//! functional fixture written again here), which
//! `python benches/keras/keras_files.py --check DIR/model4.keras DIR/model4.txt` checks with Keras.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nn::saving::zip;
use nn::{Array, Error, Model, SavingError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The bytes of entry `name` of the `.keras` archive `archive`.
fn entry(archive: &[u8], name: &str) -> Vec<u8> {
    zip::Archive::new(archive).unwrap().read(name, u64::MAX).unwrap()
}

/// The blocks of `keras-files.txt`: `name rows cols`, then `rows` lines of `cols` numbers.
fn blocks(text: &str) -> HashMap<String, (usize, Vec<f32>)> {
    let mut out = HashMap::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let mut parts = head.split_whitespace();
        let name = parts.next().unwrap().to_string();
        let rows: usize = parts.next().unwrap().parse().unwrap();
        let values = (0..rows)
            .flat_map(|_| lines.next().unwrap().split_whitespace().map(|v| v.parse::<f32>().unwrap()))
            .collect();
        out.insert(name, (rows, values));
    }
    out
}

fn write_blocks(out: &mut String, name: &str, arrays: &[&Array], kind: &str) {
    for (i, a) in arrays.iter().enumerate() {
        let rows = a.dims()[0];
        let cols = a.data().len() / rows;
        out.push_str(&format!("{name}.{kind}{i} {rows} {cols}\n"));
        for row in a.data().chunks(cols) {
            let row: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
            out.push_str(&(row.join(" ") + "\n"));
        }
    }
}

fn fixture() -> HashMap<String, (usize, Vec<f32>)> {
    blocks(&std::fs::read_to_string(data("keras-files.txt")).unwrap())
}

fn input(blocks: &HashMap<String, (usize, Vec<f32>)>, name: &str, shape: &[usize]) -> Array {
    let (rows, values) = &blocks[name];
    Array::new(values.clone(), [&[*rows][..], shape].concat()).unwrap()
}

fn assert_close(ours: &[f32], keras: &[f32], what: &str) {
    assert_eq!(ours.len(), keras.len(), "{what}");
    let worst = ours.iter().zip(keras).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{what}: largest |nn - keras| = {worst}");
}

fn cpu() -> tensor::Device {
    nn::device::cpu()
}

#[test]
fn keras_model4_predicts_as_keras() {
    let model = Model::load_keras_on(data("keras-model4.keras"), &cpu()).unwrap();
    let names: Vec<String> = model.layers().iter().map(|l| l.name().to_string()).collect();
    assert_eq!(names, ["conv2d", "max_pooling2d", "flatten", "dense", "dense_1"]);
    assert_eq!(model.count_params(), 289_630);
    let b = fixture();
    let x = input(&b, "model4.input0", &[28, 28, 1]);
    let ours = model.predict(&x, None).unwrap();
    assert_close(ours[0].data(), &b["model4.output0"].1, "model4");
    // `Model::load` reads a `.keras` path the same way.
    let again = Model::load_on(data("keras-model4.keras"), &cpu()).unwrap();
    assert_eq!(again.predict(&x, None).unwrap()[0].data(), ours[0].data());
}

#[test]
fn keras_two_input_functional_model_predicts_as_keras() {
    let model = Model::load_keras_on(data("keras-two-inputs.keras"), &cpu()).unwrap();
    assert_eq!(model.input_names(), ["a", "b"]);
    assert_eq!(model.output_names(), ["class", "score"]);
    let b = fixture();
    let (xa, xb) = (input(&b, "two_inputs.input0", &[6]), input(&b, "two_inputs.input1", &[4]));
    let ours = model.predict(&[&xa, &xb], None).unwrap();
    assert_close(ours[0].data(), &b["two_inputs.output0"].1, "two_inputs class");
    assert_close(ours[1].data(), &b["two_inputs.output1"].1, "two_inputs score");
    // The file was saved compiled: its Adam state (ignored here) is in it.
    let h5 = entry(&std::fs::read(data("keras-two-inputs.keras")).unwrap(), "model.weights.h5");
    let h5 = nn::saving::hdf5::File::from_bytes(h5).unwrap();
    assert_eq!(h5.dataset("optimizer/vars/10").unwrap().shape(), [8, 4]);
}

/// A `.keras` file this library wrote before it had its own HDF5 writer (through `hdf5-pure`:
/// superblock 3, version 2 object headers, links in the headers) still loads.
#[test]
fn files_written_through_hdf5_pure_still_load() {
    let model = Model::load_keras_on(data("nn-hdf5-pure-two-inputs.keras"), &cpu()).unwrap();
    let b = fixture();
    let (xa, xb) = (input(&b, "two_inputs.input0", &[6]), input(&b, "two_inputs.input1", &[4]));
    let ours = model.predict(&[&xa, &xb], None).unwrap();
    assert_close(ours[0].data(), &b["two_inputs.output0"].1, "two_inputs class");
    assert_close(ours[1].data(), &b["two_inputs.output1"].1, "two_inputs score");
}

/// Model4 initialised here (seed 7), written as `.keras`, and its inputs and predictions.
fn model4_written(dir: &Path) -> (PathBuf, Array, Vec<Array>) {
    let mut model = nn::zoo::model4(&cpu(), 7).unwrap();
    let x =
        Array::new((0..3 * 784).map(|i| ((i * 37) % 256) as f32 / 255.0).collect(), [3, 28, 28, 1]).unwrap();
    let path = dir.join("model4.keras");
    model.model().unwrap().save_keras(&path).unwrap();
    let predictions = model.predict(&x, None).unwrap();
    (path, x, predictions)
}

#[test]
fn a_written_file_reads_back_identically() {
    let dir = match std::env::var_os("NN_KERAS_OUT") {
        Some(dir) => PathBuf::from(dir),
        None => tempfile::tempdir().unwrap().keep(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let (path, x, predictions) = model4_written(&dir);
    let mut text = String::new();
    write_blocks(&mut text, "model4", &[&x], "input");
    write_blocks(&mut text, "model4", &predictions.iter().collect::<Vec<_>>(), "output");
    std::fs::write(dir.join("model4.txt"), text).unwrap();
    let loaded = Model::load_keras_on(&path, &cpu()).unwrap();
    assert_eq!(loaded.predict(&x, None).unwrap()[0].data(), predictions[0].data());

    // The functional fixture, written again here, also comes back the same.
    let two = Model::load_keras_on(data("keras-two-inputs.keras"), &cpu()).unwrap();
    let copy = dir.join("two.keras");
    two.save(&copy).unwrap();
    let back = Model::load_on(&copy, &cpu()).unwrap();
    let xa = Array::new((0..12).map(|i| (i as f32 * 0.37).sin()).collect(), [2, 6]).unwrap();
    let xb = Array::new((0..8).map(|i| (i as f32 * 0.91).cos()).collect(), [2, 4]).unwrap();
    let (p, q) = (two.predict(&[&xa, &xb], None).unwrap(), back.predict(&[&xa, &xb], None).unwrap());
    assert_eq!((p[0].data(), p[1].data()), (q[0].data(), q[1].data()));
    let mut text = String::new();
    write_blocks(&mut text, "two_inputs", &[&xa, &xb], "input");
    write_blocks(&mut text, "two_inputs", &[&p[0], &p[1]], "output");
    std::fs::write(dir.join("two.txt"), text).unwrap();
    // The same model gives the same bytes.
    let copy2 = dir.join("two-again.keras");
    back.save_keras(&copy2).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&copy2).unwrap());
}

#[test]
fn a_written_file_has_keras_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ..) = model4_written(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let archive = zip::Archive::new(&bytes).unwrap();
    assert_eq!(archive.names().collect::<Vec<_>>(), ["metadata.json", "config.json", "model.weights.h5"]);
    let read = |name: &str| entry(&bytes, name);
    let config: serde_json::Value = serde_json::from_slice(&read("config.json")).unwrap();
    assert_eq!(config["class_name"], "Sequential");
    let classes: Vec<&str> = config["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["InputLayer", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]);
    assert_eq!(config["config"]["layers"][0]["config"]["batch_shape"], serde_json::json!([null, 28, 28, 1]));
    let metadata: serde_json::Value = serde_json::from_slice(&read("metadata.json")).unwrap();
    assert_eq!(metadata["keras_version"], nn::saving::KERAS_VERSION);

    let h5 = nn::saving::hdf5::File::from_bytes(read("model.weights.h5")).unwrap();
    let shapes = [
        ("layers/conv2d/vars/0", vec![5, 5, 1, 20]),
        ("layers/conv2d/vars/1", vec![20]),
        ("layers/dense/vars/0", vec![2880, 100]),
        ("layers/dense/vars/1", vec![100]),
        ("layers/dense_1/vars/0", vec![100, 10]),
        ("layers/dense_1/vars/1", vec![10]),
    ];
    for (name, shape) in shapes {
        assert_eq!(h5.dataset(name).unwrap().shape(), shape, "{name}");
    }
    let groups = h5.group("layers").unwrap().groups().unwrap();
    assert_eq!(groups, ["conv2d", "dense", "dense_1", "flatten", "max_pooling2d"]);
    assert!(h5.group("layers/flatten/vars").unwrap().datasets().unwrap().is_empty());
    // Each `vars` group carries its layer's name, as Keras writes it.
    let name = |group: &str| h5.group(group).unwrap().attr_string("name").unwrap().unwrap();
    assert_eq!(name("layers/dense/vars"), "dense_1");
    assert_eq!(name("vars"), "sequential_1");
}

/// The fixture's entries with `edit` applied to them, zipped again (deflated, so the loader's
/// inflating is exercised too).
fn edited(edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let original = std::fs::read(data("keras-two-inputs.keras")).unwrap();
    let archive = zip::Archive::new(&original).unwrap();
    let mut out = zip::Writer::new();
    for file in archive.entries() {
        let bytes = archive.read_entry(file, u64::MAX).unwrap();
        if let Some(bytes) = edit(file.name(), bytes) {
            out.add(file.name(), &bytes, zip::Method::Deflated).unwrap();
        }
    }
    out.finish().unwrap()
}

fn load_bytes(bytes: &[u8]) -> (PathBuf, nn::Result<Model>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("bad.keras");
    std::fs::write(&path, bytes).unwrap();
    let result = Model::load_keras_on(&path, &cpu());
    (path, result)
}

#[test]
fn malformed_files_give_typed_errors() {
    let whole = std::fs::read(data("keras-two-inputs.keras")).unwrap();
    let (path, result) = load_bytes(&whole[..whole.len() / 2]);
    match result.map(|_| ()).unwrap_err() {
        Error::Saving(SavingError::KerasFile { path: p, part: "zip", .. }) => assert_eq!(p, path),
        other => panic!("truncated zip: {other:?}"),
    }

    let (_, result) = load_bytes(&edited(|name, b| (name != "model.weights.h5").then_some(b)));
    let err = result.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::KerasFile { part: "zip", .. })), "{err:?}");
    assert!(err.to_string().contains("model.weights.h5"), "{err}");

    let lstm = |name: &str, b: Vec<u8>| {
        Some(if name == "config.json" {
            String::from_utf8(b).unwrap().replace("\"Dense\"", "\"LSTM\"").into()
        } else {
            b
        })
    };
    let (_, result) = load_bytes(&edited(lstm));
    match result.map(|_| ()).unwrap_err() {
        Error::Saving(SavingError::UnknownLayer { layer, class, .. }) => {
            assert_eq!((layer.as_str(), class.as_str()), ("dense_a", "LSTM"))
        }
        other => panic!("unknown class: {other:?}"),
    }

    let (_, result) =
        load_bytes(&edited(|name, b| Some(if name == "config.json" { b"{\"class_".to_vec() } else { b })));
    let err = result.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::KerasFile { part: "config.json", .. })), "{err:?}");

    let (_, result) = load_bytes(&edited(|name, b| {
        Some(if name == "model.weights.h5" { b[..b.len() / 3].to_vec() } else { b })
    }));
    let err = result.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::KerasFile { part: "model.weights.h5", .. })), "{err:?}");

    // 64-bit floats are named as such.
    let (_, result) = load_bytes(&edited(|name, mut b| {
        if name == "model.weights.h5" {
            let f32_type = [0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0];
            let f64_type = [0x11, 0x20, 63, 0, 8, 0, 0, 0, 0, 0, 64, 0, 52, 11, 0, 52, 0xFF, 3, 0, 0];
            let at = b.windows(20).position(|w| w == f32_type).unwrap();
            b[at..at + 20].copy_from_slice(&f64_type);
        }
        Some(b)
    }));
    match result.map(|_| ()).unwrap_err() {
        Error::Saving(SavingError::DtypeMismatch { found, .. }) => assert_eq!(found, "F64"),
        other => panic!("f64 weights: {other:?}"),
    }

    // Weights of another shape are named by dataset and layer.
    let model4 = std::fs::read(data("keras-model4.keras")).unwrap();
    let h5 = entry(&model4, "model.weights.h5");
    let (_, result) =
        load_bytes(&edited(|name, b| Some(if name == "model.weights.h5" { h5.clone() } else { b })));
    let err = result.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::ShapeMismatch { .. })), "{err:?}");
    assert!(err.to_string().contains("layers/dense/vars/0 (dense_a/kernel)"), "{err}");
}

#[test]
fn corrupted_weights_never_panic() {
    let h5 = entry(&std::fs::read(data("keras-two-inputs.keras")).unwrap(), "model.weights.h5");
    // Flip bytes across the metadata (the first few KiB: superblock, headers, heaps, B-trees).
    for at in (0..h5.len().min(6000)).step_by(7) {
        let mut bad = h5.clone();
        bad[at] ^= 0xA5;
        let (_, result) =
            load_bytes(&edited(|name, b| Some(if name == "model.weights.h5" { bad.clone() } else { b })));
        // Either an error or (a flip in unused bytes) a model; never a panic or an abort.
        let _ = result;
    }
}

/// 260 small `Dense` layers: the file's `layers` group has 260 members, more than one B-tree
/// node of symbol table nodes holds (256), so its B-tree has two levels.
fn deep(device: &tensor::Device) -> Model {
    let mut model = nn::Sequential::with_device(device).seed(5);
    model.add(nn::layers::Dense::new(3).activation(nn::Activation::Tanh).input_shape([4])).unwrap();
    for _ in 0..259 {
        model.add(nn::layers::Dense::new(3).activation(nn::Activation::Tanh)).unwrap();
    }
    model.into_model().unwrap()
}

/// The zoo's other models (model5; model6 with augmentation, BatchNormalization and global
/// pooling; the functional two-head model) and a model of 260 layers read back identically;
/// with `NN_KERAS_OUT` they are left there with their predictions for the Keras check.
#[test]
fn zoo_models_read_back_identically() {
    let dir = match std::env::var_os("NN_KERAS_OUT") {
        Some(dir) => PathBuf::from(dir),
        None => tempfile::tempdir().unwrap().keep(),
    };
    let dev = cpu();
    let pixels = |n: usize, side: usize| {
        let values = (0..n * side * side).map(|i| ((i * 53) % 256) as f32 / 255.0).collect();
        Array::new(values, [n, side, side, 1]).unwrap()
    };
    let models = [
        ("model5", nn::zoo::model5(&dev, 3).unwrap().into_model().unwrap(), vec![pixels(2, 28)]),
        ("model6", nn::zoo::model6(&dev, 3).unwrap().into_model().unwrap(), vec![pixels(2, 28)]),
        (
            "two_heads",
            nn::zoo::two_heads(&[10, 10, 1], 10, &dev, 3).unwrap(),
            vec![
                pixels(2, 10),
                Array::new((0..20).map(|i| (i % 10 == 3) as u8 as f32).collect(), [2, 10]).unwrap(),
            ],
        ),
        (
            "deep",
            deep(&dev),
            vec![Array::new((0..8).map(|i| i as f32 * 0.3 - 1.0).collect(), [2, 4]).unwrap()],
        ),
    ];
    for (name, mut model, x) in models {
        // Every weight moved off its initial value (BatchNormalization's beta and moving mean
        // start at 0, its gamma and variance at 1), so weights read into the wrong slot show.
        let mut k = 0usize;
        let moved: Vec<Array> = model
            .get_weights()
            .unwrap()
            .iter()
            .map(|w| {
                let values = w.data().iter().map(|v| {
                    k += 1;
                    v * (1.0 + 0.5 * (k as f32).sin()) + 0.05 * (k as f32 * 0.7).cos()
                });
                Array::new(values.collect(), w.dims().to_vec()).unwrap()
            })
            .collect();
        model.set_weights(&moved).unwrap();
        let x: Vec<&Array> = x.iter().collect();
        let path = dir.join(format!("{name}.keras"));
        model.save_keras(&path).unwrap();
        let ours = model.predict(&x[..], None).unwrap();
        let back = Model::load_keras_on(&path, &dev).unwrap();
        let again = back.predict(&x[..], None).unwrap();
        for (a, b) in ours.iter().zip(&again) {
            assert_eq!(a.data(), b.data(), "{name}");
        }
        let mut text = String::new();
        write_blocks(&mut text, name, &x, "input");
        write_blocks(&mut text, name, &ours.iter().collect::<Vec<_>>(), "output");
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
}
