//! One conformance suite for every backend (cargo feature `conformance`): each op, forward
//! against a plain f64 [`reference`] and backward against central finite differences of that
//! reference, on deliberately odd shapes (batch 3, 7x9 images, 5 channels, stride 2, `same`
//! padding) so that no kernel tiling hides an off-by-one.
//!
//! A backend runs it from its own tests, on its own device:
//!
//! ```ignore
//! let failures = tensor::conformance::run(&device, &Tolerances::default());
//! assert!(failures.is_empty(), "{}", failures.join("\n"));
//! ```
//!
//! `kernels-cpu` and `kernels-wgpu` both do (wgpu with every output buffer poisoned with NaN
//! first, so an element a kernel fails to write shows). A new op adds its case to
//! [`cases`](self::cases) and its f64 formula to [`reference`], and every backend checks it.

mod cases;
mod norm;
pub mod reference;

use std::cell::RefCell;

use crate::random::uniform;
use crate::{Device, Tensor};

/// How close a backend must come to the f64 reference.
#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    /// Largest relative error of a forward value (`||got - want|| / ||want||`).
    pub forward: f64,
    /// Largest relative error of a gradient against finite differences.
    pub gradient: f64,
}

impl Default for Tolerances {
    /// 1e-5 forward (f32 rounding), 1e-3 for gradients (finite differences).
    fn default() -> Self {
        Tolerances { forward: 1e-5, gradient: 1e-3 }
    }
}

/// One input of an op under test: its shape, the range its values are drawn from, and whether
/// its gradient is checked.
#[derive(Clone, Debug)]
pub struct Input {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values are drawn from `[lo, hi)`.
    pub lo: f64,
    /// See `lo`.
    pub hi: f64,
    /// Whether to check the gradient with respect to this input (it is a variable).
    pub differentiable: bool,
}

/// A variable input with values in `[-1, 1)`.
pub fn input(shape: &[usize]) -> Input {
    input_in(shape, -1.0, 1.0)
}

/// A variable input with values in `[lo, hi)`.
pub fn input_in(shape: &[usize], lo: f64, hi: f64) -> Input {
    Input { shape: shape.to_vec(), lo, hi, differentiable: true }
}

/// A constant input (no gradient) with values in `[lo, hi)`.
pub fn constant_in(shape: &[usize], lo: f64, hi: f64) -> Input {
    Input { shape: shape.to_vec(), lo, hi, differentiable: false }
}

/// Runs the checks of the suite on one device, collecting what fails.
pub struct Checker<'a> {
    device: &'a Device,
    tolerances: Tolerances,
    case: &'static str,
    checks: RefCell<usize>,
    failures: RefCell<Vec<String>>,
}

/// One case of the suite: a family of checks.
pub struct Case {
    /// Its name, in failure messages.
    pub name: &'static str,
    /// Runs its checks.
    pub run: fn(&Checker<'_>),
}

/// Every case of the suite.
pub fn cases() -> &'static [Case] {
    cases::ALL
}

/// Runs every case on `device`; returns one message per failed check (empty when the backend
/// conforms). A case whose op returns an error, or panics, fails with that message.
pub fn run(device: &Device, tolerances: &Tolerances) -> Vec<String> {
    let mut failures = Vec::new();
    let mut checks = 0;
    for case in cases() {
        let checker = Checker {
            device,
            tolerances: *tolerances,
            case: case.name,
            checks: RefCell::new(0),
            failures: RefCell::new(Vec::new()),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&checker)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(format!("{}: panicked: {}", case.name, message.unwrap_or_default()));
        }
        checks += *checker.checks.borrow();
        failures.extend(checker.failures.into_inner());
    }
    if checks == 0 {
        failures.push("the suite ran no check".into());
    }
    failures
}

/// `||a - b|| / max(||b||, 1e-12)`.
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm.max(1e-12)
}

/// `n` values in `[lo, hi)` from `seed`, rounded to f32 so the f64 reference sees exactly the
/// f32 input.
fn values(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u32).map(|i| (lo + uniform(seed, i) as f64 * (hi - lo)) as f32 as f64).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl Checker<'_> {
    /// The device under test.
    pub fn device(&self) -> &Device {
        self.device
    }

    /// Records a failure of check `name` unless `ok`.
    pub fn expect(&self, name: &str, ok: bool, message: impl FnOnce() -> String) {
        *self.checks.borrow_mut() += 1;
        if !ok {
            self.failures.borrow_mut().push(format!("{} / {name}: {}", self.case, message()));
        }
    }

    /// Checks one op both ways:
    /// 1. forward: `op` on f32 tensors on the device agrees with the f64 `reference`;
    /// 2. backward: for the scalar `L = sum(op(inputs) * R)` with random `R`, autodiff's
    ///    gradient of every differentiable input agrees with central differences of the
    ///    f64 reference.
    pub fn check_op(
        &self,
        name: &str,
        seed: u64,
        inputs: &[Input],
        op: impl Fn(&[Tensor]) -> crate::Result<Tensor>,
        reference: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    ) {
        if let Err(e) = self.try_check_op(name, seed, inputs, op, reference) {
            self.expect(name, false, || e);
        }
    }

    fn try_check_op(
        &self,
        name: &str,
        seed: u64,
        inputs: &[Input],
        op: impl Fn(&[Tensor]) -> crate::Result<Tensor>,
        reference: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    ) -> Result<(), String> {
        let err = |what: &'static str| move |e: crate::TensorError| format!("{what} failed: {e}");
        let values: Vec<Vec<f64>> = inputs
            .iter()
            .enumerate()
            .map(|(k, i)| values(seed * 31 + k as u64, i.shape.iter().product(), i.lo, i.hi))
            .collect();
        let tensors = inputs
            .iter()
            .zip(&values)
            .map(|(i, v)| {
                let t = Tensor::from_vec(to_f32(v), i.shape.clone(), self.device)?;
                Ok(if i.differentiable { t.to_variable() } else { t })
            })
            .collect::<crate::Result<Vec<Tensor>>>()
            .map_err(err("upload"))?;

        let out = op(&tensors).map_err(err("forward"))?;
        let expected = reference(&values);
        let got = to_f64(&out.to_vec().map_err(err("download"))?);
        let forward = rel_error(&got, &expected);
        self.expect(name, forward <= self.tolerances.forward, || {
            format!("forward relative error {forward:e}\n got {got:?}\n expected {expected:?}")
        });

        let projection = values_for_projection(seed, expected.len());
        let r =
            Tensor::from_vec(to_f32(&projection), out.shape().clone(), self.device).map_err(err("upload"))?;
        let loss = out.mul(&r).and_then(|p| p.sum_all()).map_err(err("loss"))?;
        let grads = loss.backward().map_err(err("backward"))?;
        let scalar =
            |vals: &[Vec<f64>]| -> f64 { reference(vals).iter().zip(&projection).map(|(y, r)| y * r).sum() };
        let eps = 1e-6;
        for (idx, (inp, t)) in inputs.iter().zip(&tensors).enumerate() {
            if !inp.differentiable {
                continue;
            }
            let Some(grad) = grads.get(t) else {
                self.expect(name, false, || format!("no gradient for input {idx}"));
                continue;
            };
            let analytic = to_f64(&grad.to_vec().map_err(err("download"))?);
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
            let error = rel_error(&analytic, &numeric);
            self.expect(name, error <= self.tolerances.gradient, || {
                format!("gradient of input {idx} has relative error {error:e}\n analytic {analytic:?}\n numeric {numeric:?}")
            });
        }
        Ok(())
    }
}

/// The random weights `R` of the scalar `sum(op(..) * R)` whose gradient is checked.
fn values_for_projection(seed: u64, n: usize) -> Vec<f64> {
    values(seed.wrapping_mul(0x9e37_79b9).wrapping_add(7), n, -1.0, 1.0)
}
