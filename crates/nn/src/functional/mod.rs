//! The functional API, as Keras': models with several inputs and outputs, branches, skip
//! connections, shared layers, merge layers and nested models.
//!
//! Layers are applied to symbolic tensors ([`Input`]s, or other layers' outputs); each call
//! checks shapes at once, so a layer that does not fit its input is reported while the model is
//! being described. [`Model::new`] then takes the inputs and outputs, checks the wiring, names
//! the layers and creates the weights. The model is the same engine a [`Sequential`] builds:
//! it trains, evaluates, predicts, saves and loads through the same code.
//!
//! ```
//! use nn::functional::{Apply, Concatenate, Input, MergeLayer, Model};
//! use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
//! use nn::Activation::{Relu, Sigmoid, Softmax};
//!
//! # fn main() -> nn::Result<()> {
//! let image = Input::named("image", [28, 28, 1]);
//! let digit = Input::named("digit", [10]);
//! let x = Conv2D::new(8, (5, 5)).activation(Relu).apply(&image)?;
//! let x = MaxPooling2D::new().apply(&x)?;
//! let features = Flatten::new().apply(&x)?;
//! let class = Dense::new(10).activation(Softmax).name("class").apply(&features)?;
//! let joined = Concatenate::new(-1).apply_many(&[&features, &digit])?;
//! let matches = Dense::new(1).activation(Sigmoid).name("matches").apply(&joined)?;
//! let model = Model::new(&[&image, &digit], &[&class, &matches])?;
//! assert_eq!(model.output_names(), ["class", "matches"]);
//! assert_eq!(model.layer_names()[2], "conv2d_1");
//! # Ok(())
//! # }
//! ```
//!
//! Naming follows Keras, per model: layers (and inputs) created without a name are called
//! `conv2d_1`, `dense_1`, `dense_2`, `input_1`, ... by the model they are in, in graph order
//! (inputs in the model's order); before that a [`SymbolicTensor`] is described by its kind
//! (`dense`). Two distinct layers with one name in a model are an error.
//!
//! A model is also a layer: [`Model::apply`] (or [`Sequential::apply`]) uses it inside another
//! model, sharing its weights.

pub use crate::losses::{LossFn, Losses, OutputLoss};
pub use crate::model::merge::{
    Add, Average, Concatenate, Divide, Maximum, MergeLayer, MergeMismatch, Minimum, Multiply, Subtract,
};
pub use crate::model::symbolic::{Apply, Input, Shared, SymbolicTensor};
pub use crate::model::{LayerHandle, Model, Sequential};
