//! On the wgpu backend: a lost device is an `Err` from `fit` (not a panic) and the last
//! checkpoint stays good; TerminateOnNaN, which reads the loss only every
//! `loss_check_interval` steps there (the backend's capability: 100), still names the first bad
//! step.

#![cfg(feature = "wgpu")]

mod synthetic;

use kernels_wgpu::WgpuBackend;
use nn::callbacks::ModelCheckpoint;
use nn::layers::{Dense, Flatten};
use nn::{to_categorical, Array, Device, Error, FitOptions, Loss, Metric, Sequential, Sgd};
use synthetic::{images, CLASSES, SIDE};

/// A wgpu backend of this test's own (a destroyed device must not reach other tests), or
/// `None` without an adapter (an error on CI, which has Mesa's software driver).
fn own_backend() -> Option<WgpuBackend> {
    match WgpuBackend::new() {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("no wgpu adapter on CI: {e}"),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter ({e})");
            None
        }
    }
}

fn linear_net(device: &Device) -> Sequential {
    let mut m = Sequential::with_device(device).seed(2);
    m.add(Flatten::new().input_shape([SIDE, SIDE, 1])).unwrap();
    m.add(Dense::new(32)).unwrap();
    m.add(Dense::new(CLASSES)).unwrap();
    m
}

fn data(n: usize, scale: f32) -> (Array, Array) {
    let (x, y) = images(n);
    (x.map(|p| p * scale), to_categorical(&y.reshape([n]).unwrap(), CLASSES).unwrap())
}

#[test]
fn a_lost_device_is_an_error_from_fit_and_the_checkpoint_survives() {
    let Some(backend) = own_backend() else { return };
    let device = Device::new(backend.clone());
    let (x, y) = data(64, 1.0);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("gpu.safetensors");

    let mut model = linear_net(&device);
    model.compile(Loss::MeanSquaredError, Sgd::new(0.01).momentum(0.9), &[Metric::Accuracy]).unwrap();
    let options =
        FitOptions::new().batch_size(16).verbose(0).checkpoint(ModelCheckpoint::new(path.to_str().unwrap()));
    model.fit(&x, &y, &options.clone().epochs(1)).unwrap();
    let saved: Vec<Vec<f32>> = model.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect();

    backend.destroy_device();
    let err = model.fit(&x, &y, &options.epochs(3).initial_epoch(1)).unwrap_err();
    assert!(matches!(err, Error::Tensor(_)), "{err:?}");
    assert!(err.to_string().contains("the GPU device was lost"), "{err}");

    let loaded = Sequential::load_on(&path, &nn::device::cpu()).unwrap();
    assert_eq!(loaded.epochs_done(), 1);
    let weights: Vec<Vec<f32>> = loaded.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect();
    assert_eq!(weights, saved);
    assert!(weights.iter().flatten().all(|w| w.is_finite()));
}

#[test]
fn nan_on_the_gpu_names_the_same_first_step_as_on_the_cpu() {
    let Some(backend) = own_backend() else { return };
    let (x, y) = data(256, 255.0);
    let first_bad_step = |device: &Device| {
        let mut model = linear_net(device);
        model.compile(Loss::MeanSquaredError, Sgd::new(1e6), &[]).unwrap();
        let options = FitOptions::new().epochs(1).batch_size(16).shuffle(false).verbose(0);
        match model.fit(&x, &y, &options).unwrap_err() {
            Error::NonFiniteLoss { epoch: 1, step, .. } => step,
            other => panic!("{other:?}"),
        }
    };
    let gpu = first_bad_step(&Device::new(backend));
    assert!(gpu < 16, "16 steps, checked only at the end of the epoch, yet step {gpu} is named");
    assert_eq!(gpu, first_bad_step(&nn::device::cpu()));
}
