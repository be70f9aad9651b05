//! Losses, computed as Keras computes them (per output of a model, with their weights, in
//! [`Losses`]): the mean over the batch of a per-sample loss.
//! Cross-entropies on a softmax (or sigmoid) output are computed from the logits, as Keras 3
//! does internally, which is both exact and stable.

mod config;
mod output;

pub use output::{LossFn, Losses, OutputLoss};

use tensor::Tensor;

use crate::error::{Error, Result};

/// Keras' clipping constant for probabilities (`keras.backend.epsilon()`).
pub const EPSILON: f32 = 1e-7;

/// A loss function, with Keras' names, formulas and defaults.
///
/// Parameters are set as in Keras: `CategoricalCrossentropy(label_smoothing=0.1)` is
/// `Loss::CategoricalCrossentropy.label_smoothing(0.1)?`, `Huber(delta=0.5)` is
/// `Loss::huber(0.5)?` (or `Loss::Huber { delta: 0.5 }`).
///
/// ```
/// use nn::Loss;
/// let smoothed = Loss::CategoricalCrossentropy.label_smoothing(0.1)?;
/// assert_eq!(smoothed, Loss::SmoothedCategoricalCrossentropy { label_smoothing: 0.1 });
/// assert_eq!(Loss::CategoricalCrossentropy.label_smoothing(0.0)?, Loss::CategoricalCrossentropy);
/// assert!(Loss::MeanSquaredError.label_smoothing(0.1).is_err());
/// assert_eq!(Loss::huber(1.0)?, "huber".parse()?);
/// # Ok::<(), nn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `-sum(y * log(p))` per sample, for one-hot labels.
    CategoricalCrossentropy,
    /// The same with integer class labels (`[n]` or `[n, 1]`), one-hot encoded on the fly.
    SparseCategoricalCrossentropy,
    /// `-(y log p + (1 - y) log(1 - p))`, averaged over the last axis.
    BinaryCrossentropy,
    /// `(y - p)^2`, averaged over the last axis.
    MeanSquaredError,
    /// `|y - p|`, averaged over the last axis.
    MeanAbsoluteError,
    /// Keras' `Huber(delta)`: for each error `e = p - y`, `e^2 / 2` where `|e| <= delta`, else
    /// `delta * |e| - delta^2 / 2`, averaged over the last axis. Keras' default delta is 1.
    Huber {
        /// Where the loss turns from quadratic to linear (positive).
        delta: f32,
    },
    /// Keras' `KLDivergence`: `sum(y * log(y / p))` over the last axis, with `y` and `p` first
    /// clipped to `[1e-7, 1]`.
    KLDivergence,
    /// Keras' `CategoricalCrossentropy(label_smoothing=s)`: the categorical cross-entropy
    /// against the labels `y * (1 - s) + s / classes` (made by [`Loss::label_smoothing`]).
    SmoothedCategoricalCrossentropy {
        /// `s`, in `[0, 1]`.
        label_smoothing: f32,
    },
    /// Keras' `BinaryCrossentropy(label_smoothing=s)`: the binary cross-entropy against the
    /// labels `y * (1 - s) + s / 2` (made by [`Loss::label_smoothing`]).
    SmoothedBinaryCrossentropy {
        /// `s`, in `[0, 1]`.
        label_smoothing: f32,
    },
}

/// The model output a loss is computed from.
pub enum Prediction {
    /// Probabilities (or any output).
    Output(Tensor),
    /// Pre-softmax logits of a softmax output layer.
    SoftmaxLogits(Tensor),
}

impl Loss {
    /// Keras' `Huber(delta)`; an error unless `delta` is positive and finite.
    pub fn huber(delta: f32) -> Result<Loss> {
        let loss = Loss::Huber { delta };
        loss.check()?;
        Ok(loss)
    }

    /// The cross-entropy with its labels smoothed by `amount` (Keras' `label_smoothing`, in
    /// `[0, 1]`; 0 is the loss itself). Only `CategoricalCrossentropy` and `BinaryCrossentropy`
    /// take it, as in Keras (whose `SparseCategoricalCrossentropy` has no such argument).
    pub fn label_smoothing(self, amount: f32) -> Result<Loss> {
        let loss = match self {
            Loss::CategoricalCrossentropy | Loss::SmoothedCategoricalCrossentropy { .. } => {
                Loss::SmoothedCategoricalCrossentropy { label_smoothing: amount }
            }
            Loss::BinaryCrossentropy | Loss::SmoothedBinaryCrossentropy { .. } => {
                Loss::SmoothedBinaryCrossentropy { label_smoothing: amount }
            }
            other => {
                return Err(Error::Build(format!(
                    "{} takes no label_smoothing (only categorical_crossentropy and \
                     binary_crossentropy do, as in Keras)",
                    other.keras_name()
                )))
            }
        };
        loss.check()?;
        Ok(loss.normalized())
    }

    /// The amount of label smoothing (0 for a loss without it).
    pub fn label_smoothing_amount(self) -> f32 {
        match self {
            Loss::SmoothedCategoricalCrossentropy { label_smoothing }
            | Loss::SmoothedBinaryCrossentropy { label_smoothing } => label_smoothing,
            _ => 0.0,
        }
    }

    /// The same loss with a smoothing of 0 written as the loss without smoothing.
    pub(crate) fn normalized(self) -> Loss {
        match self {
            Loss::SmoothedCategoricalCrossentropy { label_smoothing: 0.0 } => Loss::CategoricalCrossentropy,
            Loss::SmoothedBinaryCrossentropy { label_smoothing: 0.0 } => Loss::BinaryCrossentropy,
            other => other,
        }
    }

    /// Checks the loss's parameters: a label smoothing in `[0, 1]`, a positive finite Huber
    /// delta.
    pub fn check(self) -> Result<()> {
        match self {
            Loss::SmoothedCategoricalCrossentropy { label_smoothing: s }
            | Loss::SmoothedBinaryCrossentropy { label_smoothing: s }
                if !(0.0..=1.0).contains(&s) =>
            {
                Err(Error::Build(format!("{}: label_smoothing {s} must be in [0, 1]", self.keras_name())))
            }
            Loss::Huber { delta } if !(delta > 0.0 && delta.is_finite()) => Err(Error::Build(format!(
                "huber: delta {delta} must be positive and finite (the error where the loss turns \
                 from quadratic to linear)"
            ))),
            _ => Ok(()),
        }
    }

    /// Keras' name of the loss function (`keras.losses.get` takes it), as used in the CLI and,
    /// for a loss without parameters, in saved training states.
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy | Loss::SmoothedCategoricalCrossentropy { .. } => {
                "categorical_crossentropy"
            }
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::BinaryCrossentropy | Loss::SmoothedBinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
            Loss::KLDivergence => "kl_divergence",
        }
    }

    /// Keras' class of the loss (`keras.losses.Huber`, ...).
    pub fn keras_class_name(self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy | Loss::SmoothedCategoricalCrossentropy { .. } => {
                "CategoricalCrossentropy"
            }
            Loss::SparseCategoricalCrossentropy => "SparseCategoricalCrossentropy",
            Loss::BinaryCrossentropy | Loss::SmoothedBinaryCrossentropy { .. } => "BinaryCrossentropy",
            Loss::MeanSquaredError => "MeanSquaredError",
            Loss::MeanAbsoluteError => "MeanAbsoluteError",
            Loss::Huber { .. } => "Huber",
            Loss::KLDivergence => "KLDivergence",
        }
    }

    /// Whether labels are class indices that must be one-hot encoded first.
    pub fn sparse_labels(self) -> bool {
        self == Loss::SparseCategoricalCrossentropy
    }

    /// Whether the loss is a softmax cross-entropy, which can use the logits.
    pub fn uses_softmax_logits(self) -> bool {
        matches!(
            self,
            Loss::CategoricalCrossentropy
                | Loss::SparseCategoricalCrossentropy
                | Loss::SmoothedCategoricalCrossentropy { .. }
        )
    }

    /// Whether the loss is a binary cross-entropy (whose accuracy is binary accuracy).
    pub fn is_binary_crossentropy(self) -> bool {
        matches!(self, Loss::BinaryCrossentropy | Loss::SmoothedBinaryCrossentropy { .. })
    }

    /// The labels the loss compares with: Keras smooths them first, `y * (1 - s) + s / classes`
    /// for the categorical cross-entropy and `y * (1 - s) + s / 2` for the binary one; other
    /// losses (and a smoothing of 0) take `y` as it is.
    fn targets(self, y: &Tensor) -> Result<Tensor> {
        let keep = |s: f32| (1.0 - s as f64) as f32;
        Ok(match self {
            Loss::SmoothedCategoricalCrossentropy { label_smoothing: s } if s != 0.0 => {
                let classes = *y.dims().last().unwrap_or(&1) as f32;
                y.affine(keep(s), s / classes)?
            }
            Loss::SmoothedBinaryCrossentropy { label_smoothing: s } if s != 0.0 => {
                y.affine(keep(s), (0.5 * s as f64) as f32)?
            }
            _ => y.clone(),
        })
    }

    /// Mean loss over the batch, a scalar tensor. `y_true` has the prediction's shape (sparse
    /// labels arrive one-hot encoded).
    pub fn compute(self, prediction: &Prediction, y_true: &Tensor) -> Result<Tensor> {
        let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = prediction;
        let y_true = &self.targets(y_true)?;
        let per_sample = match self {
            Loss::CategoricalCrossentropy
            | Loss::SparseCategoricalCrossentropy
            | Loss::SmoothedCategoricalCrossentropy { .. } => {
                // The labels are smoothed already (`targets`): the fused op's gradient,
                // `softmax * sum(y) - y`, holds for any labels.
                match prediction {
                    Prediction::SoftmaxLogits(z) => z.softmax_cross_entropy(y_true)?,
                    Prediction::Output(p) => {
                        // Keras: renormalise, clip to [eps, 1 - eps], then -sum(y log p).
                        let p = p.div(&p.sum_axis(-1, true)?)?.clamp(EPSILON, 1.0 - EPSILON)?;
                        y_true.mul(&p.log()?)?.sum_axis(-1, false)?.neg()?
                    }
                }
            }
            Loss::BinaryCrossentropy | Loss::SmoothedBinaryCrossentropy { .. } => {
                let p = p.clamp(EPSILON, 1.0 - EPSILON)?;
                let one_minus_p = p.affine(-1.0, 1.0)?;
                let one_minus_y = y_true.affine(-1.0, 1.0)?;
                let ll = y_true.mul(&p.log()?)?.add(&one_minus_y.mul(&one_minus_p.log()?)?)?;
                ll.mean_axis(-1, false)?.neg()?
            }
            Loss::MeanSquaredError => p.sub(y_true)?.square()?.mean_axis(-1, false)?,
            Loss::MeanAbsoluteError => p.sub(y_true)?.abs()?.mean_axis(-1, false)?,
            Loss::Huber { delta } => {
                // Keras' `where(|e| <= delta, e^2 / 2, delta |e| - delta^2 / 2)`, as a 0/1 mask
                // (a constant) selecting one branch's value and gradient.
                let error = p.sub(y_true)?;
                let abs_error = error.abs()?;
                let quadratic = Tensor::scalar(delta, p.device())?.greater_equal(&abs_error)?;
                let linear = quadratic.affine(-1.0, 1.0)?;
                let half_delta_squared = (0.5 * delta as f64 * delta as f64) as f32;
                let small = error.square()?.mul_scalar(0.5)?.mul(&quadratic)?;
                let large = abs_error.affine(delta, -half_delta_squared)?.mul(&linear)?;
                small.add(&large)?.mean_axis(-1, false)?
            }
            Loss::KLDivergence => {
                let y = y_true.clamp(EPSILON, 1.0)?;
                let p = p.clamp(EPSILON, 1.0)?;
                y.mul(&y.div(&p)?.log()?)?.sum_axis(-1, false)?
            }
        };
        Ok(per_sample.mean_all()?)
    }
}

impl std::str::FromStr for Loss {
    type Err = crate::Error;
    /// Keras' names of the loss functions (`keras.losses.get`): `categorical_crossentropy`,
    /// `sparse_categorical_crossentropy`, `binary_crossentropy`, `mean_squared_error` (`mse`),
    /// `mean_absolute_error` (`mae`), `huber` (delta 1), `kl_divergence` (`kld`).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "categorical_crossentropy" => Loss::CategoricalCrossentropy,
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
            "binary_crossentropy" => Loss::BinaryCrossentropy,
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber { delta: 1.0 },
            "kl_divergence" | "kld" => Loss::KLDivergence,
            other => return Err(crate::Error::Build(format!("unknown loss '{other}'"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_slice(v, shape.to_vec(), &crate::device::cpu()).unwrap()
    }

    fn close(a: f32, b: f64) {
        assert!((a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn categorical_crossentropy_by_hand() {
        let y = t(&[0., 1., 0., 1., 0., 0.], &[2, 3]);
        let p = t(&[0.2, 0.7, 0.1, 0.5, 0.25, 0.25], &[2, 3]);
        let l = Loss::CategoricalCrossentropy.compute(&Prediction::Output(p), &y).unwrap();
        close(l.item().unwrap(), -(0.7f64.ln() + 0.5f64.ln()) / 2.0);
        // From logits: softmax([1, 2, 3]) against class 2 is log(e + e^2 + e^3) - 3.
        let z = t(&[1., 2., 3.], &[1, 3]);
        let y = t(&[0., 0., 1.], &[1, 3]);
        let l = Loss::CategoricalCrossentropy.compute(&Prediction::SoftmaxLogits(z), &y).unwrap();
        let e = std::f64::consts::E;
        close(l.item().unwrap(), (e + e * e + e * e * e).ln() - 3.0);
    }

    #[test]
    fn crossentropy_clips_zero_probabilities_like_keras() {
        let y = t(&[1., 0.], &[1, 2]);
        let p = t(&[0., 1.], &[1, 2]);
        let l = Loss::CategoricalCrossentropy.compute(&Prediction::Output(p), &y).unwrap();
        close(l.item().unwrap(), -(1e-7f64).ln());
    }

    #[test]
    fn binary_crossentropy_by_hand() {
        let y = t(&[1., 0., 1., 1.], &[2, 2]);
        let p = t(&[0.9, 0.2, 0.6, 0.3], &[2, 2]);
        let l = Loss::BinaryCrossentropy.compute(&Prediction::Output(p), &y).unwrap();
        let want = -((0.9f64.ln() + 0.8f64.ln()) / 2.0 + (0.6f64.ln() + 0.3f64.ln()) / 2.0) / 2.0;
        close(l.item().unwrap(), want);
    }

    #[test]
    fn mean_squared_error_by_hand() {
        let y = t(&[1., 2., 3., 4.], &[2, 2]);
        let p = t(&[1.5, 2., 1., 4.], &[2, 2]);
        let l = Loss::MeanSquaredError.compute(&Prediction::Output(p.clone()), &y).unwrap();
        close(l.item().unwrap(), (0.25 + 0.0 + 4.0 + 0.0) / 4.0);
        let l = Loss::MeanAbsoluteError.compute(&Prediction::Output(p), &y).unwrap();
        close(l.item().unwrap(), (0.5 + 0.0 + 2.0 + 0.0) / 4.0);
    }
}
