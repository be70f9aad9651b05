//! The functional API on MNIST: two inputs (an image and a requested digit, one-hot) and two
//! outputs (the image's digit, softmax with categorical cross-entropy; and "is the image that
//! digit", sigmoid with binary cross-entropy), trained with `loss_weights = [1.0, 0.2]`.
//!
//! ```sh
//! cargo run --release -p mnist-rs-nn --example two_heads -- --data ../shared/data/mnist --epochs 2
//! ```
//!
//! `--backend wgpu` runs it on the GPU (build with `--features wgpu`).
//!
//! MNIST is looked for in `--data DIR`, then `$MNIST_DIR`, then `data/mnist/` (downloaded there
//! if missing), as `cargo xtask train-mnist` does.

use std::path::PathBuf;

use nn::datasets::{mnist, LoadOptions};
use nn::functional::Losses;
use nn::{to_categorical, Adam, Array, DeviceKind, FitOptions, Loss, Metric};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data_dir: Option<PathBuf> = None;
    let mut epochs = 2;
    let mut backend = DeviceKind::Cpu;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => data_dir = Some(PathBuf::from(value()?)),
            "--epochs" => epochs = value()?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--backend" => backend = value()?.parse()?,
            other => {
                let expected = "--data DIR, --epochs N, --backend cpu|wgpu";
                return Err(format!("unknown argument '{other}' (expected {expected})").into());
            }
        }
    }
    let options = LoadOptions { data_dir, ..LoadOptions::default() };
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data_with(&options)?;
    let images = |x: Array| -> nn::Result<Array> {
        let n = x.len();
        x.map(|v| v / 255.0).reshape([n, 28, 28, 1])
    };
    let (x_train, x_test) = (images(x_train)?, images(x_test)?);
    // Each image gets a requested digit: its own half of the time, another one otherwise.
    let (request_train, match_train) = nn::zoo::requested_digits(&y_train, 10, 1)?;
    let (request_test, match_test) = nn::zoo::requested_digits(&y_test, 10, 2)?;
    let (digit_train, digit_test) = (to_categorical(&y_train, 10)?, to_categorical(&y_test, 10)?);

    let mut model = nn::zoo::two_heads(&[28, 28, 1], 10, &nn::device::select(backend)?, 1)?;
    print!("{}", model.summary()?);
    let losses = Losses::from([Loss::CategoricalCrossentropy, Loss::BinaryCrossentropy]).weights([1.0, 0.2]);
    model.compile(losses, Adam::new(0.003), &[Metric::Accuracy])?;
    model.fit(
        &[&x_train, &request_train],
        &[&digit_train, &match_train],
        &FitOptions::new().epochs(epochs).batch_size(128).verbose(2),
    )?;
    let scores = model.evaluate(&[&x_test, &request_test], &[&digit_test, &match_test], 256)?;
    println!("test digit accuracy: {:.4}", scores["digit_accuracy"]);
    println!("test is_requested accuracy: {:.4}", scores["is_requested_accuracy"]);
    Ok(())
}
