//! Semantics of the autodiff engine: what is recorded, what is not, and the errors.

mod common;

use common::device;
use kernels_cpu::CpuBackend;
use tensor::{no_grad, Device, Padding, Tensor, TensorError};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape.to_vec(), &device()).unwrap()
}

#[test]
fn no_grad_records_nothing() {
    let w = t(&[1.0, 2.0], &[2]).to_variable();
    let y = no_grad(|| w.mul(&w).unwrap().sum_all().unwrap());
    assert!(!y.tracks_grad());
    assert!(y.backward().unwrap().is_empty());
    // Recording is back on afterwards.
    let z = w.mul(&w).unwrap().sum_all().unwrap();
    assert!(z.tracks_grad());
}

#[test]
fn gradient_of_square_sum() {
    let w = t(&[1.0, -2.0, 3.0], &[3]).to_variable();
    let grads = w.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grads.get(&w).unwrap().to_vec().unwrap(), vec![2.0, -4.0, 6.0]);
}

#[test]
fn detach_stops_gradients_and_constants_get_none() {
    let w = t(&[2.0], &[1]).to_variable();
    let c = t(&[5.0], &[1]);
    let loss = w.mul(&w.detach()).unwrap().mul(&c).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    // d(w * stop(w) * c)/dw = stop(w) * c = 10, not 20.
    assert_eq!(grads.get(&w).unwrap().to_vec().unwrap(), vec![10.0]);
    assert!(grads.get(&c).is_none());
    assert_eq!(grads.len(), 1);
}

#[test]
fn variables_used_in_two_branches_sum_their_gradients() {
    let w = t(&[3.0], &[1]).to_variable();
    let a = w.mul_scalar(2.0).unwrap();
    let b = w.square().unwrap();
    let loss = a.add(&b).unwrap().sum_all().unwrap();
    // d(2w + w^2)/dw = 2 + 2w = 8
    assert_eq!(loss.backward().unwrap().get(&w).unwrap().to_vec().unwrap(), vec![8.0]);
}

#[test]
fn backward_needs_a_scalar() {
    let w = t(&[1.0, 2.0], &[2]).to_variable();
    let err = w.mul(&w).unwrap().backward().err().unwrap();
    assert!(matches!(err, TensorError::NotScalar(_)), "{err}");
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let a = t(&[0.0; 6], &[2, 3]);
    let b = t(&[0.0; 8], &[2, 4]);
    let err = a.matmul(&b).unwrap_err();
    assert_eq!(err.to_string(), "shape mismatch in matmul: [2, 3] vs [2, 4]");
    let err = a.add(&b).unwrap_err();
    assert_eq!(err.to_string(), "shape mismatch in broadcast: [2, 3] vs [2, 4]");
    let err = Tensor::from_slice(&[1.0; 5], [2, 3], &device()).unwrap_err();
    assert!(matches!(err, TensorError::DataLength { expected: 6, got: 5, .. }));
    let img = t(&[0.0; 2 * 4 * 4 * 3], &[2, 4, 4, 3]);
    let filter = t(&[0.0; 3 * 3 * 2 * 5], &[3, 3, 2, 5]);
    let err = img.conv2d(&filter, None, (1, 1), Padding::Valid).unwrap_err();
    assert!(err.to_string().contains("filter input channels"), "{err}");
    let err = img.max_pool2d((5, 5), (1, 1), Padding::Valid).unwrap_err();
    assert!(err.to_string().contains("larger than the input"), "{err}");
}

#[test]
fn operands_on_different_devices_are_rejected() {
    let other = Device::new(CpuBackend::new());
    let a = t(&[1.0], &[1]);
    let b = Tensor::from_slice(&[1.0], [1], &other).unwrap();
    assert!(matches!(a.add(&b), Err(TensorError::DeviceMismatch { .. })));
}

#[test]
fn argmax_max_and_comparisons() {
    let x = t(&[1.0, 5.0, 5.0, -1.0, 0.0, -3.0], &[2, 3]);
    assert_eq!(x.argmax().unwrap().to_vec().unwrap(), vec![1.0, 1.0]);
    assert_eq!(x.max_axis(-1, false).unwrap().to_vec().unwrap(), vec![5.0, 0.0]);
    let y = t(&[1.0, 0.0, 5.0, 0.0, 0.0, 0.0], &[2, 3]);
    assert_eq!(x.equal(&y).unwrap().to_vec().unwrap(), vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    assert_eq!(x.greater_equal(&y).unwrap().to_vec().unwrap(), vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn dropout_keeps_expected_fraction_and_rejects_bad_rates() {
    let x = Tensor::ones([100_000], &device()).unwrap();
    let y = x.dropout(0.25, 7).unwrap().to_vec().unwrap();
    let kept = y.iter().filter(|&&v| v != 0.0).count();
    assert!((74_000..76_000).contains(&kept), "kept {kept}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    assert!(x.dropout(1.0, 7).is_err());
    assert!(x.dropout(-0.1, 7).is_err());
}

#[test]
fn gather_rows_picks_rows_in_order_and_rejects_bad_indices() {
    let device = common::device();
    let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), [4, 3], &device).unwrap();
    let g = x.gather_rows(&[3, 0, 3]).unwrap();
    assert_eq!(g.dims(), &[3, 3]);
    assert_eq!(g.to_vec().unwrap(), vec![9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 9.0, 10.0, 11.0]);
    let err = x.gather_rows(&[4]).unwrap_err().to_string();
    assert!(err.contains("row 4") && err.contains("[4, 3]"), "{err}");
}
