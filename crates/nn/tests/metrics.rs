//! Metrics against Keras 3 (`benches/keras/metrics.py`, recorded in
//! `tests/data/keras-metrics.txt`): `evaluate` of a model whose output is the script's
//! predictions (a softmax or sigmoid of its logits), in batches of 16 as the script updates
//! Keras' metrics; names in logs and `History`; saving and the refused settings.

use nn::layers::ActivationLayer;
use nn::{Activation, Array, Loss, Metric, Sequential, Sgd};

fn keras(tag: &str) -> f32 {
    let text = include_str!("data/keras-metrics.txt");
    let line = text.lines().find(|l| l.starts_with(&format!("{tag} "))).unwrap_or_else(|| panic!("{tag}"));
    line[tag.len()..].trim().parse().unwrap()
}

/// The script's categorical logits and one-hot labels.
fn categorical() -> (Array, Array) {
    let mut z = Vec::new();
    let mut y = Vec::new();
    for i in 0..64 {
        let label = (7 * i + 3) % 10;
        for j in 0..10 {
            let hot = if j == label { 1.0 } else { 0.0 };
            z.push((3.0 * (0.37 * (10 * i + j) as f64 + 0.5 * j as f64).sin() + 2.5 * hot) as f32);
            y.push(hot as f32);
        }
    }
    (Array::new(z, [64, 10]).unwrap(), Array::new(y, [64, 10]).unwrap())
}

/// The script's binary logits and labels.
fn binary() -> (Array, Array) {
    let b: Vec<f32> = (0..64).map(|i| if (0.83 * i as f64).cos() > -0.2 { 1.0 } else { 0.0 }).collect();
    let t = (0..64)
        .map(|i| (2.5 * (0.61 * i as f64 + 0.2).sin() + 1.5 * (2.0 * b[i] as f64 - 1.0)) as f32)
        .collect();
    (Array::new(t, [64, 1]).unwrap(), Array::new(b, [64, 1]).unwrap())
}

fn model(activation: Activation, width: usize, loss: Loss, metrics: &[Metric]) -> Sequential {
    let mut m = Sequential::new();
    m.add(ActivationLayer::new(activation).input_shape([width])).unwrap();
    m.compile(loss, Sgd::new(0.1), metrics).unwrap();
    m
}

fn assert_close(what: &str, got: f32, want: f32) {
    assert!((got - want).abs() <= 1e-6, "{what}: {got} vs Keras {want}");
}

#[test]
fn categorical_metrics_match_keras() {
    let (z, y) = categorical();
    let all = [
        Metric::Accuracy,
        Metric::TopKCategoricalAccuracy(5),
        Metric::Precision,
        Metric::Recall,
        Metric::Auc,
    ];
    let mut m = model(Activation::Softmax, 10, Loss::CategoricalCrossentropy, &all);
    let logs = m.evaluate(&z, &y, 16).unwrap();
    for name in ["accuracy", "top_k_categorical_accuracy", "precision", "recall", "auc"] {
        assert_close(name, logs[name], keras(&format!("categorical {name}")));
    }
    let mut top2 =
        model(Activation::Softmax, 10, Loss::CategoricalCrossentropy, &[Metric::TopKCategoricalAccuracy(2)]);
    assert_close(
        "top 2",
        top2.evaluate(&z, &y, 16).unwrap()["top_k_categorical_accuracy"],
        keras("categorical top_2"),
    );
}

#[test]
fn binary_metrics_match_keras() {
    let (t, b) = binary();
    let all = [Metric::Accuracy, Metric::Precision, Metric::Recall, Metric::Auc];
    let mut m = model(Activation::Sigmoid, 1, Loss::BinaryCrossentropy, &all);
    let logs = m.evaluate(&t, &b, 16).unwrap();
    for name in ["accuracy", "precision", "recall", "auc"] {
        assert_close(name, logs[name], keras(&format!("binary {name}")));
    }
}

/// `fit` logs every metric each epoch (and `val_` ones); a checkpoint keeps them, `k` included.
#[test]
fn fit_logs_and_checkpoints_keep_the_metrics() {
    let (z, y) = categorical();
    let metrics = [Metric::TopKCategoricalAccuracy(3), Metric::Auc];
    let mut m = model(Activation::Softmax, 10, Loss::CategoricalCrossentropy, &metrics);
    let options = nn::FitOptions { epochs: 1, batch_size: 16, verbose: 0, ..Default::default() }
        .validation_data(z.clone(), y.clone());
    let history = m.fit(&z, &y, &options).unwrap();
    let mut keys: Vec<&String> = history.history.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "auc",
            "loss",
            "top_k_categorical_accuracy",
            "val_auc",
            "val_loss",
            "val_top_k_categorical_accuracy"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.safetensors");
    m.save(&path).unwrap();
    let mut loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.evaluate(&z, &y, 16).unwrap(), m.evaluate(&z, &y, 16).unwrap());
}

#[test]
fn bad_metric_settings_are_refused() {
    let mut m = Sequential::new();
    m.add(ActivationLayer::new(Activation::Softmax).input_shape([10])).unwrap();
    let zero = m.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::TopKCategoricalAccuracy(0)]);
    assert!(zero.unwrap_err().to_string().contains("k >= 1"));
    let twice = m.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Auc, Metric::Auc]);
    assert!(twice.unwrap_err().to_string().contains("auc is listed twice"));
    assert_eq!("precision".parse::<Metric>().unwrap(), Metric::Precision);
    assert!("f1".parse::<Metric>().unwrap_err().to_string().contains("unknown metric 'f1'"));
}
