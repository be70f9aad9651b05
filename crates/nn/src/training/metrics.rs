//! Metrics reported besides the loss (Keras' `metrics=[...]`): each reduces a batch to a few
//! counts on the device (summed over an epoch without reading them back), and computes its
//! value from the sums once per epoch.

use std::str::FromStr;

use tensor::Tensor;

use crate::error::{Error, Result};

/// Thresholds of [`Metric::Auc`] (Keras' default `num_thresholds`).
pub const AUC_THRESHOLDS: usize = 200;

/// A metric, by Keras' name in logs and `History`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// `accuracy`: fraction of correct predictions: the argmax matches for several classes; for
    /// one output column (or binary cross-entropy), the prediction rounded at 0.5 matches.
    Accuracy,
    /// `top_k_categorical_accuracy` (Keras' default `k = 5`): the true class (the label's
    /// argmax) is among the `k` highest scores, ties counted in its favour as Keras' `in_top_k`.
    TopKCategoricalAccuracy(usize),
    /// `precision`: of the entries predicted positive (score above 0.5), the share that are; every
    /// entry of the output counts (Keras' `Precision` on one-hot labels).
    Precision,
    /// `recall`: of the positive entries, the share predicted positive (score above 0.5).
    Recall,
    /// `auc`: area under the ROC curve over every entry, from counts at
    /// [`AUC_THRESHOLDS`] thresholds, summed by Keras' interpolation rule.
    Auc,
}

impl Metric {
    /// Keras' name, as in logs and `History` (`accuracy`, `auc`, ...).
    pub fn keras_name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::TopKCategoricalAccuracy(_) => "top_k_categorical_accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Auc => "auc",
        }
    }

    /// The metric as a checkpoint records it: its name, or for a `k` other than Keras' 5,
    /// `{"name": ..., "k": k}`.
    pub(crate) fn to_json(self) -> serde_json::Value {
        match self {
            Metric::TopKCategoricalAccuracy(k) if k != 5 => {
                serde_json::json!({ "name": self.keras_name(), "k": k })
            }
            _ => self.keras_name().into(),
        }
    }

    /// The metric a checkpoint recorded ([`Metric::to_json`]).
    pub(crate) fn from_json(value: &serde_json::Value) -> std::result::Result<Metric, String> {
        if let Some(name) = value.as_str() {
            return name.parse().map_err(|e: Error| e.to_string());
        }
        let k = value.get("k").and_then(serde_json::Value::as_u64);
        match (value.get("name").and_then(serde_json::Value::as_str), k) {
            (Some("top_k_categorical_accuracy"), Some(k)) if k > 0 => {
                Ok(Metric::TopKCategoricalAccuracy(k as usize))
            }
            _ => Err(format!("unknown metric {value}")),
        }
    }

    /// Whether the metric compares scores with a threshold, so needs probabilities rather than
    /// a softmax's logits.
    pub(crate) fn thresholds_scores(self) -> bool {
        matches!(self, Metric::Precision | Metric::Recall | Metric::Auc)
    }

    /// Refuses settings that cannot be computed (`k` of 0).
    pub(crate) fn check(self) -> Result<()> {
        match self {
            Metric::TopKCategoricalAccuracy(0) => {
                Err(Error::Options("top_k_categorical_accuracy needs k >= 1".into()))
            }
            _ => Ok(()),
        }
    }

    /// A batch's counts for this metric: predictions `p` (probabilities, or for `Accuracy` and
    /// `TopKCategoricalAccuracy` any scores that rank like them) and labels `y`, as a device
    /// tensor that sums over batches. `binary` marks a binary cross-entropy's output.
    pub(crate) fn batch_counts(self, p: &Tensor, y: &Tensor, binary: bool) -> Result<Tensor> {
        let device = p.device();
        let above_half = || -> Result<Tensor> {
            // `p > 0.5`, as 1 or 0: Keras' strict threshold.
            Ok(Tensor::scalar(0.5, device)?.greater_equal(p)?.affine(-1.0, 1.0)?)
        };
        let one = |t: Tensor| t.reshape([1]);
        Ok(match self {
            Metric::Accuracy => correct_count(p, y, binary)?,
            Metric::TopKCategoricalAccuracy(k) => {
                let classes = *p.dims().last().unwrap_or(&1);
                if y.dims() != p.dims() || classes < 2 {
                    return Err(Error::Data(format!(
                        "top_k_categorical_accuracy takes one-hot labels of the predictions' shape \
                         [n, classes >= 2]; got labels {:?} for predictions {:?}",
                        y.dims(),
                        p.dims()
                    )));
                }
                // The true class's score; it is in the top k when fewer than k scores beat it.
                let truth = p.mul(y)?.sum_axis(-1, true)?;
                let not_above = truth.greater_equal(p)?.sum_axis(-1, false)?;
                let threshold = Tensor::scalar((classes + 1).saturating_sub(k) as f32, device)?;
                not_above.greater_equal(&threshold)?.sum_all()?
            }
            Metric::Precision | Metric::Recall => {
                let predicted = above_half()?;
                let true_positives = one(predicted.mul(y)?.sum_all()?)?;
                let denominator = if self == Metric::Precision { predicted } else { y.clone() };
                Tensor::concat(&[&true_positives, &one(denominator.sum_all()?)?], 0)?
            }
            Metric::Auc => {
                let n = p.numel();
                let p = p.reshape([n, 1])?;
                let y = y.reshape([n, 1])?;
                let thresholds = Tensor::from_vec(auc_thresholds(), [1, AUC_THRESHOLDS], device)?;
                // [n, thresholds]: whether each score is above each threshold.
                let above = thresholds.greater_equal(&p)?.affine(-1.0, 1.0)?;
                let true_positives = above.mul(&y)?.sum_axis(0, false)?;
                let predicted = above.sum_axis(0, false)?;
                let positives = one(y.sum_all()?)?;
                let count = Tensor::full(n as f32, [1], device)?;
                Tensor::concat(&[&true_positives, &predicted, &positives, &count], 0)?
            }
        })
    }

    /// How many numbers [`batch_counts`](Self::batch_counts) gives.
    pub(crate) fn count_len(self) -> usize {
        match self {
            Metric::Accuracy | Metric::TopKCategoricalAccuracy(_) => 1,
            Metric::Precision | Metric::Recall => 2,
            Metric::Auc => 2 * AUC_THRESHOLDS + 2,
        }
    }

    /// The metric's value from its counts summed over `samples` samples.
    pub(crate) fn value(self, counts: &[f32], samples: usize) -> f32 {
        let ratio = |a: f32, b: f32| if b == 0.0 { 0.0 } else { a / b };
        match self {
            Metric::Accuracy | Metric::TopKCategoricalAccuracy(_) => counts[0] / samples.max(1) as f32,
            Metric::Precision | Metric::Recall => ratio(counts[0], counts[1]),
            Metric::Auc => {
                let t = AUC_THRESHOLDS;
                let (tp, predicted) = (&counts[..t], &counts[t..2 * t]);
                let (positives, count) = (counts[2 * t], counts[2 * t + 1]);
                let negatives = count - positives;
                // Keras' AUC (ROC, "interpolation"): trapezoids between thresholds.
                let recall: Vec<f32> = tp.iter().map(|&tp| ratio(tp, positives)).collect();
                let fp_rate: Vec<f32> =
                    tp.iter().zip(predicted).map(|(&tp, &pp)| ratio(pp - tp, negatives)).collect();
                (0..t - 1).map(|i| (fp_rate[i] - fp_rate[i + 1]) * ((recall[i] + recall[i + 1]) / 2.0)).sum()
            }
        }
    }
}

/// Keras' thresholds: `-epsilon`, `i / (T - 1)` for `i` in `1..T-1`, `1 + epsilon`.
fn auc_thresholds() -> Vec<f32> {
    let inner = (0..AUC_THRESHOLDS - 2).map(|i| (i + 1) as f32 / (AUC_THRESHOLDS - 1) as f32);
    std::iter::once(-1e-7).chain(inner).chain(std::iter::once(1.0 + 1e-7)).collect()
}

impl FromStr for Metric {
    type Err = Error;
    /// Keras' names (`accuracy`, `top_k_categorical_accuracy` with k = 5, `precision`,
    /// `recall`, `auc`).
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "accuracy" => Metric::Accuracy,
            "top_k_categorical_accuracy" => Metric::TopKCategoricalAccuracy(5),
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            "auc" => Metric::Auc,
            other => return Err(Error::Options(format!("unknown metric '{other}'"))),
        })
    }
}

/// The number of correct predictions in a batch (a scalar on the device). With `binary` (a
/// binary cross-entropy) or one output column, a prediction rounded at 0.5 must match (Keras'
/// binary accuracy, a mean over the last axis per sample); otherwise the argmax must match.
pub(crate) fn correct_count(p: &Tensor, y: &Tensor, binary: bool) -> Result<Tensor> {
    let hits = if binary || p.dims().last() == Some(&1) {
        let half = Tensor::scalar(0.5, p.device())?;
        let per_element = p.greater_equal(&half)?.equal(y)?;
        per_element.mean_axis(-1, false)?
    } else {
        p.argmax()?.equal(&y.argmax()?)?
    };
    Ok(hits.sum_all()?)
}
