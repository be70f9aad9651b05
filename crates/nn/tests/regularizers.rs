//! Weight regularizers against Keras 3 (`benches/keras/regularizers.py`, recorded in
//! `tests/data/keras-regularizers.txt`): the evaluated loss with the penalties and the weights
//! after one SGD step; the penalties' gradients against central differences; saving; frozen
//! layers; bad factors.

mod parity;

use nn::layers::{Conv2D, Dense, Flatten};
use nn::regularizers::Regularizer;
use nn::{Array, FitOptions, Loss, Sequential, Sgd, Tensor};
use parity::{assert_close, fixture_values};

fn keras(tag: &str) -> Vec<f64> {
    fixture_values(include_str!("data/keras-regularizers.txt"), tag)
}

/// The script's model, weights and data.
fn model() -> Sequential {
    let mut m = Sequential::new();
    m.add(Conv2D::new(2, (2, 2)).kernel_regularizer(Regularizer::L1(0.03)).input_shape([3, 3, 1])).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(
        Dense::new(2)
            .kernel_regularizer(Regularizer::L1L2 { l1: 0.01, l2: 0.02 })
            .bias_regularizer(Regularizer::L2(0.05)),
    )
    .unwrap();
    let weights: Vec<Array> = m
        .get_weights()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let values =
                (0..w.data().len()).map(|n| (0.4 * (0.9 * n as f64 + k as f64 + 0.1).sin()) as f32).collect();
            Array::new(values, w.dims().to_vec()).unwrap()
        })
        .collect();
    m.set_weights(&weights).unwrap();
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1), &[]).unwrap();
    m
}

fn data() -> (Array, Array) {
    let x = (0..36).map(|n| (0.3 * n as f64).cos() as f32).collect();
    let t = (0..8).map(|n| (0.5 * n as f64).sin() as f32).collect();
    (Array::new(x, [4, 3, 3, 1]).unwrap(), Array::new(t, [4, 2]).unwrap())
}

#[test]
fn loss_and_step_match_keras() {
    let (x, t) = data();
    let mut m = model();
    let loss = m.evaluate(&x, &t, 4).unwrap()["loss"];
    assert_close("evaluated loss", &[loss], &keras("loss"), 1e-6);
    m.fit(&x, &t, &FitOptions { epochs: 1, batch_size: 4, verbose: 0, ..Default::default() }).unwrap();
    for (k, w) in m.get_weights().unwrap().iter().enumerate() {
        assert_close(&format!("weights {k} after a step"), w.data(), &keras(&format!("weights{k}")), 1e-6);
    }
}

/// Each penalty's gradient against central differences, and its value against its formula.
#[test]
fn penalties_and_their_gradients() {
    let device = nn::device::cpu();
    let w: Vec<f32> = (0..12).map(|n| (0.7 * n as f32 - 3.1).sin() * 1.3).collect();
    let value = |r: &Regularizer, w: &[f32]| -> f64 {
        r.penalty(&Tensor::from_slice(w, [12], &device).unwrap()).unwrap().item().unwrap() as f64
    };
    for r in [Regularizer::L1(0.03), Regularizer::L2(0.05), Regularizer::L1L2 { l1: 0.01, l2: 0.02 }] {
        let (l1, l2) = match r {
            Regularizer::L1(a) => (a as f64, 0.0),
            Regularizer::L2(b) => (0.0, b as f64),
            Regularizer::L1L2 { l1, l2 } => (l1 as f64, l2 as f64),
        };
        let want: f64 = w.iter().map(|&v| l1 * (v as f64).abs() + l2 * (v as f64).powi(2)).sum();
        assert!((value(&r, &w) - want).abs() < 1e-6, "{r:?}: {} vs {want}", value(&r, &w));
        let var = Tensor::from_slice(&w, [12], &device).unwrap().to_variable();
        let grad = r.penalty(&var).unwrap().backward().unwrap().get(&var).unwrap().to_vec().unwrap();
        for i in 0..w.len() {
            let h = 1e-3f32;
            let (mut plus, mut minus) = (w.clone(), w.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (value(&r, &plus) - value(&r, &minus)) / (2.0 * h as f64);
            assert!((grad[i] as f64 - numeric).abs() < 1e-3, "{r:?} d/dw[{i}]: {} vs {numeric}", grad[i]);
        }
    }
}

/// Regularizers survive saving (Keras' config form); a frozen layer's weights are not
/// penalised (Keras regularises trainable weights only); bad factors are refused.
#[test]
fn saving_freezing_and_bad_factors() {
    let (x, t) = data();
    let mut m = model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regularized.safetensors");
    m.save(&path).unwrap();
    let mut loaded = Sequential::load(&path).unwrap();
    let loss = m.evaluate(&x, &t, 4).unwrap()["loss"];
    assert_eq!(loaded.evaluate(&x, &t, 4).unwrap()["loss"], loss);
    let unpenalised = {
        let mut plain = Sequential::new();
        plain.add(Conv2D::new(2, (2, 2)).input_shape([3, 3, 1])).unwrap();
        plain.add(Flatten::new()).unwrap();
        plain.add(Dense::new(2)).unwrap();
        plain.set_weights(&m.get_weights().unwrap()).unwrap();
        plain.compile(Loss::MeanSquaredError, Sgd::new(0.1), &[]).unwrap();
        plain.evaluate(&x, &t, 4).unwrap()["loss"]
    };
    assert!(loss > unpenalised + 0.01, "the penalties add to the loss: {loss} vs {unpenalised}");
    for layer in m.layers().unwrap() {
        layer.set_trainable(false);
    }
    let frozen = m.evaluate(&x, &t, 4).unwrap()["loss"];
    assert!((frozen - unpenalised).abs() < 1e-6, "frozen: {frozen} vs {unpenalised}");
    let mut bad = Sequential::new();
    let err = bad.add(Dense::new(2).kernel_regularizer(Regularizer::L2(-0.1)).input_shape([3])).unwrap_err();
    assert!(err.to_string().contains("factors must be finite and 0 or more"), "{err}");
    assert!(Regularizer::from_name("l3").unwrap_err().to_string().contains("unknown regularizer 'l3'"));
}
