//! The lecture's model1: one hidden layer of 100 sigmoid units on the 784 pixels, then a
//! softmax over the 10 digits, trained with SGD.
//!
//! ```sh
//! cargo run --release -p mnist-rs-nn --example model1
//! ```
//!
//! MNIST comes from `$MNIST_DIR`, else `data/mnist/` (downloaded there if missing). To try it
//! quickly: `EPOCHS=1 TRAIN_IMAGES=6000 cargo run --release -p mnist-rs-nn --example model1`.

use nn::datasets::mnist;
use nn::layers::Dense;
use nn::Activation::{Sigmoid, Softmax};
use nn::{to_categorical, FitOptions, Loss, Metric, Sequential, Sgd};

fn main() -> nn::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let n = setting("TRAIN_IMAGES", x_train.len());
    let x_train = x_train.slice(0, n).reshape([n, 784])?;
    let y_train = to_categorical(&y_train.slice(0, n), 10)?;
    let x_test = x_test.reshape([10000, 784])?;
    let y_test = to_categorical(&y_test, 10)?;

    let mut model1 = Sequential::new();
    model1.add(Dense::new(100).activation(Sigmoid).input_shape([784]))?;
    model1.add(Dense::new(10).activation(Softmax))?;
    print!("{}", model1.summary()?);

    model1.compile(Loss::CategoricalCrossentropy, Sgd::new(0.01), &[Metric::Accuracy])?;
    let options = FitOptions::new().batch_size(128).epochs(setting("EPOCHS", 30)).verbose(2);
    let _history = model1.fit(&x_train, &y_train, &options)?;

    let score = model1.evaluate(&x_test, &y_test, None)?;
    println!("Test loss: {}", score["loss"]);
    println!("Test accuracy: {}", score["accuracy"]);
    Ok(())
}

/// A number from the environment (`EPOCHS`, `TRAIN_IMAGES`), else the lecture's.
fn setting(name: &str, lecture: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(lecture)
}
