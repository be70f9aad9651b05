//! Tiny networks trained with plain gradient descent through autodiff reach known losses.

mod common;

use rand::Rng;
use tensor::{no_grad, Tensor};

fn sgd(params: &mut [Tensor], grads: &tensor::Gradients, lr: f32) {
    no_grad(|| {
        for p in params.iter_mut() {
            let g = grads.get(p).expect("every parameter gets a gradient");
            *p = p.sub(&g.mul_scalar(lr).unwrap()).unwrap().to_variable();
        }
    });
}

#[test]
fn linear_regression_recovers_the_coefficients() {
    let dev = common::device();
    let mut rng = common::rng(1);
    let n = 64;
    let xs: Vec<f32> = (0..n * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ys: Vec<f32> = xs.chunks(2).map(|p| 3.0 * p[0] - 2.0 * p[1] + 0.5).collect();
    let x = Tensor::from_vec(xs, [n, 2], &dev).unwrap();
    let y = Tensor::from_vec(ys, [n, 1], &dev).unwrap();
    let mut params = vec![
        Tensor::zeros([2, 1], &dev).unwrap().to_variable(),
        Tensor::zeros([1], &dev).unwrap().to_variable(),
    ];
    for _ in 0..500 {
        let pred = x.linear(&params[0], &params[1]).unwrap();
        let loss = pred.sub(&y).unwrap().square().unwrap().mean_all().unwrap();
        let grads = loss.backward().unwrap();
        sgd(&mut params, &grads, 0.2);
    }
    let w = params[0].to_vec().unwrap();
    let b = params[1].to_vec().unwrap();
    assert!(
        (w[0] - 3.0).abs() < 1e-3 && (w[1] + 2.0).abs() < 1e-3 && (b[0] - 0.5).abs() < 1e-3,
        "{w:?} {b:?}"
    );
}

#[test]
fn two_layer_mlp_learns_xor() {
    let dev = common::device();
    let mut rng = common::rng(3);
    let mut init = |shape: [usize; 2]| {
        let limit = (6.0 / (shape[0] + shape[1]) as f32).sqrt();
        let v: Vec<f32> = (0..shape[0] * shape[1]).map(|_| rng.random_range(-limit..limit)).collect();
        Tensor::from_vec(v, shape, &dev).unwrap().to_variable()
    };
    let mut params = vec![
        init([2, 8]),
        Tensor::zeros([8], &dev).unwrap().to_variable(),
        init([8, 2]),
        Tensor::zeros([2], &dev).unwrap().to_variable(),
    ];
    let x = Tensor::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], [4, 2], &dev).unwrap();
    let labels = Tensor::from_vec(vec![1., 0., 0., 1., 0., 1., 1., 0.], [4, 2], &dev).unwrap();
    let forward = |p: &[Tensor]| {
        let h = x.linear(&p[0], &p[1]).unwrap().tanh().unwrap();
        h.linear(&p[2], &p[3]).unwrap()
    };
    let mut loss_value = f32::INFINITY;
    for _ in 0..1500 {
        let loss = forward(&params).softmax_cross_entropy(&labels).unwrap().mean_all().unwrap();
        loss_value = loss.item().unwrap();
        let grads = loss.backward().unwrap();
        sgd(&mut params, &grads, 0.5);
    }
    assert!(loss_value < 0.02, "XOR loss after training: {loss_value}");
    let predicted = forward(&params).argmax().unwrap().to_vec().unwrap();
    assert_eq!(predicted, vec![0.0, 1.0, 1.0, 0.0]);
}
