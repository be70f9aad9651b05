//! Every activation against Keras 3: values and derivatives on a grid through both tails, the
//! kinks and small values, recorded by `benches/keras/activations.py` (Keras 3.15.1 on JAX,
//! derivatives by JAX's autodiff) in `tests/data/keras-activations.txt`.

use nn::{Activation, Device, Tensor};
use std::collections::BTreeMap;

/// Activation name to its grid: `(x, y, dy/dx)` as Keras computed them.
fn keras() -> BTreeMap<String, Vec<(f32, f64, f64)>> {
    let text = include_str!("data/keras-activations.txt");
    let mut table: BTreeMap<String, Vec<(f32, f64, f64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| fields[i].parse::<f64>().unwrap();
        table.entry(fields[0].to_string()).or_default().push((number(1) as f32, number(2), number(3)));
    }
    table
}

/// `activation` on `device`: its values and, by autodiff, its derivatives at `xs`.
fn run(activation: Activation, xs: &[f32], device: &Device) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::from_slice(xs, [xs.len()], device).unwrap().to_variable();
    let y = activation.apply(&x).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    (y.to_vec().unwrap(), grads.get(&x).unwrap().to_vec().unwrap())
}

fn check_on(device: &Device, tolerance: f64) {
    let table = keras();
    assert_eq!(table.len(), 9, "the fixture's activations");
    for (name, grid) in &table {
        let activation: Activation = name.parse().unwrap();
        let xs: Vec<f32> = grid.iter().map(|g| g.0).collect();
        let (ys, dys) = run(activation, &xs, device);
        let error = |got: f32, want: f64| (got as f64 - want).abs() / (1.0 + want.abs());
        let mut worst = (0.0f64, 0.0f64);
        for (i, &(x, want_y, want_dy)) in grid.iter().enumerate() {
            let (e_y, e_dy) = (error(ys[i], want_y), error(dys[i], want_dy));
            let on = device.name();
            assert!(e_y <= tolerance, "{name}({x}) on {on}: {} vs Keras {want_y}", ys[i]);
            assert!(e_dy <= tolerance, "{name}'({x}) on {on}: {} vs Keras {want_dy}", dys[i]);
            worst = (worst.0.max(e_y), worst.1.max(e_dy));
        }
        // `--nocapture` shows what docs/keras-parity.md records.
        println!(
            "{name} on {}: worst |ours - Keras| / (1 + |Keras|) {:.1e}, derivative {:.1e}",
            device.name(),
            worst.0,
            worst.1
        );
    }
}

#[test]
fn every_activation_matches_keras_on_the_cpu() {
    check_on(&nn::device::cpu(), 1e-6);
}

/// The same on wgpu (Mesa's lavapipe in CI), whose `exp` and `tanh` are the driver's.
#[cfg(feature = "wgpu")]
#[test]
fn every_activation_matches_keras_on_wgpu() {
    let Ok(gpu) = nn::device::wgpu() else {
        eprintln!("note: no wgpu adapter; skipped");
        return;
    };
    check_on(&gpu, 1e-5);
}

#[test]
fn swish_is_read_as_silu_and_unknown_names_are_refused() {
    assert_eq!("swish".parse::<Activation>().unwrap(), Activation::Silu);
    assert_eq!(Activation::Silu.keras_name(), "silu");
    let err = "mish".parse::<Activation>().unwrap_err().to_string();
    assert!(err.contains("mish"), "{err}");
}

/// A model using the new activations, in a layer's argument and as an `Activation` layer,
/// saves and loads them by Keras' names and predicts the same.
#[test]
fn models_with_the_new_activations_save_and_load_them() {
    use nn::layers::{ActivationLayer, Dense};
    let mut model = nn::Sequential::new().seed(3);
    model.add(Dense::new(6).activation(Activation::Gelu).input_shape([4])).unwrap();
    model.add(Dense::new(5).activation(Activation::Elu)).unwrap();
    model.add(ActivationLayer::new(Activation::LeakyRelu)).unwrap();
    model.add(Dense::new(3).activation(Activation::Silu)).unwrap();
    let x = nn::Array::new((0..8).map(|i| i as f32 * 0.37 - 1.3).collect(), [2, 4]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activations.safetensors");
    model.save(&path).unwrap();
    let mut loaded = nn::Sequential::load(&path).unwrap();
    let want = model.predict(&x, 2).unwrap()[0].data().to_vec();
    assert_eq!(loaded.predict(&x, 2).unwrap()[0].data(), &want[..]);
}
