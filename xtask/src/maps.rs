//! `cargo xtask feature-maps`: the pictures a lecture on CNNs shows, the first convolution's
//! filters and the feature maps one test image produces after each Conv2D and pooling layer.
//! `--weights` takes a model saved by `Model::save` or a Keras 3 `.keras` file.

use std::path::{Path, PathBuf};

use nn::visualize::{grid, Tile};
use nn::{FitOptions, Model};

use crate::args::Args;
use crate::data;

/// Pixels per filter weight (5x5 filters become 60x60 tiles).
const FILTER_SCALE: usize = 12;
/// Target size of a feature-map tile's longer side, in pixels.
const MAP_PIXELS: usize = 96;

pub fn feature_maps(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["model", "image", "weights", "out", "data", "seed"], &["normalize"])?;
    let name = args.value("model").unwrap_or("model5").to_string();
    let index: usize = args.get("image", 7)?;
    let out = PathBuf::from(args.value("out").unwrap_or("feature-maps"));
    let normalize = args.switch("normalize");
    let data = data::load(
        args.value("data"),
        nn::datasets::DatasetKind::Mnist,
        nn::zoo::input_shape(&name),
        normalize,
    )?;
    if index >= data.x_test.len() {
        return Err(format!("--image {index}: the test set has {} images (0-based)", data.x_test.len()));
    }
    let model = match args.value("weights") {
        Some(path) => Model::load(path).map_err(|e| format!("--weights: {e}"))?,
        None => {
            println!("no --weights given: training {name} for 1 epoch first (SGD, lr 0.01, batch 128)");
            let mut model = data::lecture_model(&name, &nn::device::cpu(), args.get("seed", 1u64)?)?;
            let fit = FitOptions::new().epochs(1).batch_size(128).verbose(1);
            model.fit(&data.x_train, &data.y_train, &fit).map_err(|e| e.to_string())?;
            model
        }
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    let written = write_pictures(&model, &data.x_test.slice(index, index + 1), &out)?;
    let label = data.y_test.slice(index, index + 1).data().iter().position(|&v| v == 1.0).unwrap_or(0);
    println!("test image #{index} (a {label}):");
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

/// Writes `input.png`, `filters.png` (the first Conv2D's filters) and one grid per Conv2D
/// and pooling layer (`NN_<layer>.png`) for the one-image batch `image`; returns the paths.
pub fn write_pictures(model: &Model, image: &nn::Array, out: &Path) -> Result<Vec<PathBuf>, String> {
    let e = |e: nn::Error| e.to_string();
    let mut written = Vec::new();
    let mut save = |file: String, tiles: &[Tile], columns: usize, scale: usize| -> Result<(), String> {
        let path = out.join(file);
        // One tile needs no frame (and input.png stays a plain picture `predict` can read).
        let gap = if tiles.len() == 1 { 0 } else { 2 };
        grid(tiles, columns, scale, gap).and_then(|g| g.save_png(&path)).map_err(e)?;
        written.push(path);
        Ok(())
    };
    let as_map = image.clone().reshape([1, 28, 28, 1]).map_err(e)?;
    save("input.png".into(), &Tile::channels(&as_map).map_err(e)?, 1, 4)?;
    let (_, kernel) = model.first_kernel("Conv2D").map_err(e)?;
    let filters = Tile::filters(&kernel).map_err(e)?;
    save("filters.png".into(), &filters, 10, FILTER_SCALE)?;
    for (i, layer) in model.layer_outputs(image).map_err(e)?.iter().enumerate() {
        if layer.output.dims().len() != 4 {
            continue; // Flatten and Dense outputs are not images.
        }
        let tiles = Tile::channels(&layer.output).map_err(e)?;
        let side = layer.output.dims()[1].max(layer.output.dims()[2]);
        save(format!("{:02}_{}.png", i + 1, layer.name), &tiles, 10, (MAP_PIXELS / side).max(1))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_decodable_non_blank_grids_for_model5() {
        let model = nn::zoo::model5(&nn::device::cpu(), 3).unwrap().into_model().unwrap();
        let pixels: Vec<f32> =
            (0..784usize).map(|p| if (p % 28).abs_diff(p / 28) < 3 { 255.0 } else { 0.0 }).collect();
        let image = nn::Array::new(pixels, [1, 28, 28, 1]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let written = write_pictures(&model, &image, dir.path()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "input.png",
                "filters.png",
                "01_conv2d_1.png",
                "02_max_pooling2d_1.png",
                "03_conv2d_2.png",
                "04_max_pooling2d_2.png"
            ]
        );
        // (file, tiles across, tiles down, tile side in pixels)
        let layouts =
            [(0, 1, 1, 112), (1, 10, 2, 60), (2, 10, 2, 96), (3, 10, 2, 96), (4, 10, 4, 90), (5, 10, 4, 95)];
        for (n, across, down, side) in layouts {
            let (w, h, pixels) = nn::datasets::image::read_png_gray(&written[n]).unwrap();
            let gap = if n == 0 { 0 } else { 2 };
            let want = (across * (side + gap) + gap, down * (side + gap) + gap);
            assert_eq!((w, h), want, "{}", names[n]);
            let levels: std::collections::HashSet<u8> = pixels.iter().map(|p| p.round() as u8).collect();
            // The input is black and white; filters and maps have many levels.
            let least = if n == 0 { 2 } else { 10 };
            assert!(levels.len() >= least, "{} has {} grey levels: blank?", names[n], levels.len());
        }
    }
}
