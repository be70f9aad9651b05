//! The lecture's MNIST models, as Keras code would define them.

use tensor::Device;

use crate::activation::Activation::{Relu, Sigmoid, Softmax, Tanh};
use crate::error::{Error, Result};
use crate::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use crate::sequential::Sequential;

/// "model1": `Dense(hidden, sigmoid)` on the 784 flattened pixels, then `Dense(10, softmax)`.
/// Takes samples of shape `[784]`.
pub fn model1(hidden: usize, device: &Device, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_device(device).seed(seed);
    m.add(Dense::new(hidden).activation(Sigmoid).input_shape([784]))?;
    m.add(Dense::new(10).activation(Softmax))?;
    Ok(m)
}

/// "model4": `Conv2D(20, 5x5, relu)`, `MaxPooling2D`, `Flatten`, `Dense(100, tanh)`,
/// `Dense(10, softmax)`; 289,630 parameters. Takes samples of shape `[28, 28, 1]`.
pub fn model4(device: &Device, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_device(device).seed(seed);
    m.add(Conv2D::new(20, (5, 5)).activation(Relu).input_shape([28, 28, 1]))?;
    m.add(MaxPooling2D::new())?;
    m.add(Flatten::new())?;
    m.add(Dense::new(100).activation(Tanh))?;
    m.add(Dense::new(10).activation(Softmax))?;
    Ok(m)
}

/// "model5": model4 with `Conv2D(40, 3x3, relu)` and `MaxPooling2D` after the first pair;
/// 108,870 parameters.
pub fn model5(device: &Device, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_device(device).seed(seed);
    m.add(Conv2D::new(20, (5, 5)).activation(Relu).input_shape([28, 28, 1]))?;
    m.add(MaxPooling2D::new())?;
    m.add(Conv2D::new(40, (3, 3)).activation(Relu))?;
    m.add(MaxPooling2D::new())?;
    m.add(Flatten::new())?;
    m.add(Dense::new(100).activation(Tanh))?;
    m.add(Dense::new(10).activation(Softmax))?;
    Ok(m)
}

/// A lecture model by name (`model1`, `model4`, `model5`).
pub fn by_name(name: &str, device: &Device, seed: u64) -> Result<Sequential> {
    match name {
        "model1" => model1(100, device, seed),
        "model4" => model4(device, seed),
        "model5" => model5(device, seed),
        other => Err(Error::Build(format!("unknown model '{other}' (expected model1, model4 or model5)"))),
    }
}

/// The per-sample input shape a lecture model takes.
pub fn input_shape(name: &str) -> &'static [usize] {
    if name == "model1" {
        &[784]
    } else {
        &[28, 28, 1]
    }
}
