//! The data `fit`, `evaluate` and `predict` take: one array per model input (and per output
//! for labels), checked against the model, labels made the shape each loss wants, a validation
//! set split off, and batches gathered on the device.

use std::borrow::Cow;

use tensor::{Device, Tensor};

use super::Compiled;
use crate::array::{to_categorical, Array};
use crate::error::{Error, Result};
use crate::losses::Loss;
use crate::model::symbolic::SymbolicTensor;
use crate::model::Model;

/// One array per model input (or, for labels, per output), borrowed: what `fit`, `evaluate`
/// and `predict` take. A model of one input takes `&x`; of several, `&[&a, &b]`.
#[derive(Clone, Debug)]
pub struct Arrays<'a>(Vec<&'a Array>);

impl<'a> Arrays<'a> {
    /// The arrays, in the model's order.
    pub fn as_slice(&self) -> &[&'a Array] {
        &self.0
    }
    /// The first array, if any.
    pub fn first(&self) -> Option<&'a Array> {
        self.0.first().copied()
    }
}

impl<'a> From<&'a Array> for Arrays<'a> {
    fn from(array: &'a Array) -> Self {
        Arrays(vec![array])
    }
}

impl<'a> From<&[&'a Array]> for Arrays<'a> {
    fn from(arrays: &[&'a Array]) -> Self {
        Arrays(arrays.to_vec())
    }
}

impl<'a, const N: usize> From<&[&'a Array; N]> for Arrays<'a> {
    fn from(arrays: &[&'a Array; N]) -> Self {
        Arrays(arrays.to_vec())
    }
}

impl<'a> From<Vec<&'a Array>> for Arrays<'a> {
    fn from(arrays: Vec<&'a Array>) -> Self {
        Arrays(arrays)
    }
}

impl<'a> From<&'a [Array]> for Arrays<'a> {
    fn from(arrays: &'a [Array]) -> Self {
        Arrays(arrays.iter().collect())
    }
}

impl<'a> From<&'a Vec<Array>> for Arrays<'a> {
    fn from(arrays: &'a Vec<Array>) -> Self {
        Arrays(arrays.iter().collect())
    }
}

/// One array per model input or output, owned: what
/// [`FitOptions::validation_data`](super::FitOptions::validation_data) keeps. `x` for a model of
/// one input, `vec![a, b]` for several.
#[derive(Clone, Debug)]
pub struct OwnedArrays(pub Vec<Array>);

impl From<Array> for OwnedArrays {
    fn from(array: Array) -> Self {
        OwnedArrays(vec![array])
    }
}

impl From<Vec<Array>> for OwnedArrays {
    fn from(arrays: Vec<Array>) -> Self {
        OwnedArrays(arrays)
    }
}

impl<const N: usize> From<[Array; N]> for OwnedArrays {
    fn from(arrays: [Array; N]) -> Self {
        OwnedArrays(arrays.into())
    }
}

/// A model's inputs and labels for one pass, labels prepared for the losses.
pub(crate) struct Prepared<'a> {
    pub x: Vec<Cow<'a, Array>>,
    pub y: Vec<Cow<'a, Array>>,
}

impl Prepared<'_> {
    pub fn len(&self) -> usize {
        self.x[0].len()
    }

    /// Samples `start..end` of every array.
    pub fn slice(&self, start: usize, end: usize) -> Prepared<'static> {
        let cut =
            |arrays: &[Cow<'_, Array>]| arrays.iter().map(|a| Cow::Owned(a.slice(start, end))).collect();
        Prepared { x: cut(&self.x), y: cut(&self.y) }
    }
}

impl Model {
    /// Checks one array per input, of the input's per-sample shape, all with the same number
    /// of samples; returns that number.
    pub(crate) fn check_inputs(&self, x: &[&Array], what: &str) -> Result<usize> {
        check_arrays(x, &self.graph.inputs, &self.input_names(), "input", what)
    }

    /// Checks inputs and labels; returns them with the labels as each output's loss wants them.
    pub(crate) fn prepare<'a>(&self, x: &Arrays<'a>, y: &Arrays<'a>, what: &str) -> Result<Prepared<'a>> {
        let compiled = self.compiled()?;
        let n = self.check_inputs(x.as_slice(), what)?;
        let m = check_arrays(y.as_slice(), &self.graph.outputs, &self.output_names(), "output", what)?;
        if n != m {
            return Err(Error::Data(format!("{what}: {n} samples in x but {m} in y")));
        }
        let single = self.graph.outputs.len() == 1;
        let y = y
            .as_slice()
            .iter()
            .zip(self.output_names())
            .zip(&self.graph.outputs)
            .zip(&compiled.losses)
            .map(|(((&y, name), out), loss)| match loss.builtin() {
                Some(loss) => {
                    let label = if single { what.to_string() } else { format!("{what}, output '{name}'") };
                    prepare_labels(loss, y, out.shape(), &label)
                }
                // A user loss decides what its labels look like.
                None => Ok(Cow::Borrowed(y)),
            })
            .collect::<Result<_>>()?;
        Ok(Prepared { x: x.as_slice().iter().map(|&a| Cow::Borrowed(a)).collect(), y })
    }

    fn compiled(&self) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or_else(|| Error::Build("call compile() before fit() or evaluate()".into()))
    }
}

/// The labels `y` as `loss` wants them for a model output of per-sample shape `out`: class
/// indices one-hot encoded for a sparse loss; an error when the shapes do not match. `what`
/// names the call (and, for a model of several outputs, the output).
fn prepare_labels<'a>(loss: Loss, y: &'a Array, out: &[usize], what: &str) -> Result<Cow<'a, Array>> {
    let y = if loss.sparse_labels() {
        let classes = *out.last().unwrap_or(&1);
        Cow::Owned(to_categorical(&y.clone().reshape([y.len()])?, classes)?)
    } else {
        Cow::Borrowed(y)
    };
    if y.dims()[1..] != out[..] {
        return Err(Error::Data(format!(
            "{what}: labels have shape {:?} per sample but the model outputs {out:?}{}",
            &y.dims()[1..],
            if loss == Loss::CategoricalCrossentropy {
                " (use to_categorical for class indices)"
            } else {
                ""
            }
        )));
    }
    Ok(y)
}

/// Checks arrays against symbolic tensors (inputs, or outputs for labels) named `names`;
/// returns the number of samples.
fn check_arrays(
    arrays: &[&Array],
    against: &[SymbolicTensor],
    names: &[String],
    kind: &str,
    what: &str,
) -> Result<usize> {
    if arrays.len() != against.len() {
        return Err(Error::Data(format!(
            "{what}: the model has {} {kind}s ({}) but {} arrays were given",
            against.len(),
            names.join(", "),
            arrays.len()
        )));
    }
    let n = arrays[0].len();
    if n == 0 || arrays[0].dims().is_empty() {
        return Err(Error::Data(format!("{what}: no samples")));
    }
    for ((a, t), name) in arrays.iter().zip(against).zip(names) {
        if a.len() != n {
            return Err(Error::Data(format!(
                "{what}: {} samples for {kind} '{name}' but {n} for '{}'",
                a.len(),
                names[0]
            )));
        }
        if kind == "input" && &a.dims()[1..] != t.shape() {
            let described =
                if against.len() == 1 { "the model".to_string() } else { format!("{kind} '{name}'") };
            return Err(Error::Data(format!(
                "{what}: {described} expects samples of shape {:?}, got {:?}",
                t.shape(),
                &a.dims()[1..]
            )));
        }
    }
    Ok(n)
}

/// Where a `fit` loop's batches come from. The whole training set goes to the device once, if
/// it fits there (a GPU limits the size of one buffer); each step then sends only its indices.
/// Otherwise each batch is gathered on the host and uploaded.
pub(crate) struct BatchSource<'a> {
    arrays: Vec<&'a Array>,
    device: Device,
    resident: Option<Vec<Tensor>>,
    indices: Vec<u32>,
}

impl<'a> BatchSource<'a> {
    /// Batches of the same samples of each of `arrays` (inputs, then labels).
    pub(crate) fn new(arrays: Vec<&'a Array>, device: &Device) -> Result<Self> {
        let n = arrays.first().map_or(0, |a| a.len());
        if u32::try_from(n).is_err() {
            return Err(Error::Data(format!("{n} training samples: at most {} are supported", u32::MAX)));
        }
        let resident = arrays.iter().map(|a| a.to_tensor(device)).collect::<Result<Vec<_>>>().ok();
        Ok(BatchSource { arrays, device: device.clone(), resident, indices: Vec::new() })
    }

    /// One tensor per array, holding samples `batch` in that order.
    pub(crate) fn gather(&mut self, batch: &[usize]) -> Result<Vec<Tensor>> {
        match &self.resident {
            Some(all) => {
                self.indices.clear();
                self.indices.extend(batch.iter().map(|&i| i as u32));
                all.iter().map(|t| Ok(t.gather_rows(&self.indices)?)).collect()
            }
            None => self.arrays.iter().map(|a| a.gather(batch).to_tensor(&self.device)).collect(),
        }
    }
}
