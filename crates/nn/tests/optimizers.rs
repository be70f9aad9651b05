//! The optimizers against Keras 3: every configuration of `benches/keras/optimizers.py`
//! (recorded in `tests/data/keras-optimizers.txt`) applied for 5 steps to the same two
//! variables with the same gradients, compared step by step; the saved configs against Keras'
//! `get_config`; and checkpoints of the new optimizers resuming bit-identically.

mod synthetic;

use std::collections::BTreeSet;

use nn::callbacks::ModelCheckpoint;
use nn::optimizers::OptimizerState;
use nn::{Adagrad, Adam, AdamW, FitOptions, Loss, Metric, Optimizer, RmsProp, Sequential, Sgd, Tensor};
use serde_json::Value;
use synthetic::{conv_net, images, weight_bits};

const FIXTURE: &str = include_str!("data/keras-optimizers.txt");
const STEPS: usize = 5;

/// The script's configurations, by name.
fn configurations() -> Vec<(&'static str, Optimizer)> {
    vec![
        ("sgd_nesterov", Sgd::new(0.05).momentum(0.8).nesterov(true).into()),
        ("adam", Adam::new(0.01).beta_1(0.8).beta_2(0.99).epsilon(1e-6).into()),
        ("rmsprop", RmsProp::new(0.01).rho(0.8).epsilon(1e-6).into()),
        (
            "rmsprop_centered_momentum",
            RmsProp::new(0.01).rho(0.85).momentum(0.5).epsilon(1e-6).centered(true).into(),
        ),
        ("adagrad", Adagrad::new(0.05).initial_accumulator_value(0.2).epsilon(1e-6).into()),
        ("adamw", AdamW::new(0.01).weight_decay(0.05).beta_1(0.8).beta_2(0.99).epsilon(1e-6).into()),
        ("adam_amsgrad", Adam::new(0.01).beta_2(0.6).amsgrad(true).into()),
        ("adamw_amsgrad", AdamW::new(0.01).weight_decay(0.1).beta_2(0.6).amsgrad(true).into()),
        ("sgd_clipnorm", Sgd::new(0.1).momentum(0.9).clipnorm(2.0).into()),
        ("adam_clipvalue", Adam::new(0.01).clipvalue(0.5).into()),
        ("sgd_global_clipnorm", Sgd::new(0.1).global_clipnorm(3.0).into()),
        ("adam_global_clipnorm", Adam::new(0.01).global_clipnorm(3.0).into()),
        ("sgd_weight_decay", Sgd::new(0.1).weight_decay(0.2).into()),
        ("rmsprop_clipvalue", RmsProp::new(0.01).clipvalue(0.5).into()),
        ("adagrad_clipnorm", Adagrad::new(0.05).clipnorm(1.0).into()),
    ]
}

/// The numbers of the fixture's line that starts with `words`.
fn keras(words: &str) -> Vec<f64> {
    let line =
        FIXTURE.lines().find(|l| l.starts_with(&format!("{words} "))).unwrap_or_else(|| panic!("{words}"));
    line[words.len()..].split_whitespace().map(|v| v.parse().unwrap()).collect()
}

/// The script's variables (`w0` [2, 3], `w1` [4]) and gradients of step `s` (from 1), in f64
/// then rounded to f32 as numpy does.
fn inputs() -> ([Vec<f32>; 2], Vec<[Vec<f32>; 2]>) {
    let f32s = |n: usize, f: &dyn Fn(f64) -> f64| (0..n).map(|i| f(i as f64) as f32).collect::<Vec<_>>();
    let w = [f32s(6, &|n| 1.5 * (0.9 * n + 0.2).sin()), f32s(4, &|n| (0.6 * n).cos() - 0.3)];
    let grads = (1..=STEPS)
        .map(|s| {
            let s = s as f64;
            let amp = 0.7 + 0.5 * (2.5 * s).cos();
            [
                f32s(6, &|n| amp * (2.0 * (1.3 * n + 0.7 * s).sin() + 0.1 * (n % 3.0))),
                f32s(4, &|n| 1.5 * amp * (0.9 * n - 0.4 * s).cos()),
            ]
        })
        .collect();
    (w, grads)
}

fn bits(values: &[f32]) -> Vec<u64> {
    values.iter().map(|&v| (v as f64).to_bits()).collect()
}

#[test]
fn the_inputs_are_the_scripts() {
    let (w, grads) = inputs();
    let keras_bits = |words: &str| keras(words).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (k, name) in ["w0", "w1"].iter().enumerate() {
        assert_eq!(bits(&w[k]), keras_bits(&format!("input {name}")), "{name}");
        for (s, g) in grads.iter().enumerate() {
            assert_eq!(bits(&g[k]), keras_bits(&format!("grad step{} {name}", s + 1)), "step {s} {name}");
        }
    }
}

/// The variables after each step of `optimizer` from the script's start and gradients.
fn run(optimizer: Optimizer) -> Vec<[Vec<f32>; 2]> {
    let device = nn::device::cpu();
    let (w, grads) = inputs();
    let mut w0 = Tensor::from_slice(&w[0], [2, 3], &device).unwrap().to_variable();
    let mut w1 = Tensor::from_slice(&w[1], [4], &device).unwrap().to_variable();
    let mut state = OptimizerState::new(optimizer);
    let mut trace = Vec::new();
    for g in &grads {
        // sum(w0 * g0) + sum(w1 * g1) has the gradients g0 and g1.
        let g0 = Tensor::from_slice(&g[0], [2, 3], &device).unwrap();
        let g1 = Tensor::from_slice(&g[1], [4], &device).unwrap();
        let loss =
            w0.mul(&g0).unwrap().sum_all().unwrap().add(&w1.mul(&g1).unwrap().sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        state.apply(&mut [&mut w0, &mut w1], &grads).unwrap();
        trace.push([w0.to_vec().unwrap(), w1.to_vec().unwrap()]);
    }
    trace
}

#[test]
fn every_optimizer_matches_keras_step_by_step() {
    let tolerance = 1e-6;
    let mut report = Vec::new();
    for (name, optimizer) in configurations() {
        let mut largest = 0f64;
        for (s, values) in run(optimizer).iter().enumerate() {
            for (k, ours) in values.iter().enumerate() {
                let want = keras(&format!("{name} step{} w{k}", s + 1));
                assert_eq!(ours.len(), want.len());
                for (i, (&got, &want)) in ours.iter().zip(&want).enumerate() {
                    let difference = (got as f64 - want).abs() / (1.0 + want.abs());
                    assert!(
                        difference <= tolerance,
                        "{name} step {} w{k}[{i}]: {got} vs Keras {want}",
                        s + 1
                    );
                    largest = largest.max(difference);
                }
            }
        }
        report.push(format!("{name}: {largest:.1e}"));
    }
    println!("largest |ours - Keras| / (1 + |Keras|) over 5 steps:\n{}", report.join("\n"));
}

/// The training-state JSON a saved, compiled (untrained) model holds.
fn saved_state(optimizer: Optimizer) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.safetensors");
    let mut model = conv_net(1);
    model.compile(Loss::SparseCategoricalCrossentropy, optimizer, &[Metric::Accuracy]).unwrap();
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    serde_json::from_str(&header.metadata().as_ref().unwrap()[nn::saving::TRAINING_KEY]).unwrap()
}

#[test]
fn saved_configs_have_keras_class_names_keys_and_values() {
    let not_implemented: BTreeSet<&str> = [
        "name",
        "use_ema",
        "ema_momentum",
        "ema_overwrite_frequency",
        "loss_scale_factor",
        "gradient_accumulation_steps",
    ]
    .into();
    for (name, optimizer) in configurations() {
        let line = FIXTURE.lines().find(|l| l.starts_with(&format!("config {name} "))).unwrap();
        let mut words = line.splitn(4, ' ').skip(2);
        let (class_name, keras_config) = (words.next().unwrap(), words.next().unwrap());
        let keras_config: Value = serde_json::from_str(keras_config).unwrap();
        let state = saved_state(optimizer);
        assert_eq!(state["optimizer"]["class_name"], class_name, "{name}");
        let ours = state["optimizer"]["config"].as_object().unwrap();
        let theirs = keras_config.as_object().unwrap();
        for (key, value) in ours {
            let want = theirs.get(key).unwrap_or_else(|| panic!("{name}: Keras has no '{key}'"));
            let same = match (value.as_f64(), want.as_f64()) {
                (Some(a), Some(b)) => a as f32 == b as f32,
                _ => value == want,
            };
            assert!(same, "{name} '{key}': ours {value}, Keras {want}");
        }
        let missing: BTreeSet<&str> =
            theirs.keys().map(String::as_str).filter(|k| !ours.contains_key(*k)).collect();
        assert!(missing.is_subset(&not_implemented), "{name}: missing {missing:?}");
        // Keras' defaults for the options this library lacks.
        for key in &missing {
            assert!(matches!(*key, "name" | "ema_momentum") || !theirs[*key].as_bool().unwrap_or(false));
        }
    }
}

#[test]
fn new_optimizers_resume_bit_identically_with_their_slots() {
    let (x, y) = images(128);
    let tmp = tempfile::tempdir().unwrap();
    let options = |epochs: usize| FitOptions::new().epochs(epochs).batch_size(32).verbose(0).seed(5);
    let compiled = |optimizer: &Optimizer| {
        let mut model = conv_net(4);
        model.compile(Loss::SparseCategoricalCrossentropy, optimizer.clone(), &[Metric::Accuracy]).unwrap();
        model
    };
    for (i, (optimizer, slot)) in [
        (
            Optimizer::from(RmsProp::new(0.002).momentum(0.5).centered(true).clipvalue(0.1)),
            "average_gradient",
        ),
        (AdamW::new(0.003).amsgrad(true).global_clipnorm(0.5).into(), "velocity_hat"),
        (Adagrad::new(0.05).clipnorm(0.2).weight_decay(0.01).into(), "accumulator"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut straight = compiled(&optimizer);
        straight.fit(&x, &y, &options(2)).unwrap();

        let path = tmp.path().join(format!("ckpt-{i}.safetensors"));
        let mut first = compiled(&optimizer);
        first.fit(&x, &y, &options(1).checkpoint(ModelCheckpoint::new(path.to_str().unwrap()))).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let names = safetensors::SafeTensors::deserialize(&bytes).unwrap().names().len();
        let slot_name = format!("optimizer/dense_2/kernel/{slot}");
        assert!(
            safetensors::SafeTensors::deserialize(&bytes).unwrap().names().contains(&slot_name.as_str()),
            "{slot_name} missing among {names} tensors"
        );

        let mut resumed = Sequential::load(&path).unwrap();
        resumed.fit(&x, &y, &options(2).initial_epoch(resumed.epochs_done())).unwrap();
        assert_ne!(weight_bits(&straight), weight_bits(&conv_net(4)), "training changed the weights");
        assert_eq!(weight_bits(&resumed), weight_bits(&straight), "{optimizer:?}");
    }
}

#[test]
fn invalid_settings_are_refused_by_compile() {
    let mut model = conv_net(2);
    let optimizer = Sgd::new(0.1).clipnorm(1.0).global_clipnorm(1.0);
    let error =
        model.compile(Loss::SparseCategoricalCrossentropy, optimizer, &[Metric::Accuracy]).unwrap_err();
    assert!(error.to_string().contains("only one of clipnorm, clipvalue and global_clipnorm"), "{error}");
    assert!(!model.is_compiled(), "a refused compile leaves the model uncompiled");
}
