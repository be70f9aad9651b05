//! `Sequential`: a stack of layers, each feeding the next, as in Keras.

use tensor::Device;

use crate::error::{Error, Result};
use crate::init::Initializer;
use crate::layers::{ForwardCtx, Layer};
use crate::losses::Prediction;
use crate::summary::{summary_table, SummaryRow};
use crate::training::Compiled;
use tensor::Tensor;

/// A linear stack of layers.
///
/// Layers are built as soon as their input shape is known (from the first layer's
/// `input_shape`, or from the data at the first `fit`), so a layer that does not fit its input
/// is reported by [`Sequential::add`], naming the layer, not in the middle of training.
pub struct Sequential {
    pub(crate) layers: Vec<Box<dyn Layer>>,
    pub(crate) names: Vec<String>,
    /// Per-sample output shape of each built layer.
    pub(crate) output_shapes: Vec<Vec<usize>>,
    pub(crate) input_shape: Option<Vec<usize>>,
    pub(crate) device: Device,
    pub(crate) init: Initializer,
    pub(crate) seed: u64,
    pub(crate) compiled: Option<Compiled>,
    /// Epochs of training done so far (by `fit`, or restored from a checkpoint).
    pub(crate) epochs_done: usize,
}

impl Sequential {
    /// An empty model on the default device, initialised from seed 0.
    pub fn new() -> Self {
        Self::with_device(&crate::device::default_device())
    }

    /// An empty model whose weights live on `device`.
    pub fn with_device(device: &Device) -> Self {
        Sequential {
            layers: Vec::new(),
            names: Vec::new(),
            output_shapes: Vec::new(),
            input_shape: None,
            device: device.clone(),
            init: Initializer::new(0, device),
            seed: 0,
            compiled: None,
            epochs_done: 0,
        }
    }

    /// Seeds weight initialisation (and, unless `fit` is given its own, shuffling and dropout).
    /// Call before adding layers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.init = Initializer::new(seed, &self.device);
        self
    }

    /// Epochs trained so far: counted by [`fit`](Self::fit) (which sets it to the last epoch it
    /// finished) and restored by [`load`](Self::load) from a checkpoint. Pass it to
    /// [`FitOptions::initial_epoch`](crate::FitOptions::initial_epoch) to resume.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Appends a layer, building it if the model's input shape is known.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<()> {
        let mut layer: Box<dyn Layer> = Box::new(layer);
        let name = match layer.given_name() {
            Some(n) => n.to_string(),
            None => {
                let base = layer.base_name();
                let count =
                    self.layers.iter().filter(|l| l.base_name() == base && l.given_name().is_none()).count();
                format!("{base}_{}", count + 1)
            }
        };
        if self.names.contains(&name) {
            return Err(Error::Build(format!("two layers are named '{name}'")));
        }
        if self.layers.is_empty() {
            self.input_shape = layer.declared_input_shape().map(<[usize]>::to_vec);
        } else if layer.declared_input_shape().is_some() {
            return Err(Error::Build(format!("{name}: only the first layer may declare input_shape")));
        }
        if self.is_built() {
            let input = self.output_shapes.last().or(self.input_shape.as_ref()).cloned().expect("built");
            let out = build_layer(&mut *layer, &name, &input, &mut self.init)?;
            self.output_shapes.push(out);
        }
        self.layers.push(layer);
        self.names.push(name);
        Ok(())
    }

    /// Whether every layer has weights (the input shape is known).
    pub fn is_built(&self) -> bool {
        self.input_shape.is_some() && self.output_shapes.len() == self.layers.len()
    }

    /// Builds the layers for a per-sample `input_shape` (done by `fit` when no layer declared
    /// one). Fails, naming the layer, if the shapes do not fit.
    pub fn build(&mut self, input_shape: &[usize]) -> Result<()> {
        if let Some(declared) = &self.input_shape {
            if declared.as_slice() != input_shape {
                return Err(Error::Data(format!(
                    "the model expects samples of shape {declared:?}, got {input_shape:?}"
                )));
            }
            if self.is_built() {
                return Ok(());
            }
        }
        self.input_shape = Some(input_shape.to_vec());
        self.output_shapes.clear();
        let mut shape = input_shape.to_vec();
        for (layer, name) in self.layers.iter_mut().zip(&self.names) {
            shape = build_layer(&mut **layer, name, &shape, &mut self.init)?;
            self.output_shapes.push(shape.clone());
        }
        Ok(())
    }

    /// The per-sample input shape, once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// The per-sample output shape, once built.
    pub fn output_shape(&self) -> Option<&[usize]> {
        if self.is_built() {
            self.output_shapes.last().map(Vec::as_slice).or(self.input_shape.as_deref())
        } else {
            None
        }
    }

    /// The layers' names, in order.
    pub fn layer_names(&self) -> &[String] {
        &self.names
    }

    /// Number of parameters of each layer.
    pub fn layer_param_counts(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.params().iter().map(|p| p.numel()).sum()).collect()
    }

    /// Total number of parameters.
    pub fn count_params(&self) -> usize {
        self.layer_param_counts().iter().sum()
    }

    /// The trainable variables, layer by layer.
    pub fn trainable_variables(&self) -> Vec<&Tensor> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    pub(crate) fn variables_mut(&mut self) -> Vec<&mut Tensor> {
        self.layers.iter_mut().flat_map(|l| l.params_mut()).collect()
    }

    /// Keras' summary table (layer, output shape, parameter count, totals).
    pub fn summary(&self) -> Result<String> {
        if !self.is_built() {
            return Err(Error::Build(
                "the model is not built yet: give the first layer an input_shape, or call build()".into(),
            ));
        }
        let counts = self.layer_param_counts();
        let rows: Vec<SummaryRow> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| SummaryRow {
                name: format!("{} ({})", self.names[i], l.class_name()),
                output_shape: self.output_shapes[i].clone(),
                params: counts[i],
            })
            .collect();
        Ok(summary_table("sequential_1", &rows, self.count_params(), 0))
    }

    /// Runs the layers on a batch. With `logits`, a final softmax is left out and its input
    /// returned as [`Prediction::SoftmaxLogits`] (for a fused cross-entropy).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        training: bool,
        step_seed: u64,
        logits: bool,
    ) -> Result<Prediction> {
        let mut h = x.clone();
        let last = self.layers.len().saturating_sub(1);
        let ctx_of =
            |i: usize| ForwardCtx { training, seed: tensor::random::hash32(i as u32) as u64 ^ step_seed };
        let mut i = 0;
        while i < self.layers.len() {
            let (layer, ctx) = (&self.layers[i], ctx_of(i));
            if logits && i == last {
                if let Some(z) = layer.forward_logits(&h, ctx) {
                    return Ok(Prediction::SoftmaxLogits(z?));
                }
            }
            // A ReLU convolution and the max pooling after it run as one op, which the CPU
            // backend fuses (see `Layer::forward_relu_max_pooled`).
            if let Some(window) = self.layers.get(i + 1).and_then(|next| next.max_pool_window()) {
                if let Some(pooled) = layer.forward_relu_max_pooled(&h, window, ctx) {
                    // Errors name both layers: the pooling's shape checks run here too.
                    let pair = format!("{} + {}", self.names[i], self.names[i + 1]);
                    h = pooled.map_err(|e| with_layer(e, &pair))?;
                    i += 2;
                    continue;
                }
            }
            h = layer.forward(&h, ctx).map_err(|e| with_layer(e, &self.names[i]))?;
            i += 1;
        }
        Ok(Prediction::Output(h))
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

fn build_layer(
    layer: &mut dyn Layer,
    name: &str,
    input: &[usize],
    init: &mut Initializer,
) -> Result<Vec<usize>> {
    layer.build(input, init).map_err(|e| with_layer(e, &format!("{name} ({})", layer.class_name())))
}

/// Prefixes an error with the layer it happened in.
fn with_layer(e: Error, layer: &str) -> Error {
    match e {
        Error::Build(msg) => Error::Build(format!("layer {layer}: {msg}")),
        Error::Tensor(t) => Error::Build(format!("layer {layer}: {t}")),
        other => other,
    }
}
