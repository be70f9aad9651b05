//! Keras layers. A layer is built once its input shape is known (creating its weights with
//! Keras' initialisers), then maps a batch to a batch. Shapes here exclude the batch axis.

/// The builder methods every layer has, `input_shape` (Keras' `input_shape=`) and `name`, for a
/// layer keeping them in a `meta: LayerMeta` field.
macro_rules! meta_builders {
    () => {
        /// Declares the per-sample input shape (without the batch axis), as Keras'
        /// `input_shape=`.
        pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
            self.meta.input_shape = Some(shape.into());
            self
        }
        /// Names the layer.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.meta.name = Some(name.into());
            self
        }
    };
}

/// The [`Layer`] methods that name a layer (Keras' class name and the prefix of automatic
/// names) and read its `meta: LayerMeta`.
macro_rules! layer_meta {
    ($class:literal, $base:literal) => {
        fn class_name(&self) -> &'static str {
            $class
        }
        fn base_name(&self) -> &'static str {
            $base
        }
        fn given_name(&self) -> Option<&str> {
            self.meta.name.as_deref()
        }
        fn declared_input_shape(&self) -> Option<&[usize]> {
            self.meta.input_shape.as_deref()
        }
    };
}

#[macro_use]
pub(crate) mod weight_options;
pub(crate) mod augmentation;
mod batch_normalization;
mod conv2d;
mod data_format;
mod dense;
mod dropout;
mod lambda;
mod pooling;
mod relu;
mod rescaling;
mod reshape;
mod spatial_dropout;
mod up_sampling;
mod zero_padding;

pub use augmentation::{Factor, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};
pub use batch_normalization::BatchNormalization;
pub use conv2d::Conv2D;
pub use data_format::DataFormat;
pub use dense::Dense;
pub use dropout::Dropout;
pub use lambda::{Lambda, LambdaFn};
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, L2Pooling2D, MaxPooling2D};
pub use relu::{LeakyReLU, ReLU};
pub use rescaling::Rescaling;
pub use reshape::{ActivationLayer, Flatten, Reshape};
pub use spatial_dropout::SpatialDropout2D;
pub use tensor::{FillMode, Interpolation};
pub use up_sampling::UpSampling2D;
pub use zero_padding::{SidePadding, ZeroPadding2D};

use std::any::Any;

use tensor::Tensor;

use crate::error::Result;
use crate::init::Initializer;

/// What every layer holds besides its own settings: the name the user gave it and the input
/// shape declared on it (see `meta_builders!` and `layer_meta!`).
#[derive(Clone, Debug, Default)]
pub(crate) struct LayerMeta {
    name: Option<String>,
    input_shape: Option<Vec<usize>>,
}

/// What a layer's forward pass needs besides its input.
#[derive(Clone, Copy, Debug)]
pub struct ForwardCtx {
    /// Training (dropout active) or inference.
    pub training: bool,
    /// Whether the layer is trainable (Keras' `layer.trainable`): a frozen
    /// `BatchNormalization` normalises with its moving statistics even in training, as in
    /// Keras.
    pub trainable: bool,
    /// A seed unique to this step and layer, for layers that draw random numbers.
    pub seed: u64,
}

impl ForwardCtx {
    /// Inference: no randomness.
    pub fn inference() -> Self {
        ForwardCtx { training: false, trainable: true, seed: 0 }
    }
    /// Training a trainable layer, drawing from `seed`.
    pub fn training(seed: u64) -> Self {
        ForwardCtx { training: true, trainable: true, seed }
    }
    /// The seed a layer draws from: the step's, mixed with the layer's own `seed` argument
    /// (Keras' `seed=`) when it has one, so a layer's seed changes its draws while each step
    /// still draws anew.
    pub fn seed_with(&self, layer_seed: Option<u64>) -> u64 {
        match layer_seed {
            None => self.seed,
            Some(s) => {
                self.seed ^ (tensor::random::hash32(s as u32) as u64 | (s >> 32) << 32).rotate_left(17)
            }
        }
    }
}

/// A layer of a model. (`Any`, so that the graph's fusion pass can recognise the layers it
/// fuses; see `model/fusion.rs`.)
pub trait Layer: Any + Send {
    /// Keras' class name, shown in `summary()`, e.g. `"Conv2D"`.
    fn class_name(&self) -> &'static str;
    /// Prefix of automatic names, e.g. `"conv2d"` (becomes `conv2d_1`, `conv2d_2`, ...).
    fn base_name(&self) -> &'static str;
    /// A name the user gave, if any.
    fn given_name(&self) -> Option<&str> {
        None
    }
    /// The per-sample input shape declared on the layer (Keras' `input_shape=`), if any.
    fn declared_input_shape(&self) -> Option<&[usize]> {
        None
    }
    /// Creates the weights for a per-sample `input_shape` and returns the per-sample output
    /// shape; an error explains why the input does not fit.
    fn build(&mut self, input_shape: &[usize], init: &mut Initializer) -> Result<Vec<usize>>;
    /// Trainable variables, in a fixed order (kernel before bias).
    fn params(&self) -> Vec<&Tensor> {
        Vec::new()
    }
    /// Mutable access to the same variables, in the same order (for optimizers).
    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        Vec::new()
    }
    /// Weights that training does not update by gradient (Keras' `non_trainable_weights`,
    /// e.g. `BatchNormalization`'s moving statistics): saved and loaded with the others,
    /// counted as non-trainable, never given to an optimizer.
    fn non_trainable(&self) -> Vec<&Tensor> {
        Vec::new()
    }
    /// Mutable access to the same tensors, in the same order (for loading).
    fn non_trainable_mut(&mut self) -> Vec<&mut Tensor> {
        Vec::new()
    }
    /// The penalties of the layer's weight regularizers (Keras' `layer.losses`), summed: a
    /// scalar added to the loss in training and evaluation; `None` without regularizers.
    fn regularization_loss(&self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Keras' names of the weights: the trainable ones, then the non-trainable ones (the
    /// names in saved files, `conv2d_1/kernel`). Only as many are used as the layer has.
    fn weight_names(&self) -> &'static [&'static str] {
        &["kernel", "bias"]
    }
    /// Maps a batch to a batch. Mutable, because a training pass may update the layer's
    /// non-trainable state (`BatchNormalization`'s moving statistics, as Keras assigns them in
    /// `call`); no other layer changes here.
    fn forward(&mut self, x: &Tensor, ctx: ForwardCtx) -> Result<Tensor>;
    /// For a layer whose output is a softmax: its input to that softmax (the logits), so that
    /// cross-entropy can be computed fused and stable. `None` for other layers.
    fn forward_logits(&self, _x: &Tensor, _ctx: ForwardCtx) -> Option<Result<Tensor>> {
        None
    }
    /// The layer's settings as Keras-style JSON (e.g. `{"units": 10, "activation": "relu"}`),
    /// from which [`Model::load`](crate::Model::load) rebuilds it; `None` (the
    /// default) for a layer that whole-model saving does not know.
    fn config(&self) -> Option<serde_json::Value> {
        None
    }
}
