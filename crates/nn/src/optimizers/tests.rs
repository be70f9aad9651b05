//! The update rules on small cases worked by hand, the refusals, and the config JSON.

use super::*;
use serde_json::json;

/// Runs two updates of `w = [1, -2]` with the constant gradient `g = [0.5, 1]`.
fn two_steps(opt: impl Into<Optimizer>) -> Vec<f32> {
    let dev = crate::device::cpu();
    let mut state = OptimizerState::new(opt.into());
    let mut w = Tensor::from_slice(&[1.0, -2.0], [2], &dev).unwrap().to_variable();
    for _ in 0..2 {
        // loss = sum(w * g) has gradient g.
        let g = Tensor::from_slice(&[0.5, 1.0], [2], &dev).unwrap();
        let grads = w.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        state.apply(&mut [&mut w], &grads).unwrap();
    }
    w.to_vec().unwrap()
}

fn close(a: &[f32], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_plain() {
    close(&two_steps(Sgd::new(0.1)), &[1.0 - 0.1, -2.0 - 0.2]);
}

#[test]
fn sgd_momentum() {
    // v1 = -lr g; v2 = m v1 - lr g = -(1 + m) lr g; w2 = w - (2 + m) lr g
    close(&two_steps(Sgd::new(0.1).momentum(0.9)), &[1.0 - 2.9 * 0.05, -2.0 - 2.9 * 0.1]);
}

#[test]
fn sgd_nesterov() {
    // step_t = m v_t - lr g: step1 = -(1 + m) lr g, step2 = -(1 + m + m^2) lr g
    let total = 1.9 + 2.71;
    close(&two_steps(Sgd::new(0.1).momentum(0.9).nesterov(true)), &[1.0 - total * 0.05, -2.0 - total * 0.1]);
}

#[test]
fn adam_matches_keras_formula() {
    // With a constant gradient, m_t/(sqrt(v_t)) after bias correction is sign(g) exactly,
    // so each step moves by lr * g / (|g| + eps * sqrt(1 - b2^t) / (1 - b1^t)) ~= lr.
    let lr = 0.01f64;
    let mut w = [1.0f64, -2.0];
    let g = [0.5f64, 1.0];
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-7f64);
    let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
    for t in 1..=2 {
        let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        for i in 0..2 {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            w[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
        }
    }
    close(&two_steps(Adam::new(0.01)), &w);
}

#[test]
fn rmsprop_adagrad_and_adamw_follow_their_formulas() {
    // RMSprop, first step: v = (1 - rho) g^2, w -= lr g / sqrt(v + eps).
    let v: Vec<f64> = [0.5f64, 1.0].iter().map(|g| 0.1 * g * g).collect();
    let mut w = [1.0f64, -2.0];
    let mut v2 = v.clone();
    for i in 0..2 {
        let g = [0.5, 1.0][i];
        w[i] -= 0.01 * g / (v[i] + 1e-7).sqrt();
        v2[i] = 0.9 * v[i] + 0.1 * g * g;
        w[i] -= 0.01 * g / (v2[i] + 1e-7).sqrt();
    }
    close(&two_steps(RmsProp::new(0.01)), &w);
    // Adagrad: a = 0.1 + g^2, then + g^2.
    let mut w = [1.0f64, -2.0];
    for (i, g) in [0.5f64, 1.0].into_iter().enumerate() {
        w[i] -= 0.1 * g / (0.1 + g * g + 1e-7).sqrt();
        w[i] -= 0.1 * g / (0.1 + 2.0 * g * g + 1e-7).sqrt();
    }
    close(&two_steps(Adagrad::new(0.1)), &w);
    // AdamW: each step decays w by lr * weight_decay, then takes Adam's step s (the same both
    // steps for a constant gradient and beta_1 = 0): w2 = (w0 d - s) d - s, with d = 0.995.
    let decayed = two_steps(AdamW::new(0.01).weight_decay(0.5).beta_1(0.0));
    let plain = two_steps(Adam::new(0.01).beta_1(0.0));
    for (i, w0) in [1.0f64, -2.0].into_iter().enumerate() {
        let s = (w0 - plain[i] as f64) / 2.0;
        let by_hand = (w0 * 0.995 - s) * 0.995 - s;
        assert!((decayed[i] as f64 - by_hand).abs() < 1e-6, "{decayed:?} vs {plain:?}");
    }
}

#[test]
fn clipping_scales_or_clamps_the_gradient() {
    // |g| = sqrt(1.25): clipnorm 0.5 scales g by 0.5 / |g|.
    let scale = 0.5 / 1.25f64.sqrt();
    close(&two_steps(Sgd::new(0.1).clipnorm(0.5)), &[1.0 - 0.1 * scale, -2.0 - 0.2 * scale]);
    close(&two_steps(Sgd::new(0.1).global_clipnorm(0.5)), &[1.0 - 0.1 * scale, -2.0 - 0.2 * scale]);
    close(&two_steps(Sgd::new(0.1).clipvalue(0.75)), &[1.0 - 0.1, -2.0 - 0.15]);
    // Above the limit nothing changes.
    close(&two_steps(Sgd::new(0.1).clipnorm(5.0)), &[1.0 - 0.1, -2.0 - 0.2]);
}

fn refusal(optimizer: impl Into<Optimizer>) -> String {
    let optimizer = optimizer.into();
    let message = optimizer.check().unwrap_err().to_string();
    // `apply` refuses it too, before changing anything.
    let dev = crate::device::cpu();
    let mut w = Tensor::from_slice(&[1.0], [1], &dev).unwrap().to_variable();
    let grads = w.sum_all().unwrap().backward().unwrap();
    let mut state = OptimizerState::new(optimizer);
    assert_eq!(state.apply(&mut [&mut w], &grads).unwrap_err().to_string(), message);
    assert_eq!((state.iterations(), w.to_vec().unwrap()), (0, vec![1.0]));
    message
}

#[test]
fn invalid_settings_are_refused_with_the_reason() {
    assert!(refusal(Sgd::new(0.1).clipnorm(1.0).global_clipnorm(1.0)).contains("only one of clipnorm"));
    assert!(refusal(Adam::new(0.1).clipvalue(1.0).clipnorm(2.0)).contains("clipnorm=2, clipvalue=1"));
    assert!(refusal(RmsProp::new(0.1).clipnorm(0.0)).contains("clipnorm must be a positive number"));
    assert!(refusal(Adagrad::new(0.1).global_clipnorm(f32::NAN)).contains("global_clipnorm must be"));
    assert!(refusal(Sgd::new(0.1).momentum(1.5)).contains("momentum must be in [0, 1]"));
    assert!(refusal(RmsProp::new(0.1).momentum(-0.5)).contains("momentum must be 0 or more"));
    assert!(refusal(Adagrad::new(0.1).initial_accumulator_value(-1.0)).contains("initial_accumulator_value"));
    assert!(refusal(Adam::new(0.1).weight_decay(-0.1)).contains("weight_decay must be 0 or more"));
    let mut no_decay = AdamW::new(0.1);
    no_decay.base.weight_decay = None;
    assert!(refusal(no_decay).contains("AdamW: weight_decay must be a number"));
}

#[test]
fn slots_are_named_as_keras_names_them() {
    let names = |o: Optimizer| OptimizerState::new(o).slot_names();
    assert_eq!(names(Sgd::new(0.1).into()), [] as [&str; 0]);
    assert_eq!(names(Adam::new(0.1).amsgrad(true).into()), ["momentum", "velocity", "velocity_hat"]);
    assert_eq!(names(AdamW::new(0.1).into()), ["momentum", "velocity"]);
    assert_eq!(names(RmsProp::new(0.1).into()), ["velocity"]);
    assert_eq!(
        names(RmsProp::new(0.1).momentum(0.5).centered(true).into()),
        ["velocity", "momentum", "average_gradient"]
    );
    assert_eq!(names(RmsProp::new(0.1).centered(true).into()), ["velocity", "average_gradient"]);
    assert_eq!(names(Adagrad::new(0.1).into()), ["accumulator"]);
}

#[test]
fn configs_round_trip_and_unknown_options_are_refused() {
    for optimizer in [
        Optimizer::from(Sgd::new(0.1).momentum(0.5).nesterov(true).clipnorm(1.0)),
        Adam::new(0.1).amsgrad(true).clipvalue(0.5).into(),
        AdamW::new(0.1).weight_decay(0.01).global_clipnorm(2.0).into(),
        RmsProp::new(0.1).rho(0.8).momentum(0.2).centered(true).weight_decay(0.1).into(),
        Adagrad::new(0.1).initial_accumulator_value(0.3).epsilon(1e-6).into(),
    ] {
        let value = config::to_json(&optimizer, json!(0.1));
        let class_name = value["class_name"].as_str().unwrap();
        let back = config::from_json(class_name, &value["config"], LearningRate::Constant(0.1)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{optimizer:?}"));
    }
    let mut value = config::to_json(&Adam::new(0.1).into(), json!(0.1));
    let read = |v: &serde_json::Value| config::from_json("Adam", v, LearningRate::Constant(0.1));
    // Keras' keys for options left at their defaults are accepted; others are refused.
    value["config"]["use_ema"] = json!(false);
    value["config"]["name"] = json!("adam");
    read(&value["config"]).unwrap();
    value["config"]["use_ema"] = json!(true);
    assert!(read(&value["config"]).unwrap_err().contains("'use_ema' = true is not implemented"));
    value["config"]["use_ema"] = json!(false);
    value["config"]["foo"] = json!(1);
    assert!(read(&value["config"]).unwrap_err().contains("unknown option 'foo'"));
    // A file from before the base options and amsgrad reads them as unset.
    let old = json!({ "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7 });
    let Optimizer::Adam(adam) = read(&old).unwrap() else { panic!() };
    assert_eq!((adam.amsgrad, adam.base), (false, BaseOptions::default()));
}
