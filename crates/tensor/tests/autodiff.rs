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

#[test]
fn backward_with_reports_each_variable_once_as_soon_as_its_gradient_is_final() {
    // Two dense layers, the first variable shared by both: x @ w1 + b1 -> tanh -> @ w2 + b2,
    // plus w1 again in the loss (its gradient is final only after both uses).
    let x = t(&[0.5, -1.0, 2.0, 0.25], &[2, 2]);
    let w1 = t(&[0.1, -0.2, 0.3, 0.4], &[2, 2]).to_variable();
    let b1 = t(&[0.05, -0.05], &[2]).to_variable();
    let w2 = t(&[1.0, -1.0, 0.5, 2.0], &[2, 2]).to_variable();
    let b2 = t(&[0.1, 0.2], &[2]).to_variable();
    let unused = t(&[7.0], &[1]).to_variable();
    let h = x.matmul(&w1).unwrap().add(&b1).unwrap().tanh().unwrap();
    let y = h.matmul(&w2).unwrap().add(&b2).unwrap();
    let loss = y.square().unwrap().sum_all().unwrap().add(&w1.sum_all().unwrap()).unwrap();
    let mut seen: Vec<(tensor::TensorId, Vec<f32>)> = Vec::new();
    let grads = loss
        .backward_with(|v, g| -> Result<(), TensorError> {
            seen.push((v.id(), g.to_vec()?));
            Ok(())
        })
        .unwrap();
    let plain = loss.backward().unwrap();
    let ids: Vec<_> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 4, "once per variable the loss depends on ({ids:?})");
    assert!(!ids.contains(&unused.id()));
    for (id, g) in &seen {
        let v = [&w1, &b1, &w2, &b2].into_iter().find(|v| v.id() == *id).unwrap();
        assert_eq!(g, &grads.get(v).unwrap().to_vec().unwrap(), "the hook sees the final gradient");
        assert_eq!(g, &plain.get(v).unwrap().to_vec().unwrap(), "the same bits as backward()");
    }
    let place = |v: &Tensor| ids.iter().position(|id| *id == v.id()).unwrap();
    // The second layer's variables are ready before the first layer's.
    assert!(place(&b2) < place(&b1) && place(&w2) < place(&w1), "{ids:?}");
    assert!(place(&b2) < place(&w1) && place(&w2) < place(&b1), "{ids:?}");
    // d(loss)/d(b2) = 2y: the hook's value, checked against the forward result.
    let y2: Vec<f32> = y.to_vec().unwrap().chunks(2).fold(vec![0.0; 2], |mut s, row| {
        s.iter_mut().zip(row).for_each(|(s, v)| *s += 2.0 * v);
        s
    });
    let b2_grad = &seen[place(&b2)].1;
    for (g, w) in b2_grad.iter().zip(&y2) {
        assert!((g - w).abs() < 1e-6, "{b2_grad:?} vs {y2:?}");
    }
}

#[test]
fn an_error_of_the_leaf_hook_stops_backward() {
    let w = t(&[1.0, 2.0], &[2]).to_variable();
    let loss = w.square().unwrap().sum_all().unwrap();
    let err = loss.backward_with(|_, _| Err(TensorError::NotScalar(tensor::Shape::from(vec![3])))).err();
    assert!(matches!(err, Some(TensorError::NotScalar(_))), "{err:?}");
    // A variable that is itself the loss is reported too.
    let s = t(&[3.0], &[]).to_variable();
    let mut calls = 0;
    s.backward_with(|v, g| -> Result<(), TensorError> {
        calls += 1;
        assert_eq!((v.id(), g.to_vec()?), (s.id(), vec![1.0]));
        Ok(())
    })
    .unwrap();
    assert_eq!(calls, 1);
}
