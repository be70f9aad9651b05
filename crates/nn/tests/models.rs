//! Model construction: Keras' parameter counts and summary, and shape errors at build time.

use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use nn::{Activation, Sequential};

#[test]
fn model4_summary_matches_keras() {
    let m = nn::zoo::model4(&nn::device::cpu(), 1).unwrap();
    assert_eq!(m.layer_param_counts(), vec![520, 0, 0, 288_100, 1_010]);
    assert_eq!(m.count_params(), 289_630);
    assert_eq!(m.layer_names(), &["conv2d_1", "max_pooling2d_1", "flatten_1", "dense_1", "dense_2"]);
    let s = m.summary().unwrap();
    for line in [
        "conv2d_1 (Conv2D)            (None, 24, 24, 20)        520",
        "max_pooling2d_1 (MaxPooling2D) (None, 12, 12, 20)       0",
        "flatten_1 (Flatten)          (None, 2880)              0",
        "dense_1 (Dense)              (None, 100)               288,100",
        "dense_2 (Dense)              (None, 10)                1,010",
        "Total params: 289,630",
        "Trainable params: 289,630",
        "Non-trainable params: 0",
    ] {
        let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(squeeze(&s).contains(&squeeze(line)), "missing {line:?} in\n{s}");
    }
}

#[test]
fn model5_parameter_counts_match_keras() {
    let m = nn::zoo::model5(&nn::device::cpu(), 1).unwrap();
    assert_eq!(m.layer_param_counts(), vec![520, 0, 7_240, 0, 0, 100_100, 1_010]);
    assert_eq!(m.count_params(), 108_870);
    assert_eq!(m.output_shape().unwrap(), &[10]);
    assert!(m.summary().unwrap().contains("(None, 5, 5, 40)"));
}

#[test]
fn model1_parameter_count() {
    let m = nn::zoo::model1(100, &nn::device::cpu(), 1).unwrap();
    assert_eq!(m.count_params(), 784 * 100 + 100 + 100 * 10 + 10);
}

#[test]
fn glorot_uniform_stays_in_its_limit_and_biases_are_zero() {
    let m = nn::zoo::model4(&nn::device::cpu(), 3).unwrap();
    let vars = m.trainable_variables();
    let kernel = vars[0].to_vec().unwrap();
    let limit = (6.0f32 / (25.0 + 500.0)).sqrt();
    assert!(kernel.iter().all(|v| v.abs() <= limit));
    // Uniform on [-l, l] has standard deviation l / sqrt(3).
    let std = (kernel.iter().map(|v| v * v).sum::<f32>() / kernel.len() as f32).sqrt();
    assert!((std - limit / 3f32.sqrt()).abs() < 0.15 * limit, "std {std}");
    assert!(vars[1].to_vec().unwrap().iter().all(|&b| b == 0.0));
}

#[test]
fn same_seed_same_weights() {
    let a = nn::zoo::model5(&nn::device::cpu(), 9).unwrap();
    let b = nn::zoo::model5(&nn::device::cpu(), 9).unwrap();
    let c = nn::zoo::model5(&nn::device::cpu(), 10).unwrap();
    let w = |m: &Sequential| m.trainable_variables()[2].to_vec().unwrap();
    assert_eq!(w(&a), w(&b));
    assert_ne!(w(&a), w(&c));
}

#[test]
fn shape_mismatch_is_reported_when_the_layer_is_added() {
    let mut m = Sequential::new();
    m.add(Conv2D::new(8, (5, 5)).input_shape([4, 4, 1])).unwrap_err();
    let mut m = Sequential::new();
    m.add(Dense::new(10).input_shape([784])).unwrap();
    let err = m.add(MaxPooling2D::new()).unwrap_err().to_string();
    assert!(err.contains("max_pooling2d_1 (MaxPooling2D)") && err.contains("[10]"), "{err}");
    let mut m = Sequential::new();
    m.add(Conv2D::new(8, (3, 3)).activation(Activation::Relu).input_shape([6, 6, 1])).unwrap();
    m.add(Conv2D::new(8, (3, 3))).unwrap();
    let err = m.add(Conv2D::new(8, (3, 3))).unwrap_err().to_string();
    assert!(err.contains("conv2d_3") && err.contains("larger than the input"), "{err}");
}

#[test]
fn deferred_build_from_data_shape() {
    let mut m = Sequential::new();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3)).unwrap();
    assert!(m.summary().is_err());
    m.build(&[2, 5]).unwrap();
    assert_eq!(m.count_params(), 33);
    assert!(m.build(&[3, 5]).is_err());
}
