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

#[test]
fn weights_come_and_go_in_keras_order_and_layouts() {
    let mut m = nn::zoo::model4(&nn::device::cpu(), 1).unwrap();
    let w = m.get_weights().unwrap();
    let shapes: Vec<&[usize]> = w.iter().map(|a| a.dims()).collect();
    assert_eq!(shapes, [&[5, 5, 1, 20][..], &[20], &[2880, 100], &[100], &[100, 10], &[10]]);
    // Set back doubled: every weight doubles; a wrong shape changes nothing.
    let doubled: Vec<nn::Array> = w.iter().map(|a| a.clone().map(|v| 2.0 * v)).collect();
    m.set_weights(&doubled).unwrap();
    assert_eq!(m.get_weights().unwrap(), doubled);
    let mut wrong = doubled.clone();
    wrong[2] = nn::Array::zeros([100, 2880]);
    let err = m.set_weights(&wrong).unwrap_err().to_string();
    assert_eq!(
        err,
        "bad data: model sequential_1: weight dense_1/kernel has shape [2880, 100], got [100, 2880]"
    );
    assert_eq!(m.get_weights().unwrap(), doubled);
    assert!(m.set_weights(&doubled[..5]).unwrap_err().to_string().contains("has 6 weight arrays"));
    // One layer's, by name.
    let dense = m.get_layer("dense_2").unwrap();
    assert_eq!((dense.class_name(), dense.output_shape(), dense.count_params()), ("Dense", &[10][..], 1_010));
    assert_eq!(dense.get_weights().unwrap(), doubled[4..]);
    let err = m.get_layer("dense_9").unwrap_err().to_string();
    assert!(
        err.contains("no layer named 'dense_9' in model sequential_1 (layers: conv2d_1, max_pooling2d_1"),
        "{err}"
    );
}

#[test]
fn a_sequential_takes_a_user_loss_and_evaluate_defaults_to_keras_batch() {
    use nn::losses::OutputLoss;
    use nn::{FitOptions, Loss, Sgd};
    let x = nn::Array::new((0..40).map(|i| (i % 7) as f32 / 7.0).collect(), [8, 5]).unwrap();
    let y = nn::Array::new((0..16).map(|i| (i % 3) as f32 / 3.0).collect(), [8, 2]).unwrap();
    let train = |loss: OutputLoss| {
        let mut m = Sequential::with_device(&nn::device::cpu()).seed(4);
        m.add(Dense::new(2).input_shape([5])).unwrap();
        m.compile(loss, Sgd::new(0.1), &[]).unwrap();
        m.fit(&x, &y, &FitOptions::new().epochs(2).batch_size(4).verbose(0)).unwrap();
        let w = m.get_weights().unwrap();
        (w, m.evaluate(&x, &y, None).unwrap(), m.evaluate(&x, &y, 32).unwrap())
    };
    let (builtin, scores, batch_32) = train(Loss::MeanAbsoluteError.into());
    let (custom, _, _) = train(OutputLoss::custom(|t, p| p.sub(t)?.abs()?.mean_axis(-1, false)));
    assert_eq!(builtin, custom, "a closure of the same formula trains the same");
    assert_eq!(scores, batch_32, "no batch size is Keras' 32");
    assert_eq!(scores.keys().collect::<Vec<_>>(), ["loss"]);
}
