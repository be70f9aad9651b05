//! `BatchNormalization`: normalises each channel by the batch's statistics while training and
//! by moving averages of them at inference, then scales by `gamma` and shifts by `beta`
//! (Keras' `keras.layers.BatchNormalization`, its defaults and update rule).

use tensor::{no_grad, PoolWindow, Tensor};

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// Batch normalization over one axis (the channels, by default the last).
///
/// In training, each channel is normalised with the batch's mean and (biased) variance over
/// every other axis, and the moving statistics are updated as Keras does:
/// `moving = moving * momentum + batch * (1 - momentum)`. At inference, and in a frozen layer
/// (`trainable = false`, as in Keras), the moving statistics are used. Output:
/// `(x - mean) / sqrt(variance + epsilon) * gamma + beta`.
///
/// Weights, in Keras' order and names: `gamma` and `beta` (trainable, when `scale` and
/// `center`), `moving_mean` and `moving_variance` (non-trainable).
///
/// ```
/// use nn::layers::{BatchNormalization, Conv2D};
/// let mut model = nn::Sequential::new();
/// model.add(Conv2D::new(8, (3, 3)).use_bias(false).input_shape([28, 28, 1]))?;
/// model.add(BatchNormalization::new())?;
/// assert_eq!(model.count_params(), 3 * 3 * 8 + 4 * 8);
/// assert_eq!(model.count_non_trainable_params(), 2 * 8);
/// # Ok::<(), nn::Error>(())
/// ```
pub struct BatchNormalization {
    axis: isize,
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    meta: LayerMeta,
    /// The normalised axis of a sample (without the batch axis), once built.
    sample_axis: usize,
    /// The input's rank with the batch axis, once built.
    rank: usize,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
    moving: Option<[Tensor; 2]>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// Keras' defaults: the last axis, momentum 0.99, epsilon 1e-3, with `gamma` and `beta`.
    pub fn new() -> Self {
        BatchNormalization {
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            meta: LayerMeta::default(),
            sample_axis: 0,
            rank: 0,
            gamma: None,
            beta: None,
            moving: None,
        }
    }
    /// The axis normalised over (Keras counts the batch axis: `1` is a sample's first axis,
    /// the channels of `channels_first` images; negative values count from the end).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }
    /// How much of the moving statistics each training step keeps (in `[0, 1]`).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }
    /// Added to the variance before its square root (positive).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
    /// Whether to add the trainable offset `beta`.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }
    /// Whether to multiply by the trainable scale `gamma`.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }
    meta_builders!();

    /// `x * inv + (beta - mean * inv)` with `inv = gamma / sqrt(variance + epsilon)`: Keras'
    /// arithmetic, for `[channels]` statistics, as one per-channel affine map over `x`.
    fn normalize(&self, x: &Tensor, mean: &Tensor, variance: &Tensor) -> Result<Tensor> {
        let c = mean.dims()[0];
        let mut inv = Tensor::ones([c], x.device())?.div(&variance.add_scalar(self.epsilon)?.sqrt()?)?;
        if let Some(gamma) = &self.gamma {
            inv = inv.mul(gamma)?;
        }
        let mut shift = mean.mul(&inv)?.neg()?;
        if let Some(beta) = &self.beta {
            shift = shift.add(beta)?;
        }
        Ok(x.channel_affine(self.sample_axis as isize + 1, &inv, &shift)?)
    }

    /// The layer's output, then ReLU when `relu` (the model runs a ReLU that reads nothing but
    /// this layer's output here: in training one op, [`Tensor::batch_norm`], which saves the
    /// ReLU's passes over memory forward and backward).
    pub(crate) fn normalize_then(&mut self, x: &Tensor, ctx: ForwardCtx, relu: bool) -> Result<Tensor> {
        self.normalize_and(x, ctx, relu, None)
    }

    /// The layer's output, then ReLU, then max pooling by `pool` (a ReLU and a channels-last
    /// `MaxPooling2D` that read nothing but the previous output): in training, over the last
    /// axis, one op, [`Tensor::batch_norm_relu_max_pool`], which never writes the full-size
    /// normalized output.
    pub(crate) fn normalize_relu_max_pool(
        &mut self,
        x: &Tensor,
        ctx: ForwardCtx,
        pool: PoolWindow,
    ) -> Result<Tensor> {
        self.normalize_and(x, ctx, true, Some(pool))
    }

    fn normalize_and(
        &mut self,
        x: &Tensor,
        ctx: ForwardCtx,
        relu: bool,
        pool: Option<PoolWindow>,
    ) -> Result<Tensor> {
        let max_pool = |y: Tensor| -> Result<Tensor> {
            Ok(match pool {
                Some(p) => y.max_pool2d(p.size, p.strides, p.padding)?,
                None => y,
            })
        };
        let [moving_mean, moving_variance] =
            self.moving.clone().ok_or_else(|| Error::Build("BatchNormalization used before build".into()))?;
        let axis = self.sample_axis as isize + 1;
        let c = x.dims().get(axis as usize).copied().unwrap_or(0);
        if x.rank() != self.rank || c != moving_mean.numel() {
            return Err(Error::Build(format!(
                "BatchNormalization was built for {} channels on axis {}, got input of shape {:?}",
                moving_mean.numel(),
                self.axis,
                x.dims()
            )));
        }
        if !(ctx.training && ctx.trainable) {
            let y = self.normalize(x, &moving_mean, &moving_variance)?;
            return max_pool(if relu { y.relu()? } else { y });
        }
        // One pass for both statistics (Keras' biased variance), one for the output.
        let (gamma, beta) = (self.gamma.as_ref(), self.beta.as_ref());
        let (y, moments) = match pool {
            Some(pool) if relu && axis as usize == x.rank() - 1 => {
                x.batch_norm_relu_max_pool(gamma, beta, self.epsilon, pool)?
            }
            _ => {
                let (y, moments) = x.batch_norm(axis, gamma, beta, self.epsilon, relu)?;
                (max_pool(y)?, moments)
            }
        };
        let mean = moments.narrow(0, 0, 1)?.reshape([c])?;
        let variance = moments.narrow(0, 1, 1)?.reshape([c])?;
        let (m, keep) = (self.momentum, 1.0 - self.momentum);
        self.moving = Some(no_grad(|| -> Result<[Tensor; 2]> {
            Ok([
                moving_mean.affine(m, 0.0)?.add_scaled(&mean, keep)?,
                moving_variance.affine(m, 0.0)?.add_scaled(&variance, keep)?,
            ])
        })?);
        Ok(y)
    }
}

impl Layer for BatchNormalization {
    layer_meta!("BatchNormalization", "batch_normalization");
    fn build(&mut self, input_shape: &[usize], init: &mut Initializer) -> Result<Vec<usize>> {
        let rank = input_shape.len() as isize + 1;
        let axis = if self.axis < 0 { self.axis + rank } else { self.axis };
        if axis < 1 || axis >= rank {
            return Err(Error::Build(format!(
                "BatchNormalization axis {} is out of range for input of shape {input_shape:?} \
                 (with the batch axis, rank {rank}; axis 0 is the batch)",
                self.axis
            )));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Build(format!(
                "BatchNormalization momentum {} must be in [0, 1]",
                self.momentum
            )));
        }
        if self.epsilon.is_nan() || self.epsilon <= 0.0 {
            return Err(Error::Build(format!(
                "BatchNormalization epsilon {} must be positive",
                self.epsilon
            )));
        }
        self.sample_axis = axis as usize - 1;
        self.rank = rank as usize;
        let c = input_shape[self.sample_axis];
        self.gamma = if self.scale { Some(init.ones(&[c])?) } else { None };
        self.beta = if self.center { Some(init.zeros(&[c])?) } else { None };
        let device = init.device();
        self.moving = Some([Tensor::zeros([c], device)?, Tensor::ones([c], device)?]);
        Ok(input_shape.to_vec())
    }
    fn params(&self) -> Vec<&Tensor> {
        self.gamma.iter().chain(self.beta.iter()).collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.gamma.iter_mut().chain(self.beta.iter_mut()).collect()
    }
    fn non_trainable(&self) -> Vec<&Tensor> {
        self.moving.iter().flatten().collect()
    }
    fn non_trainable_mut(&mut self) -> Vec<&mut Tensor> {
        self.moving.iter_mut().flatten().collect()
    }
    fn weight_names(&self) -> &'static [&'static str] {
        match (self.scale, self.center) {
            (true, true) => &["gamma", "beta", "moving_mean", "moving_variance"],
            (true, false) => &["gamma", "moving_mean", "moving_variance"],
            (false, true) => &["beta", "moving_mean", "moving_variance"],
            (false, false) => &["moving_mean", "moving_variance"],
        }
    }
    fn forward(&mut self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor> {
        self.normalize_then(x, ctx, false)
    }
    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }))
    }
}
