//! Image augmentation: `Tensor::affine_transform` and the layers `RandomTranslation`,
//! `RandomRotation`, `RandomZoom` against Keras 3 (`benches/keras/augmentation.py`, recorded
//! in `tests/data/keras-augmentation.txt`); `RandomFlip`'s draws; training-only and seeded
//! behaviour; saving; wgpu against the CPU.

mod parity;

use parity::{assert_close, fixture_values};

use nn::layers::{
    Dense, Dropout, FillMode, Flatten, ForwardCtx, Interpolation, Layer, RandomFlip, RandomRotation,
    RandomTranslation, RandomZoom,
};
use nn::{Device, Tensor};

const SHAPE: [usize; 4] = [2, 7, 9, 2];

/// The script's input: `sin(0.7 n + 0.3) * (1 + n % 3)` at flat index `n`.
fn input() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>())
        .map(|n| ((0.7 * n as f64 + 0.3).sin() * (1 + n % 3) as f64) as f32)
        .collect()
}

/// The script's two transforms (rounded to f32 as it does).
fn transforms() -> Vec<f32> {
    let (s, c) = (0.3f64.sin(), 0.3f64.cos());
    [
        [c, -s, 4.0 - 4.0 * c + 3.0 * s + 0.37, s, c, 3.0 - 4.0 * s - 3.0 * c - 0.21, 0.0, 0.0],
        [1.7, 0.13, -3.3, -0.07, 1.45, -2.1, 0.0, 0.0],
    ]
    .iter()
    .flatten()
    .map(|&v| v as f32)
    .collect()
}

fn keras(tag: &str) -> Vec<f64> {
    fixture_values(include_str!("data/keras-augmentation.txt"), tag)
}

const MODES: [(&str, FillMode); 4] = [
    ("reflect", FillMode::Reflect),
    ("wrap", FillMode::Wrap),
    ("constant", FillMode::Constant),
    ("nearest", FillMode::Nearest),
];
const INTERPOLATIONS: [(&str, Interpolation); 2] =
    [("nearest", Interpolation::Nearest), ("bilinear", Interpolation::Bilinear)];

fn transformed(device: &Device, mode: FillMode, interpolation: Interpolation) -> Vec<f32> {
    let x = Tensor::from_vec(input(), SHAPE, device).unwrap();
    let t = Tensor::from_vec(transforms(), [2, 8], device).unwrap();
    x.affine_transform(&t, interpolation, mode, 0.25).unwrap().to_vec().unwrap()
}

#[test]
fn affine_transform_matches_keras_for_every_fill_mode_and_interpolation() {
    let cpu = nn::device::cpu();
    for (mode_name, mode) in MODES {
        for (interpolation_name, interpolation) in INTERPOLATIONS {
            let tag = format!("ops {mode_name} {interpolation_name}");
            assert_close(&tag, &transformed(&cpu, mode, interpolation), &keras(&tag), 1e-6);
        }
    }
}

/// One layer in training mode (its draws from `seed`).
fn train(layer: &mut dyn Layer, x: &[f32], seed: u64, device: &Device) -> Vec<f32> {
    let x = Tensor::from_slice(x, SHAPE, device).unwrap();
    layer.forward(&x, ForwardCtx::training(seed)).unwrap().to_vec().unwrap()
}

/// With one-value factor ranges the layers' transforms are fixed, so their training outputs
/// can be compared with Keras' directly: this checks how each builds its transform.
fn fixed_layers() -> Vec<(&'static str, Box<dyn Layer>)> {
    vec![
        ("translation", Box::new(RandomTranslation::new((0.2, 0.2), (-0.1, -0.1)))),
        ("rotation", Box::new(RandomRotation::new((0.1, 0.1)))),
        ("zoom", Box::new(RandomZoom::new((0.3, 0.3)).width_factor((-0.2, -0.2)))),
        (
            "rotation_constant_nearest",
            Box::new(
                RandomRotation::new((0.05, 0.05))
                    .fill_mode(FillMode::Constant)
                    .interpolation(Interpolation::Nearest)
                    .fill_value(0.5),
            ),
        ),
    ]
}

#[test]
fn layers_build_keras_transforms() {
    let cpu = nn::device::cpu();
    for (tag, mut layer) in fixed_layers() {
        layer.build(&SHAPE[1..], &mut nn::init::Initializer::new(0, &cpu)).unwrap();
        assert_close(tag, &train(layer.as_mut(), &input(), 7, &cpu), &keras(&format!("layer {tag}")), 1e-6);
        let x = Tensor::from_vec(input(), SHAPE, &cpu).unwrap();
        let inferred = layer.forward(&x, ForwardCtx::inference()).unwrap().to_vec().unwrap();
        assert_eq!(inferred, input(), "{tag}: inference passes the input through");
    }
}

/// Each image is flipped both ways or not at all (Keras' one draw per image), about half of
/// them; one direction flips only that way. The same seed draws the same flips.
#[test]
fn random_flip_flips_half_the_images_and_repeats_with_its_seed() {
    let cpu = nn::device::cpu();
    let n = 64;
    let (h, w) = (3, 4);
    let x: Vec<f32> = (0..n * h * w).map(|i| i as f32).collect();
    let run = |layer: &mut RandomFlip, seed: u64| {
        let t = Tensor::from_slice(&x, [n, h, w, 1], &cpu).unwrap();
        layer.forward(&t, ForwardCtx::training(seed)).unwrap().to_vec().unwrap()
    };
    let image = |v: &[f32], b: usize| v[b * h * w..(b + 1) * h * w].to_vec();
    let flip = |img: &[f32], rows: bool, cols: bool| -> Vec<f32> {
        let mut out = vec![0.0; h * w];
        for r in 0..h {
            for c in 0..w {
                let (sr, sc) = (if rows { h - 1 - r } else { r }, if cols { w - 1 - c } else { c });
                out[r * w + c] = img[sr * w + sc];
            }
        }
        out
    };
    for (mode, rows, cols) in
        [("horizontal_and_vertical", true, true), ("horizontal", false, true), ("vertical", true, false)]
    {
        let mut layer = RandomFlip::new(mode).unwrap();
        let y = run(&mut layer, 11);
        let mut flipped = 0;
        for b in 0..n {
            let (orig, got) = (image(&x, b), image(&y, b));
            if got == flip(&orig, rows, cols) {
                flipped += 1;
            } else {
                assert_eq!(got, orig, "{mode}: image {b} is neither itself nor flipped");
            }
        }
        assert!((16..=48).contains(&flipped), "{mode}: {flipped} of {n} flipped");
        assert_eq!(run(&mut layer, 11), y, "{mode}: the same seed, the same flips");
        assert_ne!(run(&mut layer, 12), y, "{mode}: another step, other flips");
    }
    assert!(RandomFlip::new("diagonal").unwrap_err().to_string().contains("diagonal"));
}

/// Training draws a transform per image from the step's seed mixed with the layer's: the
/// same seeds repeat, other seeds differ, and images of one batch get different transforms.
#[test]
fn draws_follow_the_seeds() {
    let cpu = nn::device::cpu();
    let x = input();
    let mut a = RandomRotation::new(0.2).seed(5);
    let first = train(&mut a, &x, 1, &cpu);
    assert_eq!(train(&mut RandomRotation::new(0.2).seed(5), &x, 1, &cpu), first);
    assert_ne!(train(&mut RandomRotation::new(0.2).seed(6), &x, 1, &cpu), first);
    assert_ne!(train(&mut a, &x, 2, &cpu), first);
    // Both images of the batch hold the same pixels: different draws give different outputs.
    let one = &x[..x.len() / 2];
    let same: Vec<f32> = one.iter().chain(one).copied().collect();
    let y = train(&mut RandomTranslation::new(0.3, 0.3), &same, 3, &cpu);
    assert_ne!(y[..y.len() / 2], y[y.len() / 2..]);
    // Dropout's `seed` mixes in the same way; without one it draws from the step's seed alone.
    let dropped = |layer: Dropout, step: u64| train(&mut { layer }, &x, step, &cpu);
    assert_eq!(dropped(Dropout::new(0.5).seed(5), 1), dropped(Dropout::new(0.5).seed(5), 1));
    assert_ne!(dropped(Dropout::new(0.5).seed(5), 1), dropped(Dropout::new(0.5).seed(6), 1));
    assert_ne!(dropped(Dropout::new(0.5).seed(5), 1), dropped(Dropout::new(0.5), 1));
    let plain = Tensor::from_vec(x.clone(), SHAPE, &cpu).unwrap().dropout(0.5, 1).unwrap().to_vec().unwrap();
    assert_eq!(dropped(Dropout::new(0.5), 1), plain);
}

/// `layer`'s error when a model adds it for `[7, 9, 2]` images.
fn refusal(layer: impl Layer + 'static) -> String {
    nn::Sequential::new().add(layer).unwrap_err().to_string()
}

#[test]
fn bad_settings_are_refused() {
    let shape = [7, 9, 2];
    for (err, what) in [
        (refusal(RandomRotation::new(1.5).input_shape(shape)), "factor"),
        (refusal(RandomTranslation::new(0.1, (-1.2, 0.0)).input_shape(shape)), "width_factor"),
        (refusal(RandomZoom::new((-1.0, 0.2)).input_shape(shape)), "height_factor"),
        (refusal(RandomZoom::new(0.1).fill_value(f32::NAN).input_shape(shape)), "fill_value"),
        (refusal(RandomRotation::new(0.1).input_shape([28, 28])), "[28, 28]"),
    ] {
        assert!(err.contains("Random") && err.contains(what), "{what}: {err}");
    }
    let x = Tensor::from_vec(input(), SHAPE, &nn::device::cpu()).unwrap().to_variable();
    let t = Tensor::from_vec(transforms(), [2, 8], &nn::device::cpu()).unwrap();
    let err = x.affine_transform(&t, Interpolation::Bilinear, FillMode::Reflect, 0.0).unwrap_err();
    assert!(err.to_string().contains("no gradient"), "{err}");
}

/// A model with every augmentation layer saves and loads by Keras' configs (factors, fill
/// modes, interpolation, seeds), predicts the same, and trains.
#[test]
fn augmented_models_save_load_and_train() {
    let mut model = nn::Sequential::new().seed(2);
    model.add(RandomFlip::new("horizontal").unwrap().seed(3).input_shape([7, 9, 2])).unwrap();
    model.add(RandomTranslation::new(0.1, (-0.2, 0.1)).fill_mode(FillMode::Wrap)).unwrap();
    model.add(RandomRotation::new(0.05).interpolation(Interpolation::Nearest).seed(9)).unwrap();
    model.add(RandomZoom::new(0.2).width_factor(0.1).fill_mode(FillMode::Constant).fill_value(0.5)).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model.compile(nn::Loss::MeanSquaredError, nn::Sgd::new(0.01), &[]).unwrap();
    let x = nn::Array::new(input(), SHAPE).unwrap();
    let y = nn::Array::new(vec![0.5, -0.5, 1.0, 0.0], [2, 2]).unwrap();
    let options = nn::FitOptions { epochs: 2, batch_size: 2, verbose: 0, ..Default::default() };
    let history = model.fit(&x, &y, &options).unwrap();
    assert!(history.history["loss"].iter().all(|l| l.is_finite()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("augmented.safetensors");
    model.save(&path).unwrap();
    let mut loaded = nn::Sequential::load(&path).unwrap();
    assert_eq!(loaded.predict(&x, 2).unwrap()[0].data(), model.predict(&x, 2).unwrap()[0].data());
    // Every setting came back: saved again, the file is the same, byte for byte.
    let again = dir.path().join("again.safetensors");
    loaded.save(&again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&path).unwrap());
}

/// wgpu (lavapipe in CI) against the CPU: the resampling kernel for every fill mode and
/// interpolation, and a layer's training output (drawn on the host, so the same).
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_cpu() {
    let Some(gpu) = parity::wgpu_or_skip() else { return };
    let cpu = nn::device::cpu();
    let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
    for (mode_name, mode) in MODES {
        for (interpolation_name, interpolation) in INTERPOLATIONS {
            let want = transformed(&cpu, mode, interpolation);
            let what = format!("{mode_name} {interpolation_name} on wgpu");
            assert_close(&what, &transformed(&gpu, mode, interpolation), &wide(&want), 1e-5);
        }
    }
    let mut layer = RandomRotation::new(0.2);
    let want = train(&mut layer, &input(), 4, &cpu);
    assert_close("RandomRotation on wgpu", &train(&mut layer, &input(), 4, &gpu), &wide(&want), 1e-5);
}
