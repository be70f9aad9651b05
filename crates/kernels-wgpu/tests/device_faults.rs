//! Device faults come back as `Err`s, never panics: a lost device fails every later operation,
//! and a buffer beyond the adapter's limits is refused before wgpu sees it.

mod common;

use kernels_wgpu::WgpuBackend;
use tensor::{Device, Tensor};

#[test]
fn a_lost_device_fails_every_later_operation() {
    // A backend of its own: the loss must not reach the other tests' shared one.
    if common::backend().is_none() {
        return;
    }
    let backend = WgpuBackend::new().unwrap();
    let device = Device::new(backend.clone());
    let x = Tensor::from_slice(&[1.0, 2.0, 3.0], [3], &device).unwrap();
    assert_eq!(x.square().unwrap().to_vec().unwrap(), [1.0, 4.0, 9.0]);
    let pending = x.add(&x).unwrap();

    backend.destroy_device();
    let lost = |result: tensor::Result<Vec<f32>>| {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("the GPU device was lost (Destroyed"), "{err}");
    };
    lost(pending.to_vec());
    lost(x.to_vec());
    lost(Tensor::from_slice(&[1.0], [1], &device).map(|_| Vec::new()));
    lost(x.mul(&x).and_then(|y| y.to_vec()));
    lost(backend.sync().map(|_| Vec::new()));
}

#[test]
fn a_buffer_beyond_the_limits_is_an_error() {
    let Some(backend) = common::backend() else { return };
    let device = Device::new(backend.clone());
    let too_many = (backend.limits().max_storage_buffer_binding_size / 4 + 1) as usize;
    let err = Tensor::zeros([too_many], &device).unwrap_err().to_string();
    assert!(err.contains("exceeds the adapter's max_storage_buffer_binding_size"), "{err}");
    // The backend still works.
    let x = Tensor::from_slice(&[2.0], [1], &device).unwrap();
    assert_eq!(x.square().unwrap().to_vec().unwrap(), [4.0]);
}
