//! Weight regularizers (Keras' `keras.regularizers`): a penalty on a layer's weight that
//! training adds to the loss (`kernel_regularizer=`, `bias_regularizer=` on `Dense` and
//! `Conv2D`). As in Keras, the penalties of a model's trainable weights are added to the total
//! loss of every batch, in training and in `evaluate`, so the epoch's `loss` shows them; the
//! per-output losses of a model of several outputs do not.

use serde_json::{json, Value};
use tensor::Tensor;

use crate::error::{Error, Result};

/// A penalty on a weight `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regularizer {
    /// `l1 * sum(|w|)` (Keras' `L1`, default 0.01).
    L1(f32),
    /// `l2 * sum(w^2)` (Keras' `L2`, default 0.01).
    L2(f32),
    /// `l1 * sum(|w|) + l2 * sum(w^2)` (Keras' `L1L2`); a zero factor adds nothing.
    L1L2 {
        /// The absolute values' factor.
        l1: f32,
        /// The squares' factor.
        l2: f32,
    },
}

impl Regularizer {
    /// Keras' `"l1"`, `"l2"` and `"l1_l2"` (each factor 0.01).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "l1" => Regularizer::L1(0.01),
            "l2" => Regularizer::L2(0.01),
            "l1_l2" => Regularizer::L1L2 { l1: 0.01, l2: 0.01 },
            other => return Err(Error::Options(format!("unknown regularizer '{other}' (l1, l2 or l1_l2)"))),
        })
    }

    /// Refuses factors that are negative or not finite.
    pub(crate) fn check(&self) -> Result<()> {
        let (l1, l2) = self.factors();
        if !(l1 >= 0.0 && l1.is_finite() && l2 >= 0.0 && l2.is_finite()) {
            return Err(Error::Build(format!("regularizer {self:?}: factors must be finite and 0 or more")));
        }
        Ok(())
    }

    fn factors(&self) -> (f32, f32) {
        match *self {
            Regularizer::L1(l1) => (l1, 0.0),
            Regularizer::L2(l2) => (0.0, l2),
            Regularizer::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// The penalty on `w` (a scalar, differentiable in `w`), computed as Keras does.
    pub fn penalty(&self, w: &Tensor) -> Result<Tensor> {
        let (l1, l2) = self.factors();
        let mut total: Option<Tensor> = None;
        if l1 != 0.0 {
            total = Some(w.abs()?.sum_all()?.mul_scalar(l1)?);
        }
        if l2 != 0.0 {
            let squares = w.square()?.sum_all()?.mul_scalar(l2)?;
            total = Some(match total {
                Some(t) => t.add(&squares)?,
                None => squares,
            });
        }
        match total {
            Some(t) => Ok(t),
            None => Ok(Tensor::scalar(0.0, w.device())?),
        }
    }

    /// Keras' config: `{"class_name": "L2", "config": {"l2": 0.01}}`.
    pub(crate) fn to_json(self) -> Value {
        match self {
            Regularizer::L1(l1) => json!({ "class_name": "L1", "config": { "l1": l1 } }),
            Regularizer::L2(l2) => json!({ "class_name": "L2", "config": { "l2": l2 } }),
            Regularizer::L1L2 { l1, l2 } => json!({ "class_name": "L1L2", "config": { "l1": l1, "l2": l2 } }),
        }
    }

    /// A regularizer from Keras' config (or its name); `null` is none.
    pub(crate) fn from_json(value: &Value) -> std::result::Result<Option<Self>, String> {
        if value.is_null() {
            return Ok(None);
        }
        if let Some(name) = value.as_str() {
            return Regularizer::from_name(name).map(Some).map_err(|e| e.to_string());
        }
        let class = value.get("class_name").and_then(Value::as_str).unwrap_or_default();
        let config = value.get("config").cloned().unwrap_or(json!({}));
        let factor = |key: &str, default: f64| -> std::result::Result<f32, String> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(default as f32),
                Some(v) => v
                    .as_f64()
                    .map(|v| v as f32)
                    .ok_or_else(|| format!("regularizer {class}: '{key}' is not a number")),
            }
        };
        Ok(Some(match class {
            "L1" => Regularizer::L1(factor("l1", 0.01)?),
            "L2" => Regularizer::L2(factor("l2", 0.01)?),
            "L1L2" => Regularizer::L1L2 { l1: factor("l1", 0.0)?, l2: factor("l2", 0.0)? },
            other => return Err(format!("unknown regularizer class '{other}' (L1, L2 or L1L2)")),
        }))
    }
}
