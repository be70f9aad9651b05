//! `BatchNormalization`: training and inference outputs, input and weight gradients and the
//! moving statistics against Keras 3 (`benches/keras/batch_normalization.py`, recorded in
//! `tests/data/keras-batch-normalization.txt`) and against an f64 reference; gradients against
//! central differences; counts, saving, freezing and `fit`; wgpu against the CPU.

mod parity;

use parity::{assert_close, fixture_values};

use nn::init::Initializer;
use nn::layers::{BatchNormalization, Conv2D, Dense, Flatten, ForwardCtx, Layer};
use nn::{Device, Tensor};

const SHAPE: [usize; 4] = [4, 3, 3, 2];

/// The script's input: `sin(0.7 n + 0.3) * (1 + n % 3) + n % 2` at flat index `n`.
fn input(scale: f32, shift: f32) -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>())
        .map(|n| ((0.7 * n as f64 + 0.3).sin() * (1 + n % 3) as f64 + (n % 2) as f64) as f32 * scale + shift)
        .collect()
}

/// The script's output weights `cos(0.5 n)`.
fn weights() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>()).map(|n| (0.5 * n as f64).cos() as f32).collect()
}

/// `n` values from `a` to `b` (numpy's `linspace`).
fn linspace(a: f32, b: f32, n: usize) -> Vec<f32> {
    (0..n).map(|i| if n == 1 { a } else { a + (b - a) * i as f32 / (n - 1) as f32 }).collect()
}

fn keras(tag: &str, what: &str) -> Vec<f64> {
    fixture_values(include_str!("data/keras-batch-normalization.txt"), &format!("{tag} {what}"))
}

/// The script's layer: `axis` (Keras' numbering), with its gamma, beta and moving statistics.
fn layer(axis: isize, device: &Device) -> BatchNormalization {
    let mut layer = BatchNormalization::new().axis(axis);
    layer.build(&SHAPE[1..], &mut Initializer::new(0, device)).unwrap();
    let c = SHAPE[axis.rem_euclid(4) as usize];
    let values =
        [linspace(1.5, -0.7, c), linspace(0.2, 0.4, c), linspace(0.1, -0.2, c), linspace(0.9, 1.3, c)];
    let tensor = |v: &Vec<f32>| Tensor::from_slice(v, [c], device).unwrap();
    for (p, v) in layer.params_mut().into_iter().zip(&values) {
        *p = tensor(v).to_variable();
    }
    for (p, v) in layer.non_trainable_mut().into_iter().zip(&values[2..]) {
        *p = tensor(v);
    }
    layer
}

struct Pass {
    y: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

/// The layer's output for `x` and the gradients of `sum(output * weights)`.
fn run(layer: &mut BatchNormalization, x: &[f32], training: bool, device: &Device) -> Pass {
    let x = Tensor::from_slice(x, SHAPE, device).unwrap().to_variable();
    let ctx = if training { ForwardCtx::training(0) } else { ForwardCtx::inference() };
    let y = layer.forward(&x, ctx).unwrap();
    let w = Tensor::from_vec(weights(), SHAPE, device).unwrap();
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = |t: &Tensor| grads.get(t).unwrap().to_vec().unwrap();
    let params = layer.params();
    Pass { y: y.to_vec().unwrap(), dx: grad(&x), dgamma: grad(params[0]), dbeta: grad(params[1]) }
}

fn moving(layer: &BatchNormalization) -> [Vec<f32>; 2] {
    let m = layer.non_trainable();
    [m[0].to_vec().unwrap(), m[1].to_vec().unwrap()]
}

#[test]
fn outputs_gradients_and_moving_statistics_match_keras() {
    let device = nn::device::cpu();
    for (tag, axis) in [("last", -1), ("axis1", 1)] {
        let mut bn = layer(axis, &device);
        let infer = run(&mut bn, &input(1.0, 0.0), false, &device);
        assert_close(&format!("{tag} inference"), &infer.y, &keras(tag, "infer"), 1e-6);
        assert_eq!(
            moving(&bn)[0],
            linspace(0.1, -0.2, bn.non_trainable()[0].numel()),
            "inference keeps them"
        );
        let train = run(&mut bn, &input(1.0, 0.0), true, &device);
        assert_close(&format!("{tag} training"), &train.y, &keras(tag, "train"), 1e-6);
        assert_close(&format!("{tag} dx"), &train.dx, &keras(tag, "dx"), 1e-6);
        assert_close(&format!("{tag} dgamma"), &train.dgamma, &keras(tag, "dgamma"), 1e-6);
        assert_close(&format!("{tag} dbeta"), &train.dbeta, &keras(tag, "dbeta"), 1e-6);
        let [mean, variance] = moving(&bn);
        assert_close(&format!("{tag} moving mean"), &mean, &keras(tag, "moving_mean1"), 1e-6);
        assert_close(&format!("{tag} moving variance"), &variance, &keras(tag, "moving_variance1"), 1e-6);
        run(&mut bn, &input(2.0, 1.0), true, &device);
        run(&mut bn, &input(1.0, -0.5), true, &device);
        let [mean, variance] = moving(&bn);
        assert_close(&format!("{tag} moving mean, 3 steps"), &mean, &keras(tag, "moving_mean3"), 1e-6);
        assert_close(
            &format!("{tag} moving variance, 3 steps"),
            &variance,
            &keras(tag, "moving_variance3"),
            1e-6,
        );
    }
}

/// Training and inference outputs against the definition, in f64.
#[test]
fn outputs_match_an_f64_reference() {
    let device = nn::device::cpu();
    let x: Vec<f64> = input(1.0, 0.0).iter().map(|&v| v as f64).collect();
    let c = SHAPE[3];
    let (gamma, beta) = (linspace(1.5, -0.7, c), linspace(0.2, 0.4, c));
    let (mm, mv) = (linspace(0.1, -0.2, c), linspace(0.9, 1.3, c));
    let channel = |k: usize| x.iter().skip(k).step_by(c).copied().collect::<Vec<f64>>();
    let reference = |k: usize, v: f64, mean: f64, var: f64| {
        (v - mean) / (var + 1e-3f32 as f64).sqrt() * gamma[k] as f64 + beta[k] as f64
    };
    let mut want_train = vec![0.0; x.len()];
    let mut want_infer = vec![0.0; x.len()];
    for k in 0..c {
        let values = channel(k);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        for (i, &v) in x.iter().enumerate().skip(k).step_by(c) {
            want_train[i] = reference(k, v, mean, var);
            want_infer[i] = reference(k, v, mm[k] as f64, mv[k] as f64);
        }
    }
    let mut bn = layer(-1, &device);
    assert_close("inference", &run(&mut bn, &input(1.0, 0.0), false, &device).y, &want_infer, 1e-6);
    assert_close("training", &run(&mut bn, &input(1.0, 0.0), true, &device).y, &want_train, 1e-6);
}

/// Gradients of `sum(output * weights)` in training mode against central differences (f64 sums
/// of the f32 outputs), for the input, gamma and beta, on both axes.
#[test]
fn gradients_match_central_differences() {
    let device = nn::device::cpu();
    let w = weights();
    let objective = |bn: &mut BatchNormalization, x: &[f32]| -> f64 {
        let y = run(bn, x, true, &device).y;
        y.iter().zip(&w).map(|(&y, &w)| y as f64 * w as f64).sum()
    };
    let h = 1e-2f32;
    for axis in [-1, 1] {
        let x = input(1.0, 0.0);
        let pass = run(&mut layer(axis, &device), &x, true, &device);
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (objective(&mut layer(axis, &device), &plus)
                - objective(&mut layer(axis, &device), &minus))
                / (2.0 * h as f64);
            assert!(
                (pass.dx[i] as f64 - numeric).abs() < 2e-3,
                "axis {axis} d/dx[{i}]: {} vs {numeric}",
                pass.dx[i]
            );
        }
        for (which, grad) in [(0, &pass.dgamma), (1, &pass.dbeta)] {
            for k in 0..grad.len() {
                let shifted = |delta: f32| {
                    let mut bn = layer(axis, &device);
                    let p = &mut bn.params_mut()[which];
                    let mut v = p.to_vec().unwrap();
                    v[k] += delta;
                    **p = Tensor::from_vec(v, [grad.len()], &device).unwrap().to_variable();
                    objective(&mut bn, &x)
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
                assert!(
                    (grad[k] as f64 - numeric).abs() < 2e-3,
                    "axis {axis} weight {which}[{k}]: {} vs {numeric}",
                    grad[k]
                );
            }
        }
    }
}

/// Keras' counts (gamma and beta trainable, the moving statistics not), names and order of the
/// weights, and the configuration errors.
#[test]
fn counts_weights_and_bad_settings() {
    let mut model = nn::Sequential::new();
    model.add(Conv2D::new(4, (3, 3)).use_bias(false).input_shape([6, 6, 1])).unwrap();
    model.add(BatchNormalization::new()).unwrap();
    model.add(BatchNormalization::new().center(false).axis(1)).unwrap();
    assert_eq!(model.count_params(), 36 + 4 * 4 + 3 * 4);
    assert_eq!(model.count_non_trainable_params(), 2 * 4 + 2 * 4);
    let summary = model.summary().unwrap();
    assert!(summary.contains("Non-trainable params: 16"), "{summary}");
    let weights = model.get_weights().unwrap();
    let shapes: Vec<&[usize]> = weights.iter().map(|w| w.dims()).collect();
    assert_eq!(shapes, [&[3, 3, 1, 4][..], &[4], &[4], &[4], &[4], &[4], &[4], &[4]]);
    assert_eq!(weights[3].data(), &[0.0; 4], "moving mean starts at 0");
    assert_eq!(weights[4].data(), &[1.0; 4], "moving variance starts at 1");
    assert_eq!(model.trainable_variables().len(), 1 + 2 + 1, "the moving statistics are not trained");
    for (bad, what) in [
        (BatchNormalization::new().axis(4), "axis 4"),
        (BatchNormalization::new().axis(0), "axis 0"),
        (BatchNormalization::new().momentum(1.5), "momentum"),
        (BatchNormalization::new().epsilon(0.0), "epsilon"),
    ] {
        let mut m = nn::Sequential::new();
        let err = m.add(bad.input_shape([6, 6, 1])).unwrap_err().to_string();
        assert!(err.contains("BatchNormalization") && err.contains(what), "{what}: {err}");
    }
}

fn small_model(seed: u64) -> nn::Sequential {
    let mut model = nn::Sequential::new().seed(seed);
    model.add(Conv2D::new(3, (3, 3)).use_bias(false).input_shape([5, 5, 1])).unwrap();
    model.add(BatchNormalization::new().momentum(0.5)).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model.compile(nn::Loss::MeanSquaredError, nn::Sgd::new(0.1), &[]).unwrap();
    model
}

fn data() -> (nn::Array, nn::Array) {
    let x: Vec<f32> = (0..8 * 25).map(|n| ((n as f32) * 0.37).sin() + 0.5).collect();
    let y: Vec<f32> = (0..8 * 2).map(|n| ((n as f32) * 0.11).cos()).collect();
    (nn::Array::new(x, [8, 5, 5, 1]).unwrap(), nn::Array::new(y, [8, 2]).unwrap())
}

/// `fit` updates the moving statistics (not through the optimizer), `predict` uses them, and a
/// saved model loads with them, predicting the same.
#[test]
fn fit_updates_moving_statistics_and_saving_keeps_them() {
    let (x, y) = data();
    let mut model = small_model(3);
    let before = model.get_weights().unwrap();
    let options = nn::FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() };
    model.fit(&x, &y, &options).unwrap();
    let after = model.get_weights().unwrap();
    assert_ne!(after[3].data(), before[3].data(), "moving mean updated");
    assert_ne!(after[4].data(), before[4].data(), "moving variance updated");
    assert!(after[4].data().iter().all(|&v| v > 0.0));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    model.save(&path).unwrap();
    let mut loaded = nn::Sequential::load(&path).unwrap();
    let loaded_weights = loaded.get_weights().unwrap();
    for (a, b) in after.iter().zip(&loaded_weights) {
        assert_eq!(a.data(), b.data());
    }
    let want = model.predict(&x, 4).unwrap()[0].data().to_vec();
    assert_eq!(loaded.predict(&x, 4).unwrap()[0].data(), &want[..]);
}

/// A frozen `BatchNormalization` normalises with its moving statistics in training too and
/// leaves them alone (Keras' rule), so training the rest changes nothing in it.
#[test]
fn a_frozen_layer_runs_in_inference_mode() {
    let (x, y) = data();
    let mut model = small_model(4);
    let bn = model.layers().unwrap()[1].clone();
    bn.set_trainable(false);
    let before = bn.get_weights().unwrap();
    let options = nn::FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() };
    model.fit(&x, &y, &options).unwrap();
    let after = bn.get_weights().unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.data(), b.data());
    }
    assert_eq!(model.count_non_trainable_params(), 4 * 3);
}

/// wgpu (lavapipe in CI) against the CPU, training and inference.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_cpu() {
    let Some(gpu) = parity::wgpu_or_skip() else { return };
    let cpu = nn::device::cpu();
    let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    for axis in [-1, 1] {
        for training in [false, true] {
            let (mut a, mut b) = (layer(axis, &cpu), layer(axis, &gpu));
            let want = run(&mut a, &input(1.0, 0.0), training, &cpu);
            let got = run(&mut b, &input(1.0, 0.0), training, &gpu);
            let what = format!("axis {axis}, training {training}");
            assert_close(&format!("{what}: output"), &got.y, &wide(&want.y), 1e-5);
            assert_close(&format!("{what}: dx"), &got.dx, &wide(&want.dx), 1e-5);
            assert_close(&format!("{what}: dgamma"), &got.dgamma, &wide(&want.dgamma), 1e-5);
            let [m, v] = moving(&b);
            let [wm, wv] = moving(&a);
            assert_close(&format!("{what}: moving mean"), &m, &wide(&wm), 1e-6);
            assert_close(&format!("{what}: moving variance"), &v, &wide(&wv), 1e-6);
        }
    }
}

/// A convolution of `side x side` images (seeded by `seed`), a normalization, a ReLU, with
/// `pool` a 2x2 max pooling, then a dense layer. With `fused` the ReLU is `Activation("relu")`,
/// which the model fuses into the normalization (and the pooling with them: into one op where
/// the convolution's output has even sides, the ops apart where not); otherwise it is
/// `ReLU(max_value=1e30)`, the same function, and nothing fuses.
fn conv_norm_relu(side: usize, seed: u64, pool: bool, fused: bool) -> nn::Sequential {
    let mut model = nn::Sequential::new().seed(seed);
    model.add(Conv2D::new(3, (3, 3)).use_bias(false).input_shape([side, side, 1])).unwrap();
    model.add(BatchNormalization::new().momentum(0.5)).unwrap();
    if fused {
        model.add(nn::layers::ActivationLayer::new(nn::Activation::Relu)).unwrap();
    } else {
        model.add(nn::layers::ReLU::new().max_value(Some(1e30))).unwrap();
    }
    if pool {
        model.add(nn::layers::MaxPooling2D::new()).unwrap();
    }
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model.compile(nn::Loss::MeanSquaredError, nn::Sgd::new(0.1), &[]).unwrap();
    model
}

/// `small_model` with a ReLU after the normalization, fused or not (see [`conv_norm_relu`]).
fn model_with_relu(fused: bool) -> nn::Sequential {
    conv_norm_relu(5, 5, false, fused)
}

/// A normalization and the ReLU after it, fused into one op, train as the two layers do: the
/// same predictions before and after two epochs, the same weights and moving statistics (up
/// to the rounding of the fused backward pass' sums).
#[test]
fn a_fused_relu_trains_as_the_separate_layers_do() {
    let (x, y) = data();
    let (mut fused, mut separate) = (model_with_relu(true), model_with_relu(false));
    let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let predict = |m: &mut nn::Sequential| m.predict(&x, 4).unwrap()[0].data().to_vec();
    assert_eq!(predict(&mut fused), predict(&mut separate));
    let options = nn::FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() };
    fused.fit(&x, &y, &options).unwrap();
    separate.fit(&x, &y, &options).unwrap();
    let (a, b) = (fused.get_weights().unwrap(), separate.get_weights().unwrap());
    assert_eq!(a.len(), b.len());
    for (k, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_close(&format!("weight {k}"), a.data(), &wide(b.data()), 1e-5);
    }
    assert_ne!(a[0].data(), model_with_relu(true).get_weights().unwrap()[0].data(), "trained");
    assert_close("predictions", &predict(&mut fused), &wide(&predict(&mut separate)), 1e-5);
}

/// A convolution of `side x side` images, a normalization, a ReLU and a 2x2 max pooling, fused
/// or not (see [`conv_norm_relu`]).
fn model_with_relu_pool(side: usize, fused: bool) -> nn::Sequential {
    conv_norm_relu(side, 6, true, fused)
}

/// A normalization, its ReLU and the max pooling after them, fused, train as the layers do
/// apart: the same predictions (inference: the moving statistics, the ops apart) before and
/// after two epochs, the same weights (up to the rounding of the normalization's fused
/// backward sums), for a pooling the op fuses (a 6x6 convolution output) and one it leaves to
/// the ops apart (5x5).
#[test]
fn a_fused_relu_and_max_pool_train_as_the_separate_layers_do() {
    for side in [8, 7] {
        let x: Vec<f32> = (0..8 * side * side).map(|n| ((n as f32) * 0.37).sin() + 0.5).collect();
        let x = nn::Array::new(x, [8, side, side, 1]).unwrap();
        let y = data().1;
        let (mut fused, mut separate) = (model_with_relu_pool(side, true), model_with_relu_pool(side, false));
        let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
        let predict = |m: &mut nn::Sequential| m.predict(&x, 4).unwrap()[0].data().to_vec();
        assert_eq!(predict(&mut fused), predict(&mut separate), "side {side}");
        let options = nn::FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() };
        fused.fit(&x, &y, &options).unwrap();
        separate.fit(&x, &y, &options).unwrap();
        let (a, b) = (fused.get_weights().unwrap(), separate.get_weights().unwrap());
        assert_eq!(a.len(), b.len());
        for (k, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_close(&format!("side {side}: weight {k}"), a.data(), &wide(b.data()), 1e-5);
        }
        let untrained = model_with_relu_pool(side, true).get_weights().unwrap();
        assert_ne!(a[0].data(), untrained[0].data(), "side {side}: trained");
        assert_close(
            &format!("side {side}: predictions"),
            &predict(&mut fused),
            &wide(&predict(&mut separate)),
            1e-5,
        );
    }
}
