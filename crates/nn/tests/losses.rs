//! Losses against Keras 3 (`benches/keras/losses.py`, recorded in `tests/data/keras-losses.txt`):
//! categorical cross-entropy on probabilities and through the fused softmax path, binary
//! cross-entropy, with label smoothing 0, 0.1 and 0.2; Huber with delta 1 and 0.5; KL
//! divergence with near-zero probabilities. Values and gradients within 1e-6 relative, gradients
//! against central differences too; then the losses in a model: trained, saved in a checkpoint
//! (Keras' class and config for a loss with parameters) and loaded back.

use std::collections::HashMap;

use nn::losses::Prediction;
use nn::{Activation, Array, FitOptions, Loss, Metric, Sequential, Sgd, Tensor};
use serde_json::{json, Value};

/// One case of the fixture: its spec (`loss parameter probabilities|logits`) and its numbers.
struct Case {
    name: String,
    loss: Loss,
    logits: bool,
    y_true: Vec<f32>,
    y_pred: Vec<f32>,
    value: f64,
    grad: Vec<f64>,
}

const SHAPE: [usize; 2] = [3, 4];

fn cases() -> Vec<Case> {
    let text = include_str!("data/keras-losses.txt");
    let mut fields: Vec<(String, HashMap<String, Vec<String>>)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace().map(str::to_string);
        let (name, what) = (words.next().unwrap(), words.next().unwrap());
        if fields.last().is_none_or(|(n, _)| *n != name) {
            fields.push((name.clone(), HashMap::new()));
        }
        fields.last_mut().unwrap().1.insert(what, words.collect());
    }
    fields
        .into_iter()
        .map(|(name, f)| {
            let spec = &f["spec"];
            let parameter: f32 = spec[1].parse().unwrap();
            let loss = match spec[0].as_str() {
                "categorical_crossentropy" => {
                    Loss::CategoricalCrossentropy.label_smoothing(parameter).unwrap()
                }
                "binary_crossentropy" => Loss::BinaryCrossentropy.label_smoothing(parameter).unwrap(),
                "huber" => Loss::huber(parameter).unwrap(),
                "kl_divergence" => Loss::KLDivergence,
                other => panic!("unknown loss {other}"),
            };
            let f32s =
                |key: &str| f[key].iter().map(|v| v.parse::<f64>().unwrap() as f32).collect::<Vec<_>>();
            let f64s = |key: &str| f[key].iter().map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>();
            Case {
                loss,
                logits: spec[2] == "logits",
                y_true: f32s("y_true"),
                y_pred: f32s("y_pred"),
                value: f64s("value")[0],
                grad: f64s("grad"),
                name,
            }
        })
        .collect()
}

/// The loss and its gradient with respect to the predictions (logits for a logits case, which
/// go through the fused softmax cross-entropy).
fn run(loss: Loss, logits: bool, y_true: &[f32], y_pred: &[f32]) -> (f32, Vec<f32>) {
    let device = nn::device::cpu();
    let y = Tensor::from_slice(y_true, SHAPE, &device).unwrap();
    let p = Tensor::from_slice(y_pred, SHAPE, &device).unwrap().to_variable();
    let prediction =
        if logits { Prediction::SoftmaxLogits(p.clone()) } else { Prediction::Output(p.clone()) };
    let value = loss.compute(&prediction, &y).unwrap();
    let grads = value.backward().unwrap();
    (value.item().unwrap(), grads.get(&p).unwrap().to_vec().unwrap())
}

fn relative(got: f32, want: f64) -> f64 {
    (got as f64 - want).abs() / (1.0 + want.abs())
}

#[test]
fn values_and_gradients_match_keras() {
    let cases = cases();
    assert_eq!(cases.len(), 12, "every case of the fixture");
    let mut worst: HashMap<&str, (f64, f64)> = HashMap::new();
    for case in &cases {
        let (value, grad) = run(case.loss, case.logits, &case.y_true, &case.y_pred);
        let dv = relative(value, case.value);
        assert!(dv <= 1e-6, "{}: value {value} vs Keras {}", case.name, case.value);
        let mut dg: f64 = 0.0;
        for (i, (&g, &w)) in grad.iter().zip(&case.grad).enumerate() {
            assert!(relative(g, w) <= 1e-6, "{}: grad[{i}] {g} vs Keras {w}", case.name);
            dg = dg.max(relative(g, w));
        }
        let family = case.name.rsplit_once('_').map_or(case.name.as_str(), |(family, _)| family);
        let entry = worst.entry(family).or_default();
        *entry = (entry.0.max(dv), entry.1.max(dg));
    }
    let mut families: Vec<_> = worst.into_iter().collect();
    families.sort_by(|a, b| a.0.cmp(b.0));
    for (family, (dv, dg)) in families {
        println!("{family}: largest |ours - Keras| / (1 + |Keras|): value {dv:.1e}, gradient {dg:.1e}");
    }
}

/// The gradients against central differences of the loss itself (f32). The step is 1e-3,
/// smaller near 0 and 1 so that each point stays on its side of the clipping (a probability
/// clipped at 1e-7 has gradient 0) and the curvature there does not count; the tolerance adds
/// the f32 rounding of the two losses divided by the step.
#[test]
fn gradients_match_central_differences() {
    for case in cases() {
        let (value, grad) = run(case.loss, case.logits, &case.y_true, &case.y_pred);
        for i in 0..case.y_pred.len() {
            let x = case.y_pred[i];
            let h = if x == 0.0 { 1e-3 } else { 1e-3 * x.abs().min((1.0 - x).abs()).min(1.0) };
            let at = |x: f32| {
                let mut p = case.y_pred.clone();
                p[i] = x;
                run(case.loss, case.logits, &case.y_true, &p).0 as f64
            };
            let (plus, minus) = (x + h, x - h);
            let numeric = (at(plus) - at(minus)) / (plus as f64 - minus as f64);
            let g = grad[i] as f64;
            let rounding = 4.0 * f32::EPSILON as f64 * value.abs() as f64 / (plus as f64 - minus as f64);
            assert!(
                (numeric - g).abs() <= 1e-3 * (1.0 + g.abs()) + rounding,
                "{}[{i}]: autodiff {g} vs central {numeric}",
                case.name
            );
        }
    }
}

#[test]
fn parameters_are_checked_and_named_as_keras() {
    assert_eq!(Loss::CategoricalCrossentropy.label_smoothing(0.0).unwrap(), Loss::CategoricalCrossentropy);
    let smoothed = Loss::BinaryCrossentropy.label_smoothing(0.2).unwrap();
    assert_eq!(smoothed, Loss::SmoothedBinaryCrossentropy { label_smoothing: 0.2 });
    assert_eq!(smoothed.keras_name(), "binary_crossentropy");
    assert_eq!(smoothed.label_smoothing_amount(), 0.2);
    let err = |r: nn::Result<Loss>| r.unwrap_err().to_string();
    assert!(
        err(Loss::SparseCategoricalCrossentropy.label_smoothing(0.1)).contains("takes no label_smoothing")
    );
    assert!(err(Loss::CategoricalCrossentropy.label_smoothing(1.5))
        .contains("label_smoothing 1.5 must be in [0, 1]"));
    assert!(err(Loss::huber(0.0)).contains("delta 0 must be positive"));
    assert!(err(Loss::huber(f32::NAN)).contains("delta NaN must be positive"));
    assert_eq!("huber".parse::<Loss>().unwrap(), Loss::Huber { delta: 1.0 });
    assert_eq!("kld".parse::<Loss>().unwrap(), Loss::KLDivergence);
    assert_eq!(Loss::KLDivergence.keras_class_name(), "KLDivergence");
}

/// A loss with every smoothing of the fused path equals the same loss on the probabilities
/// (the softmax of the logits), value and gradient with respect to the logits.
#[test]
fn fused_softmax_path_equals_the_probability_path_with_smoothing() {
    let device = nn::device::cpu();
    let logits = [0.5f32, 2.0, -1.0, 0.1, 1.5, -0.3, 0.2, 0.8, -2.0, 0.4, 3.0, -0.7];
    let y = [0.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0];
    let y = Tensor::from_slice(&y, SHAPE, &device).unwrap();
    for s in [0.0, 0.1, 0.2, 1.0] {
        let loss = Loss::CategoricalCrossentropy.label_smoothing(s).unwrap();
        let z = Tensor::from_slice(&logits, SHAPE, &device).unwrap().to_variable();
        let fused = loss.compute(&Prediction::SoftmaxLogits(z.clone()), &y).unwrap();
        let g_fused = fused.backward().unwrap().get(&z).unwrap().to_vec().unwrap();
        let plain = loss.compute(&Prediction::Output(z.softmax().unwrap()), &y).unwrap();
        let g_plain = plain.backward().unwrap().get(&z).unwrap().to_vec().unwrap();
        assert!(relative(fused.item().unwrap(), plain.item().unwrap() as f64) < 1e-6, "smoothing {s}");
        for (a, b) in g_fused.iter().zip(&g_plain) {
            assert!(relative(*a, *b as f64) < 1e-5, "smoothing {s}: {a} vs {b}");
        }
    }
}

fn data() -> (Array, Array, Array) {
    let n = 24;
    let x: Vec<f32> = (0..n * 4).map(|i| (i * 7 % 13) as f32 / 6.0 - 1.0).collect();
    let mut onehot = vec![0.0f32; n * 3];
    let mut targets = Vec::new();
    for i in 0..n {
        onehot[i * 3 + i % 3] = 1.0;
        targets.extend([(i % 5) as f32 * 0.4 - 0.8, ((i * 3) % 7) as f32 * 0.5 - 1.5, 0.25]);
    }
    (
        Array::new(x, [n, 4]).unwrap(),
        Array::new(onehot, [n, 3]).unwrap(),
        Array::new(targets, [n, 3]).unwrap(),
    )
}

fn model(activation: Activation) -> Sequential {
    let mut m = Sequential::new().seed(8);
    m.add(Dense::new(6).activation(Activation::Tanh).input_shape([4])).unwrap();
    m.add(Dense::new(3).activation(activation)).unwrap();
    m
}

use nn::layers::Dense;

fn training_state(path: &std::path::Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    serde_json::from_str(&header.metadata().as_ref().unwrap()[nn::saving::TRAINING_KEY]).unwrap()
}

/// Each new loss trains a model, is saved in its checkpoint (a loss with parameters as Keras'
/// class and config, one without as its name, as before) and comes back: the loaded model
/// evaluates to the same loss, bit for bit, and trains on identically.
#[test]
fn losses_train_save_and_load() {
    let (x, onehot, targets) = data();
    let cases: [(Loss, Activation, &Array, Value); 5] = [
        (
            Loss::CategoricalCrossentropy.label_smoothing(0.1).unwrap(),
            Activation::Softmax,
            &onehot,
            json!({"class_name": "CategoricalCrossentropy", "config": {"name": "categorical_crossentropy",
                "reduction": "sum_over_batch_size", "from_logits": false,
                "label_smoothing": 0.1f32, "axis": -1}}),
        ),
        (
            Loss::BinaryCrossentropy.label_smoothing(0.2).unwrap(),
            Activation::Sigmoid,
            &onehot,
            json!({"class_name": "BinaryCrossentropy", "config": {"name": "binary_crossentropy",
                "reduction": "sum_over_batch_size", "from_logits": false,
                "label_smoothing": 0.2f32, "axis": -1}}),
        ),
        (
            Loss::huber(0.5).unwrap(),
            Activation::Linear,
            &targets,
            json!({"class_name": "Huber", "config": {"name": "huber_loss",
                "reduction": "sum_over_batch_size", "delta": 0.5}}),
        ),
        (Loss::KLDivergence, Activation::Softmax, &onehot, json!("kl_divergence")),
        (Loss::CategoricalCrossentropy, Activation::Softmax, &onehot, json!("categorical_crossentropy")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let options = FitOptions::new().epochs(2).batch_size(8).verbose(0).seed(3);
    for (loss, activation, y, saved) in cases {
        let mut m = model(activation);
        m.compile(loss, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
        let history = m.fit(&x, y, &options).unwrap();
        let losses = history.get("loss").unwrap();
        assert!(losses[1] < losses[0], "{loss:?} trains: {losses:?}");
        let path = dir.path().join("loss.safetensors");
        m.save(&path).unwrap();
        assert_eq!(training_state(&path)["loss"], saved, "{loss:?}");
        let mut loaded = Sequential::load(&path).unwrap();
        let want = m.evaluate(&x, y, 8).unwrap();
        assert_eq!(loaded.evaluate(&x, y, 8).unwrap()["loss"].to_bits(), want["loss"].to_bits(), "{loss:?}");
        let again = FitOptions::new().epochs(3).initial_epoch(2).batch_size(8).verbose(0).seed(3);
        m.fit(&x, y, &again).unwrap();
        loaded.fit(&x, y, &again).unwrap();
        assert_eq!(loaded.get_weights().unwrap(), m.get_weights().unwrap(), "{loss:?}");
    }
}
