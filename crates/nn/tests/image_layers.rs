//! `ZeroPadding2D`, `UpSampling2D`, `SpatialDropout2D`, `LeakyReLU`, `ReLU` and `Rescaling`:
//! outputs and input gradients against Keras 3 (`benches/keras/image_layers.py`, recorded in
//! `tests/data/keras-image-layers.txt`) and central differences, `SpatialDropout2D`'s masks,
//! saving, Keras' names and configs, refused settings, and wgpu against the CPU.

mod parity;

use parity::{assert_close, fixture_values};

use nn::init::Initializer;
use nn::layers::{
    Conv2D, Dense, Flatten, ForwardCtx, Layer, LeakyReLU, ReLU, Rescaling, SpatialDropout2D, UpSampling2D,
    ZeroPadding2D,
};
use nn::{Device, Sequential, Tensor};
use serde_json::{json, Value};
use std::collections::HashMap;

const SHAPE: [usize; 4] = [2, 3, 4, 3];

/// The script's input: `sin(0.7 n + 0.3) * (1 + n % 3)` at flat index `n`.
fn input() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>())
        .map(|n| ((0.7 * n as f64 + 0.3).sin() * (1 + n % 3) as f64) as f32)
        .collect()
}

fn keras(tag: &str, what: &str) -> Vec<f64> {
    fixture_values(include_str!("data/keras-image-layers.txt"), &format!("{tag} {what}"))
}

/// The script's layers by tag, with the inputs where their derivative jumps.
fn cases() -> Vec<(&'static str, Box<dyn Layer>, Vec<f32>)> {
    vec![
        ("zero_padding", Box::new(ZeroPadding2D::new(((1, 2), (3, 0)))), vec![]),
        ("zero_padding_int", Box::new(ZeroPadding2D::new(2)), vec![]),
        ("up_sampling", Box::new(UpSampling2D::new().size((2, 3))), vec![]),
        ("leaky_relu", Box::new(LeakyReLU::new()), vec![0.0]),
        ("leaky_relu_0.1", Box::new(LeakyReLU::new().negative_slope(0.1)), vec![0.0]),
        ("relu", Box::new(ReLU::new()), vec![0.0]),
        ("relu_capped", Box::new(ReLU::new().max_value(Some(1.5)).negative_slope(0.1)), vec![0.0, 1.5]),
        (
            "relu_threshold",
            Box::new(ReLU::new().max_value(Some(2.0)).negative_slope(0.2).threshold(0.5)),
            vec![0.5, 2.0],
        ),
        ("relu_threshold_uncapped", Box::new(ReLU::new().threshold(0.5)), vec![0.5]),
        ("rescaling", Box::new(Rescaling::new(1.0 / 127.5).offset(-1.0)), vec![]),
    ]
}

/// Builds `layer` for the script's input; its output (dims with the batch, values) for `x`
/// and the gradient of `sum(output * w)` with `w[m] = cos(0.5 m)` with respect to `x`.
fn run(
    layer: &mut dyn Layer,
    x: &[f32],
    ctx: ForwardCtx,
    device: &Device,
) -> (Vec<usize>, Vec<f32>, Vec<f32>) {
    let built = layer.build(&SHAPE[1..], &mut Initializer::new(0, device)).unwrap();
    let x = Tensor::from_slice(x, SHAPE, device).unwrap().to_variable();
    let y = layer.forward(&x, ctx).unwrap();
    assert_eq!(&y.dims()[1..], &built[..], "{}: build's shape", layer.class_name());
    let w: Vec<f32> = (0..y.numel()).map(|m| (0.5 * m as f64).cos() as f32).collect();
    let w = Tensor::from_vec(w, y.dims().to_vec(), device).unwrap();
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    (y.dims().to_vec(), y.to_vec().unwrap(), grads.get(&x).unwrap().to_vec().unwrap())
}

/// Asserts `|got - want| <= tolerance * (1 + |want|)` everywhere; returns the largest
/// `|got - want| / (1 + |want|)`.
/// Training and inference alike (Rescaling is active in both, as in Keras).
#[test]
fn outputs_and_gradients_match_keras() {
    let device = nn::device::cpu();
    for (tag, mut layer, _) in cases() {
        let (dims, y, dx) = run(layer.as_mut(), &input(), ForwardCtx::inference(), &device);
        let dims: Vec<f64> = dims.iter().map(|&d| d as f64).collect();
        assert_eq!(dims, keras(tag, "shape"), "{tag}: shape");
        let dy = assert_close(&format!("{tag} output"), &y, &keras(tag, "y"), 1e-6);
        let ddx = assert_close(&format!("{tag} input gradient"), &dx, &keras(tag, "dx"), 1e-6);
        eprintln!("{tag}: largest difference from Keras {dy:.1e} (output), {ddx:.1e} (gradient)");
        let (_, y_train, dx_train) = run(layer.as_mut(), &input(), ForwardCtx::training(3), &device);
        assert_eq!((y_train, dx_train), (y, dx), "{tag}: training = inference");
    }
}

/// The input gradient against central differences of `sum(output * w)` (f64 sums of the f32
/// outputs), away from the inputs where a derivative jumps.
#[test]
fn gradients_match_central_differences() {
    let device = nn::device::cpu();
    let x = input();
    let h = 1e-2f32;
    for (tag, mut layer, kinks) in cases() {
        let (_, _, dx) = run(layer.as_mut(), &x, ForwardCtx::inference(), &device);
        let mut objective = |x: &[f32]| -> f64 {
            let (_, y, _) = run(layer.as_mut(), x, ForwardCtx::inference(), &device);
            y.iter().enumerate().map(|(m, &y)| y as f64 * (0.5 * m as f64).cos() as f32 as f64).sum()
        };
        let mut checked = 0;
        for i in (0..x.len()).filter(|&i| kinks.iter().all(|k| (x[i] - k).abs() > 2.0 * h)) {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (objective(&plus) - objective(&minus)) / (2.0 * h as f64);
            assert!((dx[i] as f64 - numeric).abs() < 2e-4, "{tag} d/dx[{i}]: {} vs {numeric}", dx[i]);
            checked += 1;
        }
        assert!(checked > x.len() * 3 / 4, "{tag}: only {checked} points checked");
    }
}

/// `SpatialDropout2D` drops whole channels per sample, about `rate` of them, scaling the rest
/// by `1 / (1 - rate)`; one seed gives one mask; identity at inference and with rate 0.
#[test]
fn spatial_dropout_drops_whole_channels() {
    let device = nn::device::cpu();
    let (n, h, w, c, rate) = (8, 2, 3, 400, 0.3f32);
    let values: Vec<f32> = (0..n * h * w * c).map(|i| 1.0 + (i % 7) as f32).collect();
    let x = Tensor::from_vec(values.clone(), [n, h, w, c], &device).unwrap().to_variable();
    let mut layer = SpatialDropout2D::new(rate);
    layer.build(&[h, w, c], &mut Initializer::new(0, &device)).unwrap();
    let y = layer.forward(&x, ForwardCtx::training(11)).unwrap();
    let out = y.to_vec().unwrap();
    let grad = y.sum_all().unwrap().backward().unwrap().get(&x).unwrap().to_vec().unwrap();
    let mut dropped = 0;
    for (b, k) in (0..n).flat_map(|b| (0..c).map(move |k| (b, k))) {
        let at: Vec<usize> = (0..h * w).map(|p| (b * h * w + p) * c + k).collect();
        let kept = out[at[0]] != 0.0;
        dropped += usize::from(!kept);
        for &i in &at {
            let want = if kept { values[i] / (1.0 - rate) } else { 0.0 };
            assert!(
                (out[i] - want).abs() <= 1e-6 * want.abs(),
                "sample {b} channel {k}: {} vs {want}",
                out[i]
            );
            let mask = if kept { 1.0 / (1.0 - rate) } else { 0.0 };
            assert!((grad[i] - mask).abs() <= 1e-6, "gradient at {i}: {} vs the mask {mask}", grad[i]);
        }
    }
    let fraction = dropped as f32 / (n * c) as f32;
    assert!((fraction - rate).abs() < 0.04, "dropped {fraction} of {} channels", n * c);
    let again = layer.forward(&x, ForwardCtx::training(11)).unwrap().to_vec().unwrap();
    assert_eq!(again, out, "one seed, one mask");
    assert_ne!(layer.forward(&x, ForwardCtx::training(12)).unwrap().to_vec().unwrap(), out);
    assert_eq!(layer.forward(&x, ForwardCtx::inference()).unwrap().to_vec().unwrap(), values);
    let mut none = SpatialDropout2D::new(0.0);
    assert_eq!(none.forward(&x, ForwardCtx::training(11)).unwrap().to_vec().unwrap(), values);
}

fn all_layers_model() -> Sequential {
    let mut model = Sequential::new().seed(9);
    model.add(Rescaling::new(0.5).offset(-1.0).input_shape([5, 4, 2])).unwrap();
    model.add(ZeroPadding2D::new(((1, 2), (0, 1)))).unwrap();
    model.add(Conv2D::new(3, (3, 3))).unwrap();
    model.add(ReLU::new().max_value(Some(0.75)).negative_slope(0.125).threshold(0.0625)).unwrap();
    model.add(UpSampling2D::new().size((2, 1))).unwrap();
    model.add(SpatialDropout2D::new(0.25).seed(42)).unwrap();
    model.add(LeakyReLU::new().negative_slope(0.25)).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model
}

/// The file's metadata, and the architecture in it.
fn architecture(path: &std::path::Path) -> (HashMap<String, String>, Value) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    let arch = serde_json::from_str(&metadata[nn::saving::ARCHITECTURE_KEY]).unwrap();
    (metadata, arch)
}

/// Saved with Keras' automatic names and config keys (checked with Keras 3.15.1, see the
/// fixture's `config` lines) and loaded back, predicting the same.
#[test]
fn a_model_of_all_of_them_saves_and_loads() {
    let mut model = all_layers_model();
    // [5, 4, 2] padded to [8, 5, 2], convolved to [6, 3, 3], upsampled to [12, 3, 3].
    assert_eq!(model.count_params(), 3 * 3 * 2 * 3 + 3 + 12 * 3 * 3 * 2 + 2);
    let names = model.layer_names().to_vec();
    assert_eq!(&names[..2], ["rescaling_1", "zero_padding2d_1"]);
    assert_eq!(&names[3..7], ["re_lu_1", "up_sampling2d_1", "spatial_dropout2d_1", "leaky_re_lu_1"]);
    let x = nn::Array::new((0..120).map(|i| ((i * 37) % 11) as f32 / 2.0).collect(), [3, 5, 4, 2]).unwrap();
    let y = nn::Array::new(vec![0.5, -0.5, 1.0, 0.0, -1.0, 0.25], [3, 2]).unwrap();
    model.compile(nn::Loss::MeanSquaredError, nn::Sgd::new(0.05), &[]).unwrap();
    let before = model.get_weights().unwrap();
    let options = nn::FitOptions { epochs: 2, batch_size: 2, verbose: 0, ..Default::default() };
    model.fit(&x, &y, &options).unwrap();
    assert_ne!(model.get_weights().unwrap()[0].data(), before[0].data(), "trained through every layer");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.safetensors");
    model.save(&path).unwrap();
    let configs: Vec<Value> =
        architecture(&path).1["layers"].as_array().unwrap().iter().map(|l| l["config"].clone()).collect();
    assert_eq!(configs[0], json!({"scale": 0.5, "offset": -1.0}));
    assert_eq!(configs[1], json!({"padding": [[1, 2], [0, 1]], "data_format": "channels_last"}));
    assert_eq!(configs[3], json!({"max_value": 0.75, "negative_slope": 0.125, "threshold": 0.0625}));
    let up = json!({"size": [2, 1], "data_format": "channels_last", "interpolation": "nearest"});
    assert_eq!(configs[4], up);
    assert_eq!(configs[5], json!({"rate": 0.25, "seed": 42, "data_format": "channels_last"}));
    assert_eq!(configs[6], json!({"negative_slope": 0.25}));
    let mut loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.layer_names(), names);
    let want = model.predict(&x, 2).unwrap();
    assert!(want[0].data().iter().any(|&v| v != 0.0));
    assert_eq!(loaded.predict(&x, 2).unwrap(), want);
}

/// What Keras refuses, refused when the layer is built, naming the layer.
#[test]
fn bad_settings_and_shapes_are_refused() {
    let bad: Vec<(Box<dyn Layer>, &[usize], &str)> = vec![
        (Box::new(ZeroPadding2D::new(1)), &[12], "expects (height, width, channels) input, got [12]"),
        (Box::new(UpSampling2D::new()), &[4, 3], "expects (height, width, channels) input, got [4, 3]"),
        (Box::new(UpSampling2D::new().size((0, 2))), &[4, 3, 1], "size (0, 2) must be at least 1"),
        (Box::new(SpatialDropout2D::new(0.5)), &[7], "expects (height, width, channels) input, got [7]"),
        (Box::new(SpatialDropout2D::new(1.0)), &[2, 2, 1], "rate 1 must be in [0, 1)"),
        (Box::new(LeakyReLU::new().negative_slope(-0.1)), &[3], "negative_slope -0.1 must be"),
        (Box::new(ReLU::new().max_value(Some(-1.0))), &[3], "max_value -1 must be a number at least 0"),
        (Box::new(ReLU::new().negative_slope(f32::NAN)), &[3], "negative_slope NaN must be"),
        (Box::new(ReLU::new().threshold(-0.5)), &[3], "threshold -0.5 must be"),
        (Box::new(Rescaling::new(f32::INFINITY)), &[3], "scale inf and offset 0 must be finite"),
    ];
    let device = nn::device::cpu();
    for (mut layer, shape, want) in bad {
        let want = format!("{} {want}", layer.class_name());
        let err = layer.build(shape, &mut Initializer::new(0, &device)).unwrap_err();
        assert!(matches!(err, nn::Error::Build(_)) && err.to_string().contains(&want), "{want}: {err}");
    }
    let x = Tensor::zeros([2, 12], &device).unwrap();
    let err = UpSampling2D::new().forward(&x, ForwardCtx::inference()).unwrap_err().to_string();
    assert!(
        err.contains("UpSampling2D expects [batch, height, width, channels] input, got [2, 12]"),
        "{err}"
    );
}

/// Saves a one-layer model, edits the layer's config, and loads it.
fn load_edited(layer: impl Layer, edit: impl FnOnce(&mut Value)) -> Result<Sequential, String> {
    let mut model = Sequential::new();
    model.add(layer).unwrap();
    model.add(Flatten::new()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.safetensors");
    model.save(&path).unwrap();
    let (mut metadata, mut arch) = architecture(&path);
    edit(&mut arch["layers"][0]["config"]);
    metadata.insert(nn::saving::ARCHITECTURE_KEY.to_string(), arch.to_string());
    let no_tensors: Vec<(String, safetensors::tensor::TensorView)> = Vec::new();
    std::fs::write(&path, safetensors::serialize(no_tensors, Some(metadata)).unwrap()).unwrap();
    Sequential::load(&path).map_err(|e| e.to_string())
}

/// Keras options this library does not implement are refused with the reason, never ignored;
/// the other forms Keras writes load.
#[test]
fn configs_asking_for_what_is_not_implemented_are_refused() {
    let shape = [4, 4, 2];
    let refuses = |result: Result<Sequential, String>, want: &str| {
        let err = result.err().expect(want);
        assert!(err.contains(want), "{want}: {err}");
    };
    let bilinear = |c: &mut Value| c["interpolation"] = json!("bilinear");
    let why = "'up_sampling2d_1' (UpSampling2D): interpolation \"bilinear\" is not supported: only";
    refuses(load_edited(UpSampling2D::new().input_shape(shape), bilinear), why);
    let first = |c: &mut Value| c["data_format"] = json!("channels_first");
    refuses(load_edited(ZeroPadding2D::new(1).input_shape(shape), first), "(ZeroPadding2D): data_format");
    let seed = |c: &mut Value| c["seed"] = json!(-3);
    let why = "(SpatialDropout2D): config field 'seed' is missing or not null or a non-negative integer";
    refuses(load_edited(SpatialDropout2D::new(0.5).input_shape(shape), seed), why);
    let per_channel = |c: &mut Value| c["scale"] = json!([1.0, 2.0]);
    let why = "'rescaling_1' (Rescaling): config field 'scale' is [1.0,2.0], but only one number";
    refuses(load_edited(Rescaling::new(2.0).input_shape(shape), per_channel), why);
    let word = |c: &mut Value| c["threshold"] = json!("high");
    let why = "'re_lu_1' (ReLU): config field 'threshold' is missing or not a number";
    refuses(load_edited(ReLU::new().input_shape(shape), word), why);
    let int = load_edited(ZeroPadding2D::new(1).input_shape(shape), |c| c["padding"] = json!(2)).unwrap();
    assert_eq!(int.output_shape().unwrap(), &[(4 + 4) * (4 + 4) * 2]);
    let mut keras2 = load_edited(LeakyReLU::new().input_shape([3]), |c| *c = json!({"alpha": 0.25})).unwrap();
    let y = keras2.predict(&nn::Array::new(vec![-4.0, 0.0, 2.0], [1, 3]).unwrap(), 1).unwrap();
    assert_eq!(y[0].data(), &[-1.0, 0.0, 2.0]);
}

/// wgpu (lavapipe in CI) against the CPU; the spatial dropout mask too, from the same seed.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_cpu() {
    let Some(gpu) = parity::wgpu_or_skip() else { return };
    let cpu = nn::device::cpu();
    let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let mut cases = cases();
    cases.push(("spatial_dropout", Box::new(SpatialDropout2D::new(0.5)), vec![]));
    for (tag, mut layer, _) in cases {
        let ctx = ForwardCtx::training(5);
        let (dims, y, dx) = run(layer.as_mut(), &input(), ctx, &cpu);
        let (gdims, gy, gdx) = run(layer.as_mut(), &input(), ctx, &gpu);
        assert_eq!(gdims, dims, "{tag}: shape on wgpu");
        let dy = assert_close(&format!("{tag} output on wgpu"), &gy, &wide(&y), 1e-6);
        let ddx = assert_close(&format!("{tag} gradient on wgpu"), &gdx, &wide(&dx), 1e-6);
        eprintln!("{tag}: largest wgpu-CPU difference {dy:.1e} (output), {ddx:.1e} (gradient)");
    }
}
