//! A small program as a user of the library writes it, naming no crate but `nn`: a device,
//! tensors, a model trained, saved, loaded and checked, and the library's error type.

use nn::callbacks::EarlyStopping;
use nn::layers::{Dense, Dropout};
use nn::{Activation, Adam, Array, Device, DeviceKind, Error, FitOptions, Loss, Metric, Sequential, Tensor};

fn main() -> Result<(), Error> {
    let device: Device = nn::device::select(DeviceKind::Cpu)?;
    println!("device: {}", device.name());

    // Tensor ops straight from `nn`: a 2x2 product.
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2], &device)?;
    assert_eq!(a.matmul(&a)?.to_vec()?, vec![7.0, 10.0, 15.0, 22.0]);

    // Two noisy blobs in 4 dimensions: class 1 when the first two features sum past 1.
    let n = 512;
    let mut x = Vec::with_capacity(n * 4);
    let mut y = Vec::with_capacity(n);
    let mut state = 12345u64;
    let mut uniform = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    for _ in 0..n {
        let features = [uniform(), uniform(), uniform(), uniform()];
        y.push(if features[0] + features[1] > 1.0 { 1.0 } else { 0.0 });
        x.extend(features);
    }
    let x = Array::new(x, [n, 4])?;
    let y = Array::new(y, [n, 1])?;

    let mut model = Sequential::with_device(&device).seed(7);
    model.add(Dense::new(16).activation(Activation::Relu).input_shape([4]))?;
    model.add(Dropout::new(0.1))?;
    model.add(Dense::new(1).activation(Activation::Sigmoid))?;
    print!("{}", model.summary()?);
    model.compile(Loss::BinaryCrossentropy, Adam::new(0.01), &[Metric::Accuracy])?;
    let options = FitOptions::new()
        .epochs(40)
        .batch_size(32)
        .verbose(0)
        .validation_split(0.25)
        .callback(EarlyStopping::new().monitor("val_loss").patience(5).restore_best_weights(true));
    let history = model.fit(&x, &y, &options)?;
    let accuracy = model.evaluate(&x, &y, None)?["accuracy"];
    println!("{} epochs, accuracy {accuracy:.3}", history.get("loss").map_or(0, <[f32]>::len));

    // Saved and loaded back, the model predicts the same.
    let path = std::env::temp_dir().join(format!("downstream-{}.safetensors", std::process::id()));
    model.save(&path)?;
    let loaded = nn::Model::load(&path)?;
    std::fs::remove_file(&path).ok();
    let (before, after) = (&model.predict(&x, None)?[0], &loaded.predict(&x, None)?[0]);
    if before.data() != after.data() {
        return Err(Error::Data("the loaded model predicts differently".into()));
    }
    if accuracy < 0.9 {
        return Err(Error::Data(format!("accuracy {accuracy} is below 0.9")));
    }
    println!("ok");
    Ok(())
}
