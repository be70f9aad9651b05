//! Weight initialisation with Keras' defaults (Glorot-uniform kernels, zero biases), from a
//! seeded generator so that a model built twice with the same seed is identical. The draws
//! every Keras initializer needs (uniform, normal, truncated normal) are here; which one a
//! layer's weight takes, with Keras' formulas, is [`crate::initializers::WeightInit`].

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use tensor::{Device, Tensor};

use crate::error::{Error, Result};

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
        self.uniform(shape, -limit, limit)
    }

    /// Uniform on `[min, max)` (Keras' `RandomUniform`); an error unless `min < max`, both
    /// finite.
    pub fn uniform(&mut self, shape: &[usize], min: f32, max: f32) -> Result<Tensor> {
        let dist = Uniform::new(min, max).map_err(|e| {
            Error::Build(format!("uniform initializer on [{min}, {max}): {e} (needs finite min < max)"))
        })?;
        self.draw(shape, |rng| dist.sample(rng))
    }

    /// Normal of mean `mean` and standard deviation `stddev` (Keras' `RandomNormal`): a
    /// standard normal draw `z`, then `z * stddev + mean`, as Keras does.
    pub fn normal(&mut self, shape: &[usize], mean: f32, stddev: f32) -> Result<Tensor> {
        check_normal(mean, stddev)?;
        self.draw(shape, |rng| {
            let z: f32 = StandardNormal.sample(rng);
            z * stddev + mean
        })
    }

    /// Truncated normal (Keras' `TruncatedNormal`, and the normal `VarianceScaling`
    /// initializers): a standard normal draw `z` redrawn until `|z| <= 2`, then
    /// `z * stddev + mean`, so every value is within two `stddev` of the mean (and the standard
    /// deviation of the values is about `0.8796 * stddev`).
    pub fn truncated_normal(&mut self, shape: &[usize], mean: f32, stddev: f32) -> Result<Tensor> {
        check_normal(mean, stddev)?;
        self.draw(shape, |rng| loop {
            let z: f32 = StandardNormal.sample(rng);
            if z.abs() <= 2.0 {
                return z * stddev + mean;
            }
        })
    }

    /// A variable of `shape` whose elements are drawn one after the other, in order.
    fn draw(&mut self, shape: &[usize], mut sample: impl FnMut(&mut StdRng) -> f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| sample(&mut self.rng)).collect();
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

fn check_normal(mean: f32, stddev: f32) -> Result<()> {
    if mean.is_finite() && stddev.is_finite() && stddev >= 0.0 {
        Ok(())
    } else {
        Err(Error::Build(format!(
            "normal initializer of mean {mean} and stddev {stddev}: both must be finite, stddev not negative"
        )))
    }
}
