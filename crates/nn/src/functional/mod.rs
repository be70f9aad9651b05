//! The functional API, as Keras': models with several inputs and outputs, branches, skip
//! connections, shared layers and merge layers.
//!
//! Layers are applied to symbolic tensors ([`Input`]s, or other layers' outputs); each call
//! checks shapes at once, so a layer that does not fit its input is reported while the model is
//! being described. [`Model::new`] then takes the inputs and outputs, checks the wiring and
//! creates the weights.
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
//! # Ok(())
//! # }
//! ```
//!
//! Naming follows Keras: layers (and inputs) created without a name are called `dense_1`,
//! `dense_2`, `input_1`, ... in the order they are created on a thread; [`reset_names`] starts
//! over. Two distinct layers with one name in a model are an error.

mod graph;
mod losses;
mod merge;
mod model;
mod summary;
mod training;

pub use graph::{reset_names, Apply, Input, Shared, SymbolicTensor};
pub use losses::{LossFn, Losses, OutputLoss};
pub use merge::{Add, Average, Concatenate, Maximum, MergeLayer, MergeMismatch, Multiply, Subtract};
pub use model::Model;
