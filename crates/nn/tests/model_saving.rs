//! `Sequential::save` / `Sequential::load`: one file rebuilds the model (architecture and
//! weights) without the code that defined it.

use nn::layers::{ActivationLayer, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Reshape};
use nn::{Activation, Array, Error, Padding, SavingError, Sequential};

/// Every layer kind, with non-default settings where a layer has them.
fn model() -> Sequential {
    let mut m = Sequential::new().seed(42);
    m.add(
        Conv2D::new(3, (3, 2))
            .strides((1, 2))
            .padding(Padding::Same)
            .activation(Activation::Relu)
            .input_shape([8, 8, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new()).unwrap();
    m.add(AveragePooling2D::new().pool_size((2, 1)).strides((1, 1))).unwrap();
    m.add(Dropout::new(0.25)).unwrap();
    m.add(Flatten::new().name("flat")).unwrap();
    m.add(Reshape::new([6, 3])).unwrap();
    m.add(Dense::new(4).use_bias(false).activation(Activation::Tanh)).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(ActivationLayer::new(Activation::Sigmoid)).unwrap();
    m.add(Dense::new(2).activation(Activation::Softmax)).unwrap();
    m
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect()
}

#[test]
fn load_rebuilds_architecture_and_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    let mut original = model();
    original.save(&path).unwrap();

    let mut loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.layer_names(), original.layer_names());
    assert_eq!(loaded.summary().unwrap(), original.summary().unwrap());
    assert_eq!(weights(&loaded), weights(&original));
    let x = Array::new((0..128).map(|i| ((i * 37) % 11) as f32 / 11.0).collect(), [2, 8, 8, 1]).unwrap();
    assert_eq!(loaded.predict(&x, 2).unwrap(), original.predict(&x, 2).unwrap());

    // The architecture is readable JSON in the file's metadata.
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let arch: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()[nn::saving::ARCHITECTURE_KEY]).unwrap();
    assert_eq!(arch["input_shape"], serde_json::json!([8, 8, 1]));
    assert_eq!(arch["layers"][0]["class_name"], "Conv2D");
    assert_eq!(
        arch["layers"][0]["config"],
        serde_json::json!({"filters": 3, "kernel_size": [3, 2], "strides": [1, 2], "padding": "same",
                           "activation": "relu", "use_bias": true})
    );
    assert_eq!(arch["layers"][4]["name"], "flat");
    // And the weights in it load into the model built in code, as with save_weights.
    let mut in_code = model();
    in_code.load_weights(&path).unwrap();
}

#[test]
fn a_weights_only_file_says_to_use_load_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("weights.safetensors");
    model().save_weights(&path).unwrap();
    let err = Sequential::load(&path).err().expect("no architecture in the file");
    assert!(matches!(err, Error::Saving(SavingError::Architecture { .. })), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot rebuild the model: the file holds weights only (no architecture): build the model \
             in code and call load_weights",
            path.display()
        )
    );
}

#[test]
fn a_bad_architecture_names_the_layer_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    model().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Same-length edits of the JSON in the header keep the file otherwise valid.
    let edit = |from: &str, to: &str| {
        assert_eq!(from.len(), to.len());
        let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).expect("text in the header");
        let mut edited_bytes = bytes.clone();
        edited_bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        let edited = tmp.path().join("edited.safetensors");
        std::fs::write(&edited, edited_bytes).unwrap();
        Sequential::load(&edited).err().expect("the edit breaks the architecture").to_string()
    };
    let msg = edit(r#"\"filters\":3"#, r#"\"filters\":x"#);
    assert!(msg.contains("the architecture is not valid JSON"), "{msg}");
    let msg = edit(r#"\"units\":4"#, r#"\"units\":-"#);
    assert!(msg.contains("the architecture is not valid JSON"), "{msg}");
    let msg = edit(r#"\"padding\":\"same\""#, r#"\"padding\":\"some\""#);
    assert!(
        msg.ends_with(
            "cannot rebuild the model: layer 1: 'conv2d_1' (Conv2D): config field 'padding' is missing or \
             not \"valid\" or \"same\""
        ),
        "{msg}"
    );
    let msg = edit(r#"\"class_name\":\"Dropout\""#, r#"\"class_name\":\"Dropuot\""#);
    assert!(msg.ends_with("layer 4: unknown layer class 'Dropuot' (layer 'dropout_1')"), "{msg}");
}

#[test]
fn unbuilt_model_cannot_be_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = Sequential::new();
    m.add(Dense::new(2)).unwrap();
    let err = m.save(tmp.path().join("m.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Saving(SavingError::NotBuilt { .. })), "{err:?}");
}
