//! Weight initialisation with Keras' defaults (Glorot-uniform kernels, zero biases), from a
//! seeded generator so that a model built twice with the same seed is identical.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};
use tensor::{Device, Tensor};

use crate::error::Result;

/// Creates a model's variables on its device.
pub struct Initializer {
    rng: StdRng,
    device: Device,
}

impl Initializer {
    /// An initializer drawing from `seed`, creating tensors on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Initializer { rng: StdRng::seed_from_u64(seed), device: device.clone() }
    }

    /// The device variables are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Glorot (Xavier) uniform: `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`.
    pub fn glorot_uniform(&mut self, shape: &[usize], fan_in: usize, fan_out: usize) -> Result<Tensor> {
        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
        let dist = Uniform::new(-limit, limit).expect("limit is positive and finite");
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| dist.sample(&mut self.rng)).collect();
        Ok(Tensor::from_vec(values, shape.to_vec(), &self.device)?.to_variable())
    }

    /// All zeros (Keras' bias default).
    pub fn zeros(&mut self, shape: &[usize]) -> Result<Tensor> {
        self.constant(shape, 0.0)
    }

    /// All ones (Keras' default for `BatchNormalization`'s `gamma`).
    pub fn ones(&mut self, shape: &[usize]) -> Result<Tensor> {
        self.constant(shape, 1.0)
    }

    /// Every element `value` (Keras' `Constant`).
    pub fn constant(&mut self, shape: &[usize], value: f32) -> Result<Tensor> {
        Ok(Tensor::full(value, shape.to_vec(), &self.device)?.to_variable())
    }
}
