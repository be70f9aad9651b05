//! Keras-style neural networks in Rust: define, summarise, train and evaluate a network in a
//! few lines, on the CPU (and, with the `wgpu` feature, on a GPU; with `mpi`, on a cluster).
//!
//! The lecture's model4, as its Keras program reads (`cargo run --release -p mnist-rs-nn --example
//! model4` trains it on MNIST; `model1`, `model1_v2` and `model5` are there too):
//!
//! ```
//! use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
//! use nn::Activation::{Relu, Softmax, Tanh};
//! use nn::{to_categorical, Array, FitOptions, Loss, Metric, Sequential, Sgd};
//!
//! # fn main() -> nn::Result<()> {
//! let mut model4 = Sequential::new();
//! model4.add(Conv2D::new(20, (5, 5)).activation(Relu).input_shape([28, 28, 1]))?;
//! model4.add(MaxPooling2D::new().pool_size((2, 2)))?;
//! model4.add(Flatten::new())?;
//! model4.add(Dense::new(100).activation(Tanh))?;
//! model4.add(Dense::new(10).activation(Softmax))?;
//! print!("{}", model4.summary()?);
//! assert_eq!(model4.count_params(), 289_630); // Keras' count for the same layers
//! model4.compile(Loss::CategoricalCrossentropy, Sgd::new(0.01), &[Metric::Accuracy])?;
//!
//! // MNIST would be `nn::datasets::mnist::load_data()?`; here, 32 blank images of digit 3.
//! let x_train = Array::zeros([32, 28, 28, 1]);
//! let y_train = to_categorical(&Array::new(vec![3.0; 32], [32])?, 10)?;
//! let history = model4.fit(&x_train, &y_train, &FitOptions::new().batch_size(16).epochs(2).verbose(0))?;
//! let score = model4.evaluate(&x_train, &y_train, None)?;
//! println!("Test loss: {}, test accuracy: {}", score["loss"], score["accuracy"]);
//! assert_eq!(history.get("loss").unwrap().len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! A network small enough to learn inside this page:
//!
//! ```
//! use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
//! use nn::{Activation, Array, FitOptions, Loss, Metric, Sequential, Sgd};
//!
//! # fn main() -> nn::Result<()> {
//! let mut model = Sequential::new();
//! model.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).input_shape([8, 8, 1]))?;
//! model.add(MaxPooling2D::new())?;
//! model.add(Flatten::new())?;
//! model.add(Dense::new(2).activation(Activation::Softmax))?;
//! print!("{}", model.summary()?);
//! model.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy])?;
//!
//! // Two classes: bright top half vs bright bottom half.
//! let mut images = Vec::new();
//! let mut labels = Vec::new();
//! for i in 0..64 {
//!     let top = i % 2 == 0;
//!     images.extend((0..64).map(|p| if (p < 32) == top { 1.0 } else { 0.0 }));
//!     labels.extend(if top { [1.0, 0.0] } else { [0.0, 1.0] });
//! }
//! let x = Array::new(images, [64, 8, 8, 1])?;
//! let y = Array::new(labels, [64, 2])?;
//! let history = model.fit(&x, &y, &FitOptions::new().epochs(20).batch_size(16).verbose(0))?;
//! let scores = model.evaluate(&x, &y, 64)?;
//! assert!(scores["accuracy"] > 0.9, "scores {scores:?}, history {history:?}");
//! # Ok(())
//! # }
//! ```

pub mod activation;
pub mod array;
pub mod callbacks;
pub mod confusion;
pub mod datasets;
pub mod device;
pub mod distributed;
pub mod error;
pub mod functional;
pub mod history;
pub mod init;
pub mod initializers;
pub mod layers;
pub mod losses;
mod model;
pub mod optimizers;
pub mod progress;
pub mod regularizers;
pub mod saving;
mod summary;
pub mod training;
pub mod visualize;
pub mod zoo;

pub use activation::Activation;
pub use array::{to_categorical, Array};
pub use device::DeviceKind;
pub use error::{Error, Result};
pub use losses::Loss;
pub use model::{LayerHandle, Model, Sequential};
pub use optimizers::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
pub use progress::ProgressOutput;
pub use saving::SavingError;
pub use tensor::{Device, Padding, Tensor};
pub use training::{FitOptions, History, Logs, Metric};
