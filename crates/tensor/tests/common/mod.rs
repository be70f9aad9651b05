//! Shared test support: a plain f64 reference implementation of every op, and a gradient
//! checker that compares autodiff (f32, through the CPU backend) with central finite
//! differences of the f64 reference.
#![allow(dead_code)]

pub mod reference;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::{Device, Tensor};

/// One CPU device shared by the whole test binary (tensors on different backend instances
/// are on different devices and refuse to mix).
pub fn device() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE.get_or_init(kernels_cpu::cpu_device).clone()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform values in [lo, hi), rounded to f32 so the f64 reference sees exactly the f32 input.
pub fn random_vec(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi) as f32 as f64).collect()
}

/// ||a - b|| / max(||b||, 1e-12)
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-12)
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// One input of an op under test: its shape and the range its values are drawn from.
pub struct Input {
    pub shape: Vec<usize>,
    pub lo: f64,
    pub hi: f64,
    /// Whether to check the gradient with respect to this input.
    pub differentiable: bool,
}

pub fn input(shape: &[usize]) -> Input {
    Input { shape: shape.to_vec(), lo: -1.0, hi: 1.0, differentiable: true }
}

pub fn input_in(shape: &[usize], lo: f64, hi: f64) -> Input {
    Input { shape: shape.to_vec(), lo, hi, differentiable: true }
}

pub fn constant_in(shape: &[usize], lo: f64, hi: f64) -> Input {
    Input { shape: shape.to_vec(), lo, hi, differentiable: false }
}

/// Checks one op both ways:
/// 1. forward: `op` on f32 tensors agrees with the f64 `reference` (relative error < 1e-5);
/// 2. backward: for the scalar `L = sum(op(inputs) * R)` with random `R`, autodiff's gradient
///    of every differentiable input agrees with central differences of the f64 reference
///    (relative error < 1e-3).
pub fn check_op(
    name: &str,
    seed: u64,
    inputs: &[Input],
    op: impl Fn(&[Tensor]) -> tensor::Result<Tensor>,
    reference: impl Fn(&[Vec<f64>]) -> Vec<f64>,
) {
    let dev = device();
    let mut rng = rng(seed);
    let values: Vec<Vec<f64>> =
        inputs.iter().map(|i| random_vec(&mut rng, i.shape.iter().product(), i.lo, i.hi)).collect();
    let tensors: Vec<Tensor> = inputs
        .iter()
        .zip(&values)
        .map(|(i, v)| {
            let t = Tensor::from_vec(to_f32(v), i.shape.clone(), &dev).unwrap();
            if i.differentiable {
                t.to_variable()
            } else {
                t
            }
        })
        .collect();

    let out = op(&tensors).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    let expected = reference(&values);
    let got = to_f64(&out.to_vec().unwrap());
    let fwd_err = rel_error(&got, &expected);
    assert!(
        fwd_err < 1e-5,
        "{name}: forward relative error {fwd_err:e}\n got {got:?}\n expected {expected:?}"
    );

    let projection = random_vec(&mut rng, expected.len(), -1.0, 1.0);
    let r = Tensor::from_vec(to_f32(&projection), out.shape().clone(), &dev).unwrap();
    let loss = out.mul(&r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap_or_else(|e| panic!("{name}: backward failed: {e}"));

    let scalar =
        |vals: &[Vec<f64>]| -> f64 { reference(vals).iter().zip(&projection).map(|(y, r)| y * r).sum() };
    let eps = 1e-6;
    for (idx, (inp, t)) in inputs.iter().zip(&tensors).enumerate() {
        if !inp.differentiable {
            continue;
        }
        let analytic = to_f64(
            &grads.get(t).unwrap_or_else(|| panic!("{name}: no gradient for input {idx}")).to_vec().unwrap(),
        );
        let mut numeric = vec![0.0; values[idx].len()];
        let mut probe = values.clone();
        for (j, g) in numeric.iter_mut().enumerate() {
            let x = values[idx][j];
            probe[idx][j] = x + eps;
            let up = scalar(&probe);
            probe[idx][j] = x - eps;
            let down = scalar(&probe);
            probe[idx][j] = x;
            *g = (up - down) / (2.0 * eps);
        }
        let err = rel_error(&analytic, &numeric);
        assert!(
            err < 1e-3,
            "{name}: gradient of input {idx} has relative error {err:e}\n analytic {analytic:?}\n numeric {numeric:?}"
        );
    }
}
