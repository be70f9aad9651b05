//! Losses, computed as Keras computes them (per output of a model, with their weights, in
//! [`Losses`]): the mean over the batch of a per-sample loss.
//! Cross-entropies on a softmax (or sigmoid) output are computed from the logits, as Keras 3
//! does internally, which is both exact and stable.

mod output;

pub use output::{LossFn, Losses, OutputLoss};

use tensor::Tensor;

use crate::error::Result;

/// Keras' clipping constant for probabilities (`keras.backend.epsilon()`).
pub const EPSILON: f32 = 1e-7;

/// A loss function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// The model output a loss is computed from.
pub enum Prediction {
    /// Probabilities (or any output).
    Output(Tensor),
    /// Pre-softmax logits of a softmax output layer.
    SoftmaxLogits(Tensor),
}

impl Loss {
    /// Keras' name, as used in `History` keys and the CLI.
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
        }
    }

    /// Whether labels are class indices that must be one-hot encoded first.
    pub fn sparse_labels(self) -> bool {
        self == Loss::SparseCategoricalCrossentropy
    }

    /// Whether the loss is a softmax cross-entropy, which can use the logits.
    pub fn uses_softmax_logits(self) -> bool {
        matches!(self, Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy)
    }

    /// Mean loss over the batch, a scalar tensor. `y_true` has the prediction's shape (sparse
    /// labels arrive one-hot encoded).
    pub fn compute(self, prediction: &Prediction, y_true: &Tensor) -> Result<Tensor> {
        let per_sample = match (self, prediction) {
            (
                Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy,
                Prediction::SoftmaxLogits(z),
            ) => z.softmax_cross_entropy(y_true)?,
            (Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy, Prediction::Output(p)) => {
                // Keras: renormalise, clip to [eps, 1 - eps], then -sum(y log p).
                let p = p.div(&p.sum_axis(-1, true)?)?.clamp(EPSILON, 1.0 - EPSILON)?;
                y_true.mul(&p.log()?)?.sum_axis(-1, false)?.neg()?
            }
            (Loss::BinaryCrossentropy, prediction) => {
                let p = match prediction {
                    Prediction::Output(p) | Prediction::SoftmaxLogits(p) => p,
                };
                let p = p.clamp(EPSILON, 1.0 - EPSILON)?;
                let one_minus_p = p.affine(-1.0, 1.0)?;
                let one_minus_y = y_true.affine(-1.0, 1.0)?;
                let ll = y_true.mul(&p.log()?)?.add(&one_minus_y.mul(&one_minus_p.log()?)?)?;
                ll.mean_axis(-1, false)?.neg()?
            }
            (Loss::MeanSquaredError, Prediction::Output(p) | Prediction::SoftmaxLogits(p)) => {
                p.sub(y_true)?.square()?.mean_axis(-1, false)?
            }
            (Loss::MeanAbsoluteError, Prediction::Output(p) | Prediction::SoftmaxLogits(p)) => {
                p.sub(y_true)?.abs()?.mean_axis(-1, false)?
            }
        };
        Ok(per_sample.mean_all()?)
    }
}

impl std::str::FromStr for Loss {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "categorical_crossentropy" => Loss::CategoricalCrossentropy,
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
            "binary_crossentropy" => Loss::BinaryCrossentropy,
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
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
