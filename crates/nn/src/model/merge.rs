//! Keras' merge layers: layers of several inputs and no weights. `Concatenate` joins along an
//! axis; `Add`, `Subtract`, `Multiply`, `Average` and `Maximum` combine inputs of one shape
//! element by element. Shapes are checked when the layer is applied, so a mismatch is reported
//! while the model is being described, naming the layers whose outputs disagree.

use tensor::Tensor;

use super::symbolic::{apply_merge, SymbolicTensor};
use crate::error::Result;
use crate::summary::batch_shape;

/// Why inputs cannot be merged: the two inputs that disagree (indices into the inputs, when
/// the reason concerns particular ones) and what is wrong.
#[derive(Debug)]
pub struct MergeMismatch {
    /// The first input concerned.
    pub first: Option<usize>,
    /// The input that disagrees with `first`.
    pub second: Option<usize>,
    /// What is wrong, e.g. "element-wise merges need equal shapes".
    pub reason: String,
}

/// A layer with several inputs and no weights.
pub trait MergeLayer: Send + Sync {
    /// Keras' class name, e.g. `"Concatenate"`.
    fn class_name(&self) -> &'static str;
    /// Prefix of automatic names, e.g. `"concatenate"`.
    fn base_name(&self) -> &'static str;
    /// A name the user gave, if any.
    fn given_name(&self) -> Option<&str>;
    /// The per-sample output shape for per-sample input `shapes`, or why they do not fit.
    fn output_shape(&self, shapes: &[&[usize]]) -> std::result::Result<Vec<usize>, MergeMismatch>;
    /// Merges a batch of each input.
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor>;
    /// The layer's settings as Keras-style JSON (`{"axis": -1}` for `Concatenate`), from which
    /// [`Model::load`](crate::Model::load) rebuilds it.
    fn config(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// Applies the layer to `inputs`, Keras style: `Add::new().apply_many(&[&a, &b])?`.
    fn apply_many(self, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor>
    where
        Self: Sized + 'static,
    {
        apply_merge(Box::new(self), inputs)
    }
}

/// Joins its inputs along `axis` (Keras counts the batch as axis 0, so `-1`, the default, is
/// the last axis and `1` the first axis of a sample). All other axes must agree.
pub struct Concatenate {
    axis: isize,
    name: Option<String>,
}

impl Concatenate {
    /// Concatenation along `axis` (batch axis included in the count, as in Keras).
    pub fn new(axis: isize) -> Self {
        Concatenate { axis, name: None }
    }
    /// Names the layer.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl Default for Concatenate {
    fn default() -> Self {
        Self::new(-1)
    }
}

impl MergeLayer for Concatenate {
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn base_name(&self) -> &'static str {
        "concatenate"
    }
    fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, shapes: &[&[usize]]) -> std::result::Result<Vec<usize>, MergeMismatch> {
        let first = at_least(shapes, 1)?;
        let rank = first.len() + 1;
        let axis = if self.axis < 0 { self.axis + rank as isize } else { self.axis };
        if axis < 1 || axis >= rank as isize {
            return Err(MergeMismatch {
                first: Some(0),
                second: None,
                reason: format!(
                    "axis {} is not an axis of a sample of shape {} (the batch axis 0 cannot be joined)",
                    self.axis,
                    batch_shape(first)
                ),
            });
        }
        let axis = axis as usize - 1;
        let mut out = first.to_vec();
        for (i, s) in shapes.iter().enumerate().skip(1) {
            let fits = s.len() == first.len() && (0..s.len()).all(|d| d == axis || s[d] == first[d]);
            if !fits {
                return Err(MergeMismatch {
                    first: Some(0),
                    second: Some(i),
                    reason: format!("all axes but the concatenation axis {} must agree", self.axis),
                });
            }
            out[axis] += s[axis];
        }
        Ok(out)
    }
    fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        Ok(Tensor::concat(inputs, self.axis)?)
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "axis": self.axis })
    }
}

/// The element-wise merges: one kind per Keras layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elementwise {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Divide,
}

impl Elementwise {
    fn output_shape(self, shapes: &[&[usize]]) -> std::result::Result<Vec<usize>, MergeMismatch> {
        let first = at_least(shapes, 2)?;
        if matches!(self, Elementwise::Subtract | Elementwise::Divide) && shapes.len() != 2 {
            return Err(MergeMismatch {
                first: None,
                second: None,
                reason: format!("{self:?} takes exactly 2 inputs, got {}", shapes.len()),
            });
        }
        if let Some(i) = shapes.iter().position(|s| *s != first) {
            return Err(MergeMismatch {
                first: Some(0),
                second: Some(i),
                reason: "element-wise merges need inputs of one shape".into(),
            });
        }
        Ok(first.to_vec())
    }

    fn forward(self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (first, rest) = inputs
            .split_first()
            .ok_or_else(|| crate::Error::Build("a merge layer was run on no inputs".into()))?;
        let mut acc = (*first).clone();
        for x in rest {
            acc = match self {
                Elementwise::Add | Elementwise::Average => acc.add(x)?,
                Elementwise::Subtract => acc.sub(x)?,
                Elementwise::Multiply => acc.mul(x)?,
                Elementwise::Maximum => acc.maximum(x)?,
                Elementwise::Minimum => acc.minimum(x)?,
                Elementwise::Divide => acc.div(x)?,
            };
        }
        if self == Elementwise::Average {
            acc = acc.mul_scalar(1.0 / inputs.len() as f32)?;
        }
        Ok(acc)
    }
}

/// At least `n` shapes; the first one.
fn at_least<'a>(shapes: &[&'a [usize]], n: usize) -> std::result::Result<&'a [usize], MergeMismatch> {
    match shapes.first() {
        Some(first) if shapes.len() >= n => Ok(first),
        _ => Err(MergeMismatch {
            first: None,
            second: None,
            reason: format!("a merge layer needs at least {n} inputs, got {}", shapes.len()),
        }),
    }
}

/// Declares an element-wise merge layer: a struct with `new` and `name`, and its
/// [`MergeLayer`] impl delegating to [`Elementwise`].
macro_rules! elementwise_layer {
    ($(#[$doc:meta])* $ty:ident, $kind:ident, $base:literal) => {
        $(#[$doc])*
        #[derive(Default)]
        pub struct $ty {
            name: Option<String>,
        }

        impl $ty {
            #[doc = concat!("A `", stringify!($ty), "` layer.")]
            pub fn new() -> Self {
                $ty { name: None }
            }
            /// Names the layer.
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.name = Some(name.into());
                self
            }
        }

        impl MergeLayer for $ty {
            fn class_name(&self) -> &'static str {
                stringify!($ty)
            }
            fn base_name(&self) -> &'static str {
                $base
            }
            fn given_name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn output_shape(&self, shapes: &[&[usize]]) -> std::result::Result<Vec<usize>, MergeMismatch> {
                Elementwise::$kind.output_shape(shapes)
            }
            fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
                Elementwise::$kind.forward(inputs)
            }
        }
    };
}

elementwise_layer!(
    /// The sum of its inputs (all of one shape).
    Add, Add, "add"
);
elementwise_layer!(
    /// The first input minus the second (exactly two inputs, of one shape).
    Subtract, Subtract, "subtract"
);
elementwise_layer!(
    /// The element-wise product of its inputs (all of one shape).
    Multiply, Multiply, "multiply"
);
elementwise_layer!(
    /// The element-wise mean of its inputs (all of one shape).
    Average, Average, "average"
);
elementwise_layer!(
    /// The element-wise maximum of its inputs (all of one shape); on ties the gradient goes to
    /// the earliest input.
    Maximum, Maximum, "maximum"
);
elementwise_layer!(
    /// The element-wise minimum of its inputs (all of one shape); on ties the gradient goes to
    /// the earliest input.
    Minimum, Minimum, "minimum"
);
elementwise_layer!(
    /// The first input divided by the second, element-wise (exactly two inputs, of one shape;
    /// the lecture's "dividing" merge, which Keras 3 has as `keras.ops.divide` only).
    Divide, Divide, "divide"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenate_shapes() {
        let c = Concatenate::new(-1);
        assert_eq!(c.output_shape(&[&[2, 3], &[2, 5]]).unwrap(), vec![2, 8]);
        assert_eq!(Concatenate::new(1).output_shape(&[&[2, 3], &[4, 3]]).unwrap(), vec![6, 3]);
        let bad = c.output_shape(&[&[2, 3], &[3, 5]]).unwrap_err();
        assert_eq!((bad.first, bad.second), (Some(0), Some(1)));
        assert!(Concatenate::new(0).output_shape(&[&[2], &[2]]).unwrap_err().reason.contains("batch"));
        assert!(Concatenate::new(-3).output_shape(&[&[2], &[2]]).is_err());
    }

    #[test]
    fn elementwise_shapes() {
        assert_eq!(Add::new().output_shape(&[&[4], &[4], &[4]]).unwrap(), vec![4]);
        let bad = Multiply::new().output_shape(&[&[4], &[4], &[5]]).unwrap_err();
        assert_eq!((bad.first, bad.second), (Some(0), Some(2)));
        assert!(Subtract::new().output_shape(&[&[4], &[4], &[4]]).unwrap_err().reason.contains("exactly 2"));
        assert!(Divide::new()
            .output_shape(&[&[4], &[4], &[4]])
            .unwrap_err()
            .reason
            .contains("Divide takes exactly 2"));
        assert_eq!(Minimum::new().output_shape(&[&[4], &[4], &[4]]).unwrap(), vec![4]);
        assert!(Average::new().output_shape(&[&[4]]).unwrap_err().reason.contains("at least 2"));
    }
}
