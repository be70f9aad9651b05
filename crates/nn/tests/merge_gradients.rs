//! Each merge layer's gradient against central finite differences: the scalar
//! `sum(merge(inputs) * w)` (a fixed random `w`, so every output element matters) is
//! differentiated by autodiff and numerically, input element by input element.

use nn::functional::{Add, Average, Concatenate, Divide, Maximum, MergeLayer, Minimum, Multiply, Subtract};
use nn::Tensor;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn random(shape: &[usize], rng: &mut StdRng) -> Vec<f32> {
    (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Input values, all distinct and at least 0.05 apart across every input (a shuffled grid), so
/// that the finite-difference step (0.01) never crosses a tie of `Maximum`.
fn distinct_inputs(shapes: &[&[usize]], rng: &mut StdRng) -> Vec<(Vec<f32>, Vec<usize>)> {
    let total: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    let mut grid: Vec<f32> = (0..total).map(|k| k as f32 * 0.05 - 1.0).collect();
    grid.shuffle(rng);
    let mut rest = &grid[..];
    shapes
        .iter()
        .map(|s| {
            let (head, tail) = rest.split_at(s.iter().product());
            rest = tail;
            (head.to_vec(), s.to_vec())
        })
        .collect()
}

/// `sum(layer(inputs) * w)` as f64, computed in f32 by the layer.
fn objective(layer: &dyn MergeLayer, inputs: &[(Vec<f32>, Vec<usize>)], w: &Tensor) -> f64 {
    let dev = nn::device::cpu();
    let ts: Vec<Tensor> =
        inputs.iter().map(|(v, s)| Tensor::from_slice(v, s.clone(), &dev).unwrap()).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let out = layer.forward(&refs).unwrap();
    out.to_vec().unwrap().iter().zip(w.to_vec().unwrap()).map(|(&o, w)| o as f64 * w as f64).sum()
}

fn check(name: &str, layer: &dyn MergeLayer, shapes: &[&[usize]], out_shape: &[usize], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let inputs = distinct_inputs(shapes, &mut rng);
    check_inputs(name, layer, inputs, out_shape, &mut rng);
}

fn check_inputs(
    name: &str,
    layer: &dyn MergeLayer,
    inputs: Vec<(Vec<f32>, Vec<usize>)>,
    out_shape: &[usize],
    rng: &mut StdRng,
) {
    let dev = nn::device::cpu();
    let w = Tensor::from_vec(random(out_shape, rng), out_shape.to_vec(), &dev).unwrap();
    let vars: Vec<Tensor> =
        inputs.iter().map(|(v, s)| Tensor::from_slice(v, s.clone(), &dev).unwrap().to_variable()).collect();
    let refs: Vec<&Tensor> = vars.iter().collect();
    let out = layer.forward(&refs).unwrap();
    assert_eq!(out.dims(), out_shape, "{name}: output shape");
    let grads = out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let h = 1e-2f32;
    for (i, var) in vars.iter().enumerate() {
        let analytic =
            grads.get(var).unwrap_or_else(|| panic!("{name}: no gradient for input {i}")).to_vec().unwrap();
        for (j, &autodiff) in analytic.iter().enumerate() {
            let mut plus = inputs.clone();
            plus[i].0[j] += h;
            let mut minus = inputs.clone();
            minus[i].0[j] -= h;
            let numeric = (objective(layer, &plus, &w) - objective(layer, &minus, &w)) / (2.0 * h as f64);
            assert!(
                (autodiff as f64 - numeric).abs() < 2e-3,
                "{name}: d/d input {i}[{j}]: autodiff {autodiff} vs finite difference {numeric}"
            );
        }
    }
}

#[test]
fn concatenate_gradient() {
    check("concatenate last axis", &Concatenate::new(-1), &[&[3, 2, 4], &[3, 2, 5]], &[3, 2, 9], 1);
    check("concatenate axis 1", &Concatenate::new(1), &[&[3, 2, 4], &[3, 1, 4], &[3, 3, 4]], &[3, 6, 4], 2);
}

#[test]
fn add_gradient() {
    check("add", &Add::new(), &[&[4, 5], &[4, 5], &[4, 5]], &[4, 5], 3);
}

#[test]
fn subtract_gradient() {
    check("subtract", &Subtract::new(), &[&[4, 5], &[4, 5]], &[4, 5], 4);
}

#[test]
fn multiply_gradient() {
    check("multiply", &Multiply::new(), &[&[4, 5], &[4, 5], &[4, 5]], &[4, 5], 5);
}

#[test]
fn average_gradient() {
    check("average", &Average::new(), &[&[4, 5], &[4, 5], &[4, 5]], &[4, 5], 6);
}

#[test]
fn maximum_gradient() {
    check("maximum", &Maximum::new(), &[&[4, 5], &[4, 5], &[4, 5]], &[4, 5], 7);
}

#[test]
fn minimum_gradient() {
    check("minimum", &Minimum::new(), &[&[4, 5], &[4, 5], &[4, 5]], &[4, 5], 8);
}

/// The quotient's gradient, with denominators in [0.5, 1.5] (away from zero) and numerators of
/// both signs.
#[test]
fn divide_gradient() {
    let mut rng = StdRng::seed_from_u64(9);
    let numerator = (random(&[4, 5], &mut rng), vec![4, 5]);
    let denominator = (random(&[4, 5], &mut rng).iter().map(|v| 1.0 + 0.5 * v).collect(), vec![4, 5]);
    check_inputs("divide", &Divide::new(), vec![numerator, denominator], &[4, 5], &mut rng);
    let err = Divide::new().output_shape(&[&[4], &[4], &[4]]).unwrap_err();
    assert!(err.reason.contains("exactly 2"), "{}", err.reason);
}
