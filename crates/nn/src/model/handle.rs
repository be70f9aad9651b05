//! [`LayerHandle`]: one layer of a model, to inspect, freeze or set the weights of, as Keras'
//! `model.layers[i]` / `model.get_layer(name)`.

use std::sync::Arc;

use tensor::{Device, Tensor};

use super::graph::GraphLayer;
use super::symbolic::{LayerCell, Op};
use crate::array::Array;
use crate::error::{Error, Result};

/// A layer of a model (from [`Model::layers`](crate::Model::layers) or
/// [`Model::get_layer`](crate::Model::get_layer)). It shares the layer with the model: freezing
/// it or setting its weights changes the model.
///
/// ```
/// use nn::layers::Dense;
/// use nn::Sequential;
///
/// # fn main() -> nn::Result<()> {
/// let mut model = Sequential::new();
/// model.add(Dense::new(4).input_shape([3]))?;
/// model.add(Dense::new(2))?;
/// let first = model.get_layer("dense_1")?;
/// first.set_trainable(false); // Keras: layer.trainable = False
/// assert_eq!(model.count_non_trainable_params(), 3 * 4 + 4);
/// assert!(model.summary()?.contains("Non-trainable params: 16"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LayerHandle {
    name: String,
    op: Op,
    output_shape: Vec<usize>,
}

impl LayerHandle {
    pub(crate) fn new(layer: &GraphLayer) -> Self {
        LayerHandle {
            name: layer.name.clone(),
            op: layer.op.clone(),
            output_shape: layer.output_shape.clone(),
        }
    }

    /// The layer's name in its model (`dense_1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keras' class name (`Dense`, `InputLayer`, `Sequential`, ...).
    pub fn class_name(&self) -> &'static str {
        self.op.class_name()
    }

    /// The per-sample output shape (of the layer's first call).
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    /// The layers holding this layer's weights: itself, or a nested model's layers.
    fn cells(&self) -> Vec<(String, Arc<LayerCell>)> {
        match &self.op {
            Op::Layer(cell) => vec![(self.name.clone(), cell.clone())],
            Op::Model(graph) => graph.weighted_layers(),
            Op::Input(_) | Op::Merge(_) => Vec::new(),
        }
    }

    /// Number of weights (a nested model's: all of its layers').
    pub fn count_params(&self) -> usize {
        self.cells().iter().map(|(_, cell)| cell.lock().param_count()).sum()
    }

    /// Whether training updates the layer's weights (for a nested model: all of them).
    pub fn trainable(&self) -> bool {
        self.cells().iter().all(|(_, cell)| cell.lock().trainable)
    }

    /// Freezes (`false`) or unfreezes the layer, as Keras' `layer.trainable = ...`: `fit`
    /// leaves a frozen layer's weights as they are and computes no gradient for them, and the
    /// summary counts them as non-trainable. For a nested model, every layer of it.
    pub fn set_trainable(&self, trainable: bool) {
        for (_, cell) in self.cells() {
            cell.lock().set_trainable(trainable);
        }
    }

    /// The layer's weights as host arrays (kernel before bias), as Keras' `get_weights`.
    pub fn get_weights(&self) -> Result<Vec<Array>> {
        let cells = self.cells();
        let tensors: Vec<Tensor> = cells
            .iter()
            .flat_map(|(_, c)| {
                c.lock().named_weights().into_iter().map(|(_, w)| w.clone()).collect::<Vec<_>>()
            })
            .collect();
        tensors.iter().map(Array::from_tensor).collect()
    }

    /// Replaces the layer's weights (in [`get_weights`](Self::get_weights)' order and shapes);
    /// a count or shape that does not fit is an error that changes nothing.
    pub fn set_weights(&self, weights: &[Array]) -> Result<()> {
        let cells = self.cells();
        let device = cells
            .iter()
            .find_map(|(_, c)| c.lock().layer.params().first().map(|p| p.device().clone()))
            .unwrap_or_else(crate::device::default_device);
        set_layer_weights(&cells, weights, &device, &format!("layer {}", self.name))
    }
}

impl std::fmt::Debug for LayerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} {}>", self.class_name(), self.name)
    }
}

/// Sets the weights of `layers` (in their order, kernel before bias) from `weights`, on
/// `device`; `what` names the model or layer in errors. Everything is checked first.
pub(crate) fn set_layer_weights(
    layers: &[(String, Arc<LayerCell>)],
    weights: &[Array],
    device: &Device,
    what: &str,
) -> Result<()> {
    let expected: Vec<(String, Vec<usize>)> = layers
        .iter()
        .flat_map(|(name, cell)| {
            let state = cell.lock();
            let weights = state.named_weights();
            weights.into_iter().map(|(w, t)| (format!("{name}/{w}"), t.dims().to_vec())).collect::<Vec<_>>()
        })
        .collect();
    if expected.len() != weights.len() {
        return Err(Error::Data(format!(
            "{what} has {} weight arrays ({}), got {}",
            expected.len(),
            expected.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
            weights.len()
        )));
    }
    for ((name, dims), w) in expected.iter().zip(weights) {
        if w.dims() != dims.as_slice() {
            return Err(Error::Data(format!("{what}: weight {name} has shape {dims:?}, got {:?}", w.dims())));
        }
    }
    let mut values = weights.iter();
    for (_, cell) in layers {
        let mut state = cell.lock();
        let count = state.named_weights().len();
        let tensors = values
            .by_ref()
            .take(count)
            .map(|w| Ok(Tensor::from_slice(w.data(), w.dims().to_vec(), device)?))
            .collect::<Result<Vec<_>>>()?;
        state.assign_weights(tensors.into_iter());
    }
    Ok(())
}
