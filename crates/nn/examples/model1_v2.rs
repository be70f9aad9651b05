//! The lecture's model1 written with the functional API ("model1-v2"): an `Input`, layers
//! applied to it, and a `Model` from the input to the output. The same network as model1.
//!
//! ```sh
//! cargo run --release -p mnist-rs-nn --example model1_v2
//! ```
//!
//! MNIST comes from `$MNIST_DIR`, else `data/mnist/` (downloaded there if missing). To try it
//! quickly: `EPOCHS=1 TRAIN_IMAGES=6000 cargo run --release -p mnist-rs-nn --example model1_v2`.

use nn::datasets::mnist;
use nn::functional::{Apply, Input, Model};
use nn::layers::Dense;
use nn::Activation::{Sigmoid, Softmax};
use nn::{to_categorical, FitOptions, Loss, Metric, Sgd};

fn main() -> nn::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let n = setting("TRAIN_IMAGES", x_train.len());
    let x_train = x_train.slice(0, n).reshape([n, 784])?;
    let y_train = to_categorical(&y_train.slice(0, n), 10)?;
    let x_test = x_test.reshape([10000, 784])?;
    let y_test = to_categorical(&y_test, 10)?;

    let inputs = Input::new([784]);
    let x = Dense::new(100).activation(Sigmoid).apply(&inputs)?;
    let outputs = Dense::new(10).activation(Softmax).apply(&x)?;
    let mut model1_v2 = Model::new(&[&inputs], &[&outputs])?;
    print!("{}", model1_v2.summary()?);

    model1_v2.compile(Loss::CategoricalCrossentropy, Sgd::new(0.01), &[Metric::Accuracy])?;
    let options = FitOptions::new().batch_size(128).epochs(setting("EPOCHS", 30)).verbose(2);
    let _history = model1_v2.fit(&x_train, &y_train, &options)?;

    let score = model1_v2.evaluate(&x_test, &y_test, None)?;
    println!("Test loss: {}", score["loss"]);
    println!("Test accuracy: {}", score["accuracy"]);
    Ok(())
}

/// A number from the environment (`EPOCHS`, `TRAIN_IMAGES`), else the lecture's.
fn setting(name: &str, lecture: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(lecture)
}
