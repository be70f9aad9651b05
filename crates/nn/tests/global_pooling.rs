//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D`: outputs and input gradients against
//! Keras 3 (`benches/keras/global_pooling.py`, recorded in `tests/data/keras-global-pooling.txt`),
//! gradients against central differences, wgpu against the CPU, shapes and saving.

mod parity;

use parity::{assert_close, fixture_values};

use nn::layers::{Dense, ForwardCtx, GlobalAveragePooling2D, GlobalMaxPooling2D, Layer};
use nn::{Device, Tensor};

const SHAPE: [usize; 4] = [2, 3, 4, 5];

/// The script's input: `sin(0.7 n + 0.3) * (1 + n % 3)` at flat index `n`.
fn input() -> Vec<f32> {
    (0..SHAPE.iter().product::<usize>())
        .map(|n| ((0.7 * n as f64 + 0.3).sin() * (1 + n % 3) as f64) as f32)
        .collect()
}

/// The script's output weights: `cos(0.5 m)` over `[2, 5]`.
fn weights() -> Vec<f32> {
    (0..10).map(|m| (0.5 * m as f64).cos() as f32).collect()
}

fn keras(class: &str, what: &str) -> Vec<f64> {
    fixture_values(include_str!("data/keras-global-pooling.txt"), &format!("{class} {what}"))
}

/// `layer`'s output for `x` and the gradient of `sum(output * weights)` with respect to `x`.
fn run(layer: &mut dyn Layer, x: &[f32], device: &Device) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::from_slice(x, SHAPE, device).unwrap().to_variable();
    let y = layer.forward(&x, ForwardCtx::inference()).unwrap();
    let w = Tensor::from_vec(weights(), [2, 5], device).unwrap();
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    (y.to_vec().unwrap(), grads.get(&x).unwrap().to_vec().unwrap())
}

fn layers() -> [(Box<dyn Layer>, &'static str); 2] {
    [
        (Box::new(GlobalAveragePooling2D::new()), "GlobalAveragePooling2D"),
        (Box::new(GlobalMaxPooling2D::new()), "GlobalMaxPooling2D"),
    ]
}

#[test]
fn outputs_and_gradients_match_keras() {
    let device = nn::device::cpu();
    for (mut layer, class) in layers() {
        let (y, dx) = run(layer.as_mut(), &input(), &device);
        assert_close(&format!("{class} output"), &y, &keras(class, "y"), 1e-6);
        assert_close(&format!("{class} input gradient"), &dx, &keras(class, "dx"), 1e-6);
    }
}

/// The input gradient against central differences of `sum(output * weights)`, in f64 over
/// the f32 outputs (both layers are piecewise linear: the differences are exact up to
/// rounding away from ties, and the input has none).
#[test]
fn gradients_match_central_differences() {
    let device = nn::device::cpu();
    let x = input();
    let w = weights();
    let objective = |layer: &mut dyn Layer, x: &[f32]| -> f64 {
        let (y, _) = run(layer, x, &device);
        y.iter().zip(&w).map(|(&y, &w)| y as f64 * w as f64).sum()
    };
    for (mut layer, class) in layers() {
        let (_, dx) = run(layer.as_mut(), &x, &device);
        let h = 1e-2f32;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric =
                (objective(layer.as_mut(), &plus) - objective(layer.as_mut(), &minus)) / (2.0 * h as f64);
            assert!((dx[i] as f64 - numeric).abs() < 1e-4, "{class} d/dx[{i}]: {} vs {numeric}", dx[i]);
        }
    }
}

#[test]
fn shapes_keepdims_and_bad_input() {
    let mut model = nn::Sequential::new();
    model.add(GlobalMaxPooling2D::new().input_shape([5, 7, 3])).unwrap();
    model.add(Dense::new(2)).unwrap();
    assert_eq!(model.count_params(), 3 * 2 + 2);
    let mut kept = nn::Sequential::new();
    kept.add(GlobalAveragePooling2D::new().keepdims(true).input_shape([5, 7, 3])).unwrap();
    assert_eq!(kept.output_shape().unwrap(), &[1, 1, 3]);
    let mut flat = nn::Sequential::new();
    let err = flat.add(GlobalAveragePooling2D::new().input_shape([12])).unwrap_err().to_string();
    assert!(err.contains("GlobalAveragePooling2D") && err.contains("[12]"), "{err}");
}

/// Saved and loaded by Keras' names and configs (`keepdims` included), predicting the same.
#[test]
fn models_with_global_pooling_save_and_load() {
    let mut model = nn::Sequential::new().seed(5);
    model.add(GlobalAveragePooling2D::new().keepdims(true).input_shape([3, 4, 5])).unwrap();
    model.add(GlobalMaxPooling2D::new()).unwrap();
    model.add(Dense::new(3)).unwrap();
    let x = nn::Array::new(input(), SHAPE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("global.safetensors");
    model.save(&path).unwrap();
    let mut loaded = nn::Sequential::load(&path).unwrap();
    let want = model.predict(&x, 2).unwrap()[0].data().to_vec();
    assert_eq!(loaded.predict(&x, 2).unwrap()[0].data(), &want[..]);
}

/// wgpu (lavapipe in CI) against the CPU.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_the_cpu() {
    let Some(gpu) = parity::wgpu_or_skip() else { return };
    let cpu = nn::device::cpu();
    for (mut layer, class) in layers() {
        let (y, dx) = run(layer.as_mut(), &input(), &cpu);
        let (gy, gdx) = run(layer.as_mut(), &input(), &gpu);
        let wide = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
        assert_close(&format!("{class} output on wgpu"), &gy, &wide(&y), 1e-6);
        assert_close(&format!("{class} gradient on wgpu"), &gdx, &wide(&dx), 1e-6);
    }
}
