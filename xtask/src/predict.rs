//! `cargo xtask predict --weights FILE image.png`: classifies a user's own picture of a digit.
//! `FILE` is a model saved by `Model::save` (safetensors) or a Keras 3 `.keras` file (read by
//! `Model::load` through its extension).
//!
//! The picture is made to look like an MNIST digit by `nn::datasets::image::mnist_digit`.

use std::path::Path;

use nn::Model;

use crate::args::Args;

pub fn predict(argv: &[String]) -> Result<(), String> {
    const USAGE: &str =
        "usage: cargo xtask predict --weights MODEL.safetensors|MODEL.keras [--normalize] IMAGE.png";
    let (flags, images): (Vec<&String>, Vec<&String>) = {
        let mut flags = Vec::new();
        let mut images = Vec::new();
        let mut it = argv.iter();
        while let Some(arg) = it.next() {
            if arg == "--weights" {
                flags.push(arg);
                flags.extend(it.next());
            } else if arg.starts_with("--") {
                flags.push(arg);
            } else {
                images.push(arg);
            }
        }
        (flags, images)
    };
    let flags: Vec<String> = flags.into_iter().cloned().collect();
    let args = Args::parse(&flags, &["weights"], &["normalize"])?;
    let weights = args.value("weights").ok_or_else(|| format!("--weights is required\n{USAGE}"))?;
    let [image] = images[..] else {
        return Err(format!("give exactly one image (got {})\n{USAGE}", images.len()));
    };
    let model = Model::load(weights).map_err(|e| format!("--weights: {e}"))?;
    let probabilities = classify_file(&model, Path::new(image), args.switch("normalize"))?;
    let class = argmax(&probabilities);
    println!("{image}: {class}");
    for (digit, p) in probabilities.iter().enumerate() {
        println!("  {digit}: {p:.4}{}", if digit == class { "  <-" } else { "" });
    }
    Ok(())
}

/// The model's output for the picture at `path`, prepared as MNIST's digits were; pixels are
/// 0-255 as the lecture trains, or 0-1 with `normalize` (train-mnist's `--normalize`; the
/// model file does not record it).
pub fn classify_file(model: &Model, path: &Path, normalize: bool) -> Result<Vec<f32>, String> {
    let digit = nn::datasets::image::mnist_digit(path).map_err(|e| e.to_string())?;
    let scale = if normalize { 1.0 / 255.0 } else { 1.0 };
    let shape = model.input_shapes().remove(0);
    if shape.iter().product::<usize>() != digit.sample_len() {
        return Err(format!("the model takes inputs of shape {shape:?}, not a 28x28 image"));
    }
    let x =
        digit.map(|v| v * scale).reshape([&[1usize][..], &shape[..]].concat()).map_err(|e| e.to_string())?;
    Ok(model.predict(&x, 1).map_err(|e| e.to_string())?.remove(0).into_data())
}

fn argmax(values: &[f32]) -> usize {
    values.iter().enumerate().fold(0, |best, (i, &v)| if v > values[best] { i } else { best })
}

#[cfg(test)]
mod tests;
