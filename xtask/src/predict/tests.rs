use super::*;
use std::path::Path;

/// A "7" drawn with thick strokes in a `w` x `h` picture: `ink(x, y)` is 1 on a stroke.
fn seven(w: usize, h: usize) -> impl Fn(usize, usize) -> bool {
    move |x: usize, y: usize| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let top_bar = (0.2..0.3).contains(&fy) && (0.25..0.75).contains(&fx);
        let t = (fy - 0.2) / 0.6;
        let diagonal = (0.2..0.8).contains(&fy) && (fx - (0.75 - 0.3 * t)).abs() < 0.06;
        top_bar || diagonal
    }
}

fn write_png(path: &Path, w: usize, h: usize, colour: png::ColorType, bytes: &[u8]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, w as u32, h as u32);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(bytes).unwrap();
}

#[test]
fn a_saved_model_classifies_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    let model = nn::zoo::model4(&nn::device::cpu(), 9).unwrap();
    model.save(&weights).unwrap();
    let (w, h) = (40, 40);
    let ink = seven(w, h);
    let image = dir.path().join("seven.png");
    let grey: Vec<u8> = (0..w * h).map(|i| if ink(i % w, i / w) { 0 } else { 250 }).collect();
    write_png(&image, w, h, png::ColorType::Grayscale, &grey);

    let loaded = nn::Model::load(&weights).unwrap();
    let probabilities = classify_file(&loaded, &image, false).unwrap();
    assert_eq!(probabilities.len(), 10);
    assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{probabilities:?}");
    // The same as the model's output on the prepared digit.
    let x = nn::datasets::image::mnist_digit(&image).unwrap();
    let mut original = model;
    assert_eq!(original.predict(&x, 1).unwrap()[0].data(), &probabilities[..]);
    predict(&["--weights".into(), weights.display().to_string(), image.display().to_string()]).unwrap();
    assert!(predict(&["--weights".into(), weights.display().to_string()])
        .unwrap_err()
        .contains("exactly one image"));
}
