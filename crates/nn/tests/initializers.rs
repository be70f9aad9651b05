//! Keras' weight initializers (`nn::initializers::WeightInit`) on `Dense` and `Conv2D`: the
//! statistics of large draws against Keras' formulas (mean, standard deviation, bounds, the
//! truncation at two standard deviations, Keras' fans of convolution kernels), determinism for
//! a seed, the default draws unchanged, and the configs saved and loaded as Keras writes them.

use std::collections::HashMap;

use nn::init::Initializer;
use nn::initializers::{compute_fans, WeightInit, TRUNCATED_NORMAL_STDDEV};
use nn::layers::{Conv2D, Dense, Flatten, Layer};
use nn::{Activation, Sequential};
use serde_json::{json, Value};

fn fnv(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100000001b3);
    }
}

/// The default initializers (Glorot-uniform kernels, zero biases) draw exactly the numbers, in
/// the order, they drew before initializers could be chosen: a hash of every initial weight of
/// the lecture models, recorded before the change. Trained weights (model4/model5's hashes in
/// docs/reproducibility.md) depend on these.
#[test]
fn default_draws_are_unchanged() {
    let recorded = [
        ("model1", 0, 0x93cac737baa79aaf_u64),
        ("model1", 1, 0x8d302c2acdce5c33),
        ("model1", 7, 0xa3bb240928d3b1d1),
        ("model4", 0, 0x1b9b67a926906436),
        ("model4", 1, 0xa4519ab1962b2a74),
        ("model4", 7, 0x3ed879cec70182b3),
        ("model5", 0, 0xa502db4f9ada583e),
        ("model5", 1, 0x4d460a2e1627e163),
        ("model5", 7, 0xa2a29a2851e003e6),
    ];
    for (name, seed, want) in recorded {
        let model = nn::zoo::by_name(name, &nn::device::cpu(), seed).unwrap();
        let mut h = 0xcbf29ce484222325u64;
        for w in model.get_weights().unwrap() {
            for v in w.data() {
                fnv(&mut h, &v.to_le_bytes());
            }
        }
        assert_eq!(h, want, "{name}, seed {seed}: initial weights changed");
    }
    // Naming the defaults changes nothing either.
    let build = |explicit: bool| {
        let mut m = Sequential::new().seed(5);
        let conv = Conv2D::new(4, (3, 3)).input_shape([6, 6, 2]);
        let dense = Dense::new(3);
        if explicit {
            m.add(conv.kernel_initializer(WeightInit::GlorotUniform).bias_initializer(WeightInit::Zeros))
                .unwrap();
            m.add(Flatten::new()).unwrap();
            m.add(dense.kernel_initializer(WeightInit::GlorotUniform).bias_initializer(WeightInit::Zeros))
                .unwrap();
        } else {
            m.add(conv).unwrap();
            m.add(Flatten::new()).unwrap();
            m.add(dense).unwrap();
        }
        m.get_weights().unwrap()
    };
    assert_eq!(build(true), build(false));
}

struct Stats {
    mean: f64,
    std: f64,
    max_abs_dev: f64,
}

fn stats(values: &[f32], center: f64) -> Stats {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let max_abs_dev = values.iter().map(|&v| (v as f64 - center).abs()).fold(0.0, f64::max);
    Stats { mean, std: var.sqrt(), max_abs_dev }
}

fn draw(init: WeightInit, shape: &[usize], seed: u64) -> Vec<f32> {
    init.create(&mut Initializer::new(seed, &nn::device::cpu()), shape).unwrap().to_vec().unwrap()
}

/// Keras' `VarianceScaling` arithmetic, written out: `(scale, n)` for each initializer.
fn keras_scale(init: WeightInit, shape: &[usize]) -> (f64, f64) {
    let (fan_in, fan_out) = compute_fans(shape);
    let avg = (fan_in + fan_out) as f64 / 2.0;
    match init {
        WeightInit::GlorotUniform | WeightInit::GlorotNormal => (1.0, avg),
        WeightInit::HeUniform | WeightInit::HeNormal => (2.0, fan_in as f64),
        WeightInit::LecunUniform | WeightInit::LecunNormal => (1.0, fan_in as f64),
        _ => unreachable!(),
    }
}

/// Uniform ones: within `±sqrt(3 scale / n)`, reaching close to it, standard deviation
/// `limit / sqrt(3)`; normal ones: truncated at two (pre-truncation) standard deviations
/// `sqrt(scale / n) / 0.8796...`, reaching close to it, standard deviation `sqrt(scale / n)`.
#[test]
fn variance_scaling_statistics_follow_keras() {
    // A dense kernel and a convolution kernel (fan_in 5*5*64 = 1600, fan_out 5*5*32 = 800).
    let shapes: [&[usize]; 2] = [&[300, 400], &[5, 5, 64, 32]];
    assert_eq!(compute_fans(shapes[1]), (1600, 800));
    for shape in shapes {
        for init in [
            WeightInit::GlorotUniform,
            WeightInit::HeUniform,
            WeightInit::LecunUniform,
            WeightInit::GlorotNormal,
            WeightInit::HeNormal,
            WeightInit::LecunNormal,
        ] {
            let values = draw(init, shape, 3);
            let (scale, n) = keras_scale(init, shape);
            let s = stats(&values, 0.0);
            let count = values.len() as f64;
            let want_std = (scale / n).sqrt();
            let what =
                format!("{init:?} on {shape:?}: {:.3e} / {:.3e} / {:.3e}", s.mean, s.std, s.max_abs_dev);
            assert!(s.mean.abs() < 5.0 * want_std / count.sqrt(), "mean: {what}");
            assert!((s.std / want_std - 1.0).abs() < 0.01, "std {want_std:.4e}: {what}");
            let bound = if matches!(
                init,
                WeightInit::GlorotUniform | WeightInit::HeUniform | WeightInit::LecunUniform
            ) {
                (3.0 * scale / n).sqrt()
            } else {
                2.0 * (scale / n).sqrt() / TRUNCATED_NORMAL_STDDEV
            };
            assert!(s.max_abs_dev <= bound * (1.0 + 1e-6), "bound {bound:.4e}: {what}");
            assert!(s.max_abs_dev > 0.99 * bound, "reaches its bound {bound:.4e}: {what}");
            // Truncated at two (pre-truncation) standard deviations, P(|z| > 1 | |z| <= 2) =
            // (0.31731 - 0.04550) / 0.95450 = 0.2848 of the values lie beyond one.
            if !matches!(init, WeightInit::GlorotUniform | WeightInit::HeUniform | WeightInit::LecunUniform) {
                let sigma = bound / 2.0;
                let beyond = values.iter().filter(|&&v| (v as f64).abs() > sigma).count() as f64 / count;
                assert!((beyond - 0.2848).abs() < 0.01, "fraction beyond sigma {beyond}: {what}");
            }
        }
    }
}

#[test]
fn random_normal_is_not_truncated_and_random_uniform_keeps_its_range() {
    let shape = [400, 300];
    let values = draw(WeightInit::RandomNormal { mean: 0.5, stddev: 0.2 }, &shape, 11);
    let s = stats(&values, 0.5);
    assert!((s.mean - 0.5).abs() < 5.0 * 0.2 / (values.len() as f64).sqrt(), "mean {}", s.mean);
    assert!((s.std / 0.2 - 1.0).abs() < 0.01, "std {}", s.std);
    // Untruncated: about 0.27% of the values lie beyond three standard deviations.
    let beyond =
        values.iter().filter(|&&v| (v as f64 - 0.5).abs() > 0.6).count() as f64 / values.len() as f64;
    assert!((beyond - 0.0027).abs() < 0.0008, "beyond 3 sigma {beyond}");
    assert!(s.max_abs_dev > 0.8, "max deviation {}", s.max_abs_dev);

    let values = draw(WeightInit::RandomUniform { minval: -0.3, maxval: 0.1 }, &shape, 11);
    let s = stats(&values, -0.1);
    assert!(values.iter().all(|&v| (-0.3..0.1).contains(&v)));
    assert!(
        (s.mean + 0.1).abs() < 5.0 * 0.4 / 12f64.sqrt() / (values.len() as f64).sqrt(),
        "mean {}",
        s.mean
    );
    assert!((s.std / (0.4 / 12f64.sqrt()) - 1.0).abs() < 0.01, "std {}", s.std);
    assert!(s.max_abs_dev > 0.199, "range covered: {}", s.max_abs_dev);
    // Keras' defaults.
    assert_eq!(WeightInit::RANDOM_NORMAL, "random_normal".parse().unwrap());
    assert_eq!(WeightInit::RANDOM_UNIFORM, WeightInit::RandomUniform { minval: -0.05, maxval: 0.05 });
}

/// The layers pass their weights' shapes, so the fans are Keras': a `Conv2D` kernel's include
/// its receptive field; biases take their own initializer.
#[test]
fn layers_draw_with_keras_fans_and_their_bias_initializers() {
    let mut model = Sequential::new().seed(2);
    let conv = Conv2D::new(48, (5, 5)).input_shape([9, 9, 40]);
    model
        .add(conv.kernel_initializer(WeightInit::HeNormal).bias_initializer(WeightInit::Constant(0.25)))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    let dense = Dense::new(200).activation(Activation::Relu);
    model.add(dense.kernel_initializer(WeightInit::LecunUniform).bias_initializer(WeightInit::Ones)).unwrap();
    let w = model.get_weights().unwrap();
    // Conv2D: fan_in = 5 * 5 * 40 = 1000.
    let s = stats(w[0].data(), 0.0);
    assert!((s.std / (2.0f64 / 1000.0).sqrt() - 1.0).abs() < 0.02, "conv std {}", s.std);
    assert!(s.max_abs_dev <= 2.0 * (2.0f64 / 1000.0).sqrt() / TRUNCATED_NORMAL_STDDEV * (1.0 + 1e-6));
    assert!(w[1].data().iter().all(|&b| b == 0.25));
    // Dense on 5 * 5 * 48 = 1200 inputs: limit sqrt(3 / 1200).
    let limit = (3.0f64 / 1200.0).sqrt();
    let s = stats(w[2].data(), 0.0);
    assert!(s.max_abs_dev < limit && s.max_abs_dev > 0.99 * limit, "dense {}", s.max_abs_dev);
    assert!((s.std / (limit / 3f64.sqrt()) - 1.0).abs() < 0.02, "dense std {}", s.std);
    assert!(w[3].data().iter().all(|&b| b == 1.0));
}

#[test]
fn one_seed_one_draw() {
    for init in
        [WeightInit::HeNormal, WeightInit::GlorotNormal, WeightInit::LecunUniform, WeightInit::RANDOM_NORMAL]
    {
        assert_eq!(draw(init, &[3, 3, 4, 8], 9), draw(init, &[3, 3, 4, 8], 9), "{init:?}");
        assert_ne!(draw(init, &[3, 3, 4, 8], 9), draw(init, &[3, 3, 4, 8], 10), "{init:?}");
    }
    // A model built twice from one seed is identical, with any initializers.
    let build = || {
        let mut m = Sequential::new().seed(4);
        m.add(Dense::new(16).input_shape([8]).kernel_initializer(WeightInit::HeUniform)).unwrap();
        m.add(Dense::new(4).bias_initializer(WeightInit::RANDOM_UNIFORM)).unwrap();
        m.get_weights().unwrap()
    };
    assert_eq!(build(), build());
}

#[test]
fn bad_parameters_are_refused_when_the_layer_is_built() {
    let cases: [(WeightInit, &str); 3] = [
        (WeightInit::Constant(f32::NAN), "Constant initializer: value NaN is not finite"),
        (
            WeightInit::RandomNormal { mean: 0.0, stddev: -1.0 },
            "stddev -1 must be finite, stddev not negative",
        ),
        (WeightInit::RandomUniform { minval: 1.0, maxval: -1.0 }, "minval 1 and maxval -1 must be finite"),
    ];
    for (init, want) in cases {
        let mut dense = Dense::new(2).kernel_initializer(init);
        let err = dense.build(&[3], &mut Initializer::new(0, &nn::device::cpu())).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// The file's metadata, and the architecture in it.
fn architecture(path: &std::path::Path) -> (HashMap<String, String>, Value) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    let arch = serde_json::from_str(&metadata[nn::saving::ARCHITECTURE_KEY]).unwrap();
    (metadata, arch)
}

fn model_with_initializers() -> Sequential {
    let mut m = Sequential::new().seed(3);
    let conv = Conv2D::new(3, (2, 2)).input_shape([5, 5, 2]);
    m.add(
        conv.kernel_initializer(WeightInit::HeNormal)
            .bias_initializer(WeightInit::RandomNormal { mean: 0.5, stddev: 0.25 }),
    )
    .unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(4).kernel_initializer(WeightInit::RandomUniform { minval: -0.5, maxval: 0.25 }))
        .unwrap();
    m.add(Dense::new(2).bias_initializer(WeightInit::Constant(0.125))).unwrap();
    m.add(Dense::new(2).kernel_initializer(WeightInit::LecunNormal).bias_initializer(WeightInit::Ones))
        .unwrap();
    m.add(Dense::new(2).kernel_initializer(WeightInit::GlorotNormal).bias_initializer(WeightInit::Zeros))
        .unwrap();
    m.add(Dense::new(2).kernel_initializer(WeightInit::HeUniform).use_bias(false)).unwrap();
    m.add(Dense::new(2).kernel_initializer(WeightInit::LecunUniform)).unwrap();
    m
}

/// Initializers other than the defaults are saved as Keras writes them and read back (a model
/// rebuilt from the file's architecture draws the same weights from the same seed); the
/// defaults are left out, as before.
#[test]
fn configs_round_trip_through_save_and_load() {
    let model = model_with_initializers();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("init.safetensors");
    model.save(&path).unwrap();
    let (mut metadata, mut arch) = architecture(&path);
    let config = |arch: &Value, i: usize, key: &str| arch["layers"][i]["config"][key].clone();
    assert_eq!(
        config(&arch, 0, "kernel_initializer"),
        json!({"class_name": "HeNormal", "config": {"seed": null}})
    );
    assert_eq!(
        config(&arch, 0, "bias_initializer"),
        json!({"class_name": "RandomNormal", "config": {"seed": null, "mean": 0.5, "stddev": 0.25}})
    );
    assert_eq!(
        config(&arch, 2, "kernel_initializer"),
        json!({"class_name": "RandomUniform", "config": {"seed": null, "minval": -0.5, "maxval": 0.25}})
    );
    assert_eq!(config(&arch, 2, "bias_initializer"), Value::Null, "the default is left out");
    assert_eq!(config(&arch, 3, "kernel_initializer"), Value::Null, "the default is left out");
    assert_eq!(
        config(&arch, 3, "bias_initializer"),
        json!({"class_name": "Constant", "config": {"value": 0.125}})
    );
    assert_eq!(config(&arch, 4, "bias_initializer"), json!({"class_name": "Ones", "config": {}}));
    assert_eq!(config(&arch, 5, "bias_initializer"), Value::Null);

    let loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.get_weights().unwrap(), model.get_weights().unwrap());
    let again = dir.path().join("again.safetensors");
    loaded.save(&again).unwrap();
    assert_eq!(architecture(&again).1, arch, "the initializers survive a load and a save");

    // Keras' own forms (module, registered_name, Keras 3.15's input_axes / output_axes, a
    // name) load, and are saved back in the form above.
    let saved = arch.clone();
    arch["layers"][0]["config"]["kernel_initializer"] = json!({"module": "keras.initializers",
        "class_name": "HeNormal", "config": {"seed": null, "input_axes": null, "output_axes": null},
        "registered_name": null});
    arch["layers"][3]["config"]["kernel_initializer"] = json!("glorot_uniform");
    arch["layers"][4]["config"]["bias_initializer"] = json!("ones");
    let loaded = with_architecture(&path, &mut metadata, &arch).unwrap();
    loaded.save(&again).unwrap();
    assert_eq!(architecture(&again).1, saved);

    // Unknown initializers and what is not implemented are refused, naming the layer.
    let refused = [
        (
            0,
            "kernel_initializer",
            json!({"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": null}}),
            "'conv2d_1' (Conv2D): kernel_initializer: unknown initializer 'Orthogonal'",
        ),
        (
            2,
            "bias_initializer",
            json!("truncated_normal"),
            "'dense_1' (Dense): bias_initializer: unknown initializer 'truncated_normal'",
        ),
        (
            0,
            "kernel_initializer",
            json!({"class_name": "HeNormal", "config": {"seed": 42}}),
            "seed 42 is not supported: every weight is drawn from the model's seed",
        ),
        (
            3,
            "bias_initializer",
            json!({"class_name": "Constant", "config": {"value": 1.0, "dtype": "int32"}}),
            "unknown config key 'dtype'",
        ),
    ];
    for (layer, key, value, want) in refused {
        let mut edited = saved.clone();
        edited["layers"][layer]["config"][key] = value;
        let err = with_architecture(&path, &mut metadata, &edited).err().expect(want);
        assert!(err.contains(want), "{want}: {err}");
    }
}

/// Loads the file at `path` (the model's weights) with its architecture replaced by `arch`.
fn with_architecture(
    path: &std::path::Path,
    metadata: &mut HashMap<String, String>,
    arch: &Value,
) -> Result<Sequential, String> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    metadata.insert(nn::saving::ARCHITECTURE_KEY.to_string(), arch.to_string());
    let edited = path.with_extension("edited.safetensors");
    std::fs::write(&edited, safetensors::serialize(tensors, Some(metadata.clone())).unwrap()).unwrap();
    Sequential::load(&edited).map_err(|e| e.to_string())
}
