//! A model's losses: one per output (a built-in [`Loss`] or a user closure), given as a list
//! or by output name, each with a weight in the total loss. A model of one output takes one.

use std::fmt;
use std::sync::Arc;

use tensor::Tensor;

use crate::error::{Error, Result};
use crate::losses::{Loss, Prediction};

/// A user loss: `(y_true, y_pred)` to a loss tensor (per sample, or a scalar), built from
/// differentiable tensor ops so that autodiff trains through it.
pub type LossFn = dyn Fn(&Tensor, &Tensor) -> tensor::Result<Tensor> + Send + Sync;

/// The loss of one output.
#[derive(Clone)]
pub enum OutputLoss {
    /// A built-in loss.
    Builtin(Loss),
    /// A user closure; its result is averaged over all its elements (Keras'
    /// `sum_over_batch_size` reduction), so it may return one loss per sample or a mean.
    Custom(Arc<LossFn>),
}

impl OutputLoss {
    /// A user loss from a closure of tensor ops, e.g. mean absolute error:
    ///
    /// ```
    /// use nn::losses::OutputLoss;
    /// let mae = OutputLoss::custom(|y_true, y_pred| y_pred.sub(y_true)?.abs()?.mean_axis(-1, false));
    /// ```
    pub fn custom(f: impl Fn(&Tensor, &Tensor) -> tensor::Result<Tensor> + Send + Sync + 'static) -> Self {
        OutputLoss::Custom(Arc::new(f))
    }

    /// Whether the loss wants a softmax output's logits (a built-in cross-entropy).
    pub(crate) fn uses_softmax_logits(&self) -> bool {
        matches!(self, OutputLoss::Builtin(l) if l.uses_softmax_logits())
    }

    /// Whether accuracy is binary accuracy for this loss.
    pub(crate) fn is_binary(&self) -> bool {
        matches!(self, OutputLoss::Builtin(l) if l.is_binary_crossentropy())
    }

    /// The built-in loss, if it is one.
    pub(crate) fn builtin(&self) -> Option<Loss> {
        match self {
            OutputLoss::Builtin(l) => Some(*l),
            OutputLoss::Custom(_) => None,
        }
    }

    /// Mean loss over the batch, a scalar tensor.
    pub(crate) fn compute(&self, prediction: &Prediction, y_true: &Tensor) -> Result<Tensor> {
        match self {
            OutputLoss::Builtin(loss) => loss.compute(prediction, y_true),
            OutputLoss::Custom(f) => {
                let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = prediction;
                Ok(f(y_true, p)?.mean_all()?)
            }
        }
    }
}

impl From<Loss> for OutputLoss {
    fn from(loss: Loss) -> Self {
        OutputLoss::Builtin(loss)
    }
}

impl fmt::Debug for OutputLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputLoss::Builtin(l) => match l.normalized() {
                Loss::Huber { delta } => write!(f, "huber(delta={delta})"),
                Loss::SmoothedCategoricalCrossentropy { label_smoothing: s }
                | Loss::SmoothedBinaryCrossentropy { label_smoothing: s } => {
                    write!(f, "{}(label_smoothing={s})", l.keras_name())
                }
                plain => write!(f, "{}", plain.keras_name()),
            },
            OutputLoss::Custom(_) => write!(f, "custom"),
        }
    }
}

/// The losses of a model, Keras' `loss=` and `loss_weights=` of `compile`: one loss for every
/// output, a list in output order, or a map by output name; weights (default 1) likewise.
///
/// ```
/// use nn::losses::Losses;
/// use nn::Loss;
/// let by_list = Losses::from([Loss::CategoricalCrossentropy, Loss::BinaryCrossentropy]).weights([1.0, 0.2]);
/// let by_name = Losses::by_name([("digit", Loss::CategoricalCrossentropy), ("is_digit", Loss::BinaryCrossentropy)])
///     .weight_for("is_digit", 0.2);
/// ```
#[derive(Clone, Debug)]
pub struct Losses {
    losses: LossSpec,
    weights: Option<Vec<f32>>,
    named_weights: Vec<(String, f32)>,
}

#[derive(Clone, Debug)]
enum LossSpec {
    Every(OutputLoss),
    List(Vec<OutputLoss>),
    ByName(Vec<(String, OutputLoss)>),
}

impl Losses {
    /// One loss per output, keyed by the output's name.
    pub fn by_name<S: Into<String>, L: Into<OutputLoss>>(losses: impl IntoIterator<Item = (S, L)>) -> Self {
        Self::with(LossSpec::ByName(losses.into_iter().map(|(n, l)| (n.into(), l.into())).collect()))
    }

    /// Loss weights in output order (Keras' `loss_weights=[...]`).
    pub fn weights(mut self, weights: impl IntoIterator<Item = f32>) -> Self {
        self.weights = Some(weights.into_iter().collect());
        self
    }

    /// The weight of the output called `name` (Keras' `loss_weights={name: w}`); others keep
    /// weight 1 (or the one [`Losses::weights`] gave).
    pub fn weight_for(mut self, name: impl Into<String>, weight: f32) -> Self {
        self.named_weights.push((name.into(), weight));
        self
    }

    fn with(losses: LossSpec) -> Self {
        Losses { losses, weights: None, named_weights: Vec::new() }
    }

    /// One loss and one weight per output named in `outputs`, or an error naming what does not
    /// fit (a count that differs, a name that is not an output, an output without a loss).
    pub(crate) fn resolve(&self, outputs: &[String]) -> Result<(Vec<OutputLoss>, Vec<f32>)> {
        let unknown = |name: &str| {
            Error::Build(format!("'{name}' is not an output of the model (outputs: {})", outputs.join(", ")))
        };
        let losses = match &self.losses {
            LossSpec::Every(loss) => vec![loss.clone(); outputs.len()],
            LossSpec::List(list) if list.len() == outputs.len() => list.clone(),
            LossSpec::List(list) => {
                return Err(Error::Build(format!(
                    "{} losses for {} outputs ({})",
                    list.len(),
                    outputs.len(),
                    outputs.join(", ")
                )))
            }
            LossSpec::ByName(named) => {
                if let Some((name, _)) = named.iter().find(|(n, _)| !outputs.contains(n)) {
                    return Err(unknown(name));
                }
                outputs
                    .iter()
                    .map(|o| {
                        named
                            .iter()
                            .find(|(n, _)| n == o)
                            .map(|(_, l)| l.clone())
                            .ok_or_else(|| Error::Build(format!("no loss for output '{o}'")))
                    })
                    .collect::<Result<_>>()?
            }
        };
        let mut weights = match &self.weights {
            Some(w) if w.len() != outputs.len() => {
                return Err(Error::Build(format!("{} loss weights for {} outputs", w.len(), outputs.len())))
            }
            Some(w) => w.clone(),
            None => vec![1.0; outputs.len()],
        };
        for (name, w) in &self.named_weights {
            let k = outputs.iter().position(|o| o == name).ok_or_else(|| unknown(name))?;
            weights[k] = *w;
        }
        for loss in &losses {
            if let OutputLoss::Builtin(loss) = loss {
                loss.check()?;
            }
        }
        if let Some(bad) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(Error::Build(format!("loss weight {bad} must be finite and not negative")));
        }
        Ok((losses, weights))
    }
}

impl From<Loss> for Losses {
    fn from(loss: Loss) -> Self {
        Self::with(LossSpec::Every(loss.into()))
    }
}

impl From<OutputLoss> for Losses {
    fn from(loss: OutputLoss) -> Self {
        Self::with(LossSpec::Every(loss))
    }
}

impl<L: Into<OutputLoss>> From<Vec<L>> for Losses {
    fn from(list: Vec<L>) -> Self {
        Self::with(LossSpec::List(list.into_iter().map(Into::into).collect()))
    }
}

impl<L: Into<OutputLoss>, const N: usize> From<[L; N]> for Losses {
    fn from(list: [L; N]) -> Self {
        Self::with(LossSpec::List(list.into_iter().map(Into::into).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn list_and_map_resolve_in_output_order() {
        let (l, w) = Losses::from([Loss::MeanSquaredError, Loss::BinaryCrossentropy])
            .weights([1.0, 0.2])
            .resolve(&names())
            .unwrap();
        assert_eq!(
            l.iter().map(|l| l.builtin()).collect::<Vec<_>>(),
            [Some(Loss::MeanSquaredError), Some(Loss::BinaryCrossentropy)]
        );
        assert_eq!(w, [1.0, 0.2]);
        let (l, w) = Losses::by_name([("b", Loss::BinaryCrossentropy), ("a", Loss::MeanSquaredError)])
            .weight_for("b", 0.5)
            .resolve(&names())
            .unwrap();
        assert_eq!(l[0].builtin(), Some(Loss::MeanSquaredError));
        assert_eq!(w, [1.0, 0.5]);
        let (l, _) = Losses::from(Loss::MeanSquaredError).resolve(&names()).unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn mismatches_are_errors() {
        let err = |losses: Losses| losses.resolve(&names()).unwrap_err().to_string();
        assert!(err(Losses::from([Loss::MeanSquaredError])).contains("1 losses for 2 outputs"));
        assert!(err(Losses::by_name([("c", Loss::MeanSquaredError)])).contains("'c' is not an output"));
        assert!(err(Losses::by_name([("a", Loss::MeanSquaredError)])).contains("no loss for output 'b'"));
        assert!(err(Losses::from(Loss::MeanSquaredError).weights([1.0])).contains("1 loss weights"));
        assert!(err(Losses::from(Loss::MeanSquaredError).weight_for("a", -1.0)).contains("-1"));
        assert!(err(Losses::from(Loss::Huber { delta: 0.0 })).contains("delta 0 must be positive"));
        let smoothing = Loss::SmoothedCategoricalCrossentropy { label_smoothing: -0.1 };
        assert!(err(Losses::from(smoothing)).contains("label_smoothing -0.1 must be in [0, 1]"));
    }
}
