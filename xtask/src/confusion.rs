//! `cargo xtask confusion --weights FILE`: a trained classifier's confusion matrix on the test
//! set, printed as a table and drawn as a PNG.

use nn::confusion::ConfusionMatrix;
use nn::Model;

use crate::args::Args;
use crate::data;

pub fn confusion(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["weights", "data", "dataset", "png"], &["normalize"])?;
    let weights = args.value("weights").ok_or("--weights MODEL.safetensors is required")?;
    let model = Model::load(weights).map_err(|e| format!("--weights: {e}"))?;
    let shape = model.input_shapes().remove(0);
    let dataset = data::dataset_kind(args.value("dataset"))?;
    // The model file does not record whether training scaled the pixels: --normalize says so.
    let test = data::load(args.value("data"), dataset, &shape, args.switch("normalize"))?;
    let predictions = model.predict(&test.x_test, 256).map_err(|e| e.to_string())?.remove(0);
    let matrix = ConfusionMatrix::from_predictions(&test.y_test, &predictions).map_err(|e| e.to_string())?;
    print!("{}", matrix.to_table());
    let wrong = test.x_test.len() - (matrix.accuracy() as f64 * test.x_test.len() as f64).round() as usize;
    println!("accuracy: {:.4} ({wrong}/{} wrong)", matrix.accuracy(), test.x_test.len());
    let png = args.value("png").unwrap_or("confusion.png");
    matrix.save_png(png).map_err(|e| format!("--png: {e}"))?;
    println!("drew the matrix to {png}");
    Ok(())
}
