use super::*;

#[test]
fn a_saved_model_classifies_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    let model = nn::zoo::model4(&nn::device::cpu(), 9).unwrap();
    model.save(&weights).unwrap();
    // A "1": a dark vertical bar on light paper (nn::datasets::image's tests cover the
    // preprocessing itself).
    let (width, height) = (40, 40);
    let image = dir.path().join("one.png");
    let pixels = (0..width * height).map(|i| if (18..23).contains(&(i % width)) { 0 } else { 250 }).collect();
    nn::visualize::GrayImage { width, height, pixels }.save_png(&image).unwrap();

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
