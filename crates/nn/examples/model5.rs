//! The lecture's model5: model4 with a second convolution and pooling, trained for 100 epochs.
//!
//! ```sh
//! cargo run --release -p mnist-rs-nn --example model5
//! ```
//!
//! MNIST comes from `$MNIST_DIR`, else `data/mnist/` (downloaded there if missing). To try it
//! quickly: `EPOCHS=1 TRAIN_IMAGES=6000 cargo run --release -p mnist-rs-nn --example model5`.

use nn::datasets::mnist;
use nn::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use nn::Activation::{Relu, Softmax, Tanh};
use nn::{to_categorical, FitOptions, Loss, Metric, Sequential, Sgd};

fn main() -> nn::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let n = setting("TRAIN_IMAGES", x_train.len());
    let x_train = x_train.slice(0, n).reshape([n, 28, 28, 1])?;
    let y_train = to_categorical(&y_train.slice(0, n), 10)?;
    let x_test = x_test.reshape([10000, 28, 28, 1])?;
    let y_test = to_categorical(&y_test, 10)?;

    let mut model5 = Sequential::new();
    model5.add(Conv2D::new(20, (5, 5)).activation(Relu).input_shape([28, 28, 1]))?;
    model5.add(MaxPooling2D::new().pool_size((2, 2)))?;
    model5.add(Conv2D::new(40, (3, 3)).activation(Relu))?;
    model5.add(MaxPooling2D::new().pool_size((2, 2)))?;
    model5.add(Flatten::new())?;
    model5.add(Dense::new(100).activation(Tanh))?;
    model5.add(Dense::new(10).activation(Softmax))?;
    print!("{}", model5.summary()?);

    model5.compile(Loss::CategoricalCrossentropy, Sgd::new(0.01), &[Metric::Accuracy])?;
    let options = FitOptions::new().batch_size(128).epochs(setting("EPOCHS", 100)).verbose(2);
    let _history = model5.fit(&x_train, &y_train, &options)?;

    let score = model5.evaluate(&x_test, &y_test, None)?;
    println!("Test loss: {}", score["loss"]);
    println!("Test accuracy: {}", score["accuracy"]);
    Ok(())
}

/// A number from the environment (`EPOCHS`, `TRAIN_IMAGES`), else the lecture's.
fn setting(name: &str, lecture: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(lecture)
}
