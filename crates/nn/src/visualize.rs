//! Pictures of what a network learned: a convolution's filters and the feature maps an image
//! produces after each layer, laid out as grids of grey tiles and saved as PNG.
//!
//! Each tile is normalised on its own (its minimum black, its maximum white) and enlarged
//! with nearest-neighbour sampling, so a 5x5 filter or a 4x4 map is visible.

use std::io::BufWriter;
use std::path::Path;

use tensor::no_grad;

use crate::array::Array;
use crate::error::{Error, Result};
use crate::model::symbolic::Op;
use crate::model::{Model, Sequential};
use crate::training::Arrays;

/// A 2-D picture of `f32` values, row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `height * width` values.
    pub values: Vec<f32>,
}

/// An 8-bit grey image, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `height * width` bytes.
    pub pixels: Vec<u8>,
}

/// Grey of the gaps between tiles, so black tile borders stay visible.
const GAP_GREY: u8 = 128;

impl Tile {
    /// One channel of an image or feature map `[height, width, channels]` (a batch axis of 1
    /// in front is allowed).
    pub fn channels(map: &Array) -> Result<Vec<Tile>> {
        let dims = match map.dims() {
            [1, h, w, c] | [h, w, c] => [*h, *w, *c],
            other => {
                return Err(Error::Data(format!(
                    "a feature map has shape [height, width, channels], not {other:?}"
                )))
            }
        };
        let [h, w, c] = dims;
        Ok((0..c)
            .map(|ch| Tile {
                width: w,
                height: h,
                values: (0..h * w).map(|p| map.data()[p * c + ch]).collect(),
            })
            .collect())
    }

    /// The filters of a convolution kernel in Keras' layout `[kh, kw, in, out]`: one tile per
    /// (output, input) channel pair, output-major.
    pub fn filters(kernel: &Array) -> Result<Vec<Tile>> {
        let &[kh, kw, cin, cout] = kernel.dims() else {
            return Err(Error::Data(format!(
                "a convolution kernel has shape [height, width, in, out], not {:?}",
                kernel.dims()
            )));
        };
        let at = |y: usize, x: usize, i: usize, o: usize| kernel.data()[((y * kw + x) * cin + i) * cout + o];
        Ok((0..cout)
            .flat_map(|o| (0..cin).map(move |i| (o, i)))
            .map(|(o, i)| Tile {
                width: kw,
                height: kh,
                values: (0..kh * kw).map(|p| at(p / kw, p % kw, i, o)).collect(),
            })
            .collect())
    }

    /// The tile as bytes, its minimum at 0 and maximum at 255 (a constant tile is black).
    pub fn normalised(&self) -> Vec<u8> {
        let (lo, hi) =
            self.values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let range = hi - lo;
        self.values
            .iter()
            .map(
                |&v| {
                    if range > 0.0 && range.is_finite() {
                        ((v - lo) / range * 255.0).round() as u8
                    } else {
                        0
                    }
                },
            )
            .collect()
    }
}

/// Lays `tiles` out `columns` to a row, each normalised and enlarged `scale` times, with
/// `gap` grey pixels between and around them. Tiles of different sizes get cells of the
/// largest size, each tile at its cell's top left.
pub fn grid(tiles: &[Tile], columns: usize, scale: usize, gap: usize) -> Result<GrayImage> {
    if tiles.is_empty() || columns == 0 || scale == 0 {
        return Err(Error::Data(format!(
            "an image grid needs tiles, columns and a scale (got {} tiles, {columns} columns, scale {scale})",
            tiles.len()
        )));
    }
    let cell_w = tiles.iter().map(|t| t.width).max().unwrap_or(0) * scale;
    let cell_h = tiles.iter().map(|t| t.height).max().unwrap_or(0) * scale;
    let columns = columns.min(tiles.len());
    let rows = tiles.len().div_ceil(columns);
    let width = columns * (cell_w + gap) + gap;
    let height = rows * (cell_h + gap) + gap;
    let mut pixels = vec![GAP_GREY; width * height];
    for (n, tile) in tiles.iter().enumerate() {
        let bytes = tile.normalised();
        let (x0, y0) = (gap + (n % columns) * (cell_w + gap), gap + (n / columns) * (cell_h + gap));
        for y in 0..tile.height * scale {
            for x in 0..tile.width * scale {
                pixels[(y0 + y) * width + x0 + x] = bytes[(y / scale) * tile.width + x / scale];
            }
        }
    }
    Ok(GrayImage { width, height, pixels })
}

impl GrayImage {
    /// Saves the image as an 8-bit grey PNG.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        save_png(
            path.as_ref(),
            self.width as u32,
            self.height as u32,
            png::ColorType::Grayscale,
            &self.pixels,
        )
    }
}

/// Writes 8-bit pixels (`colour` says how many bytes each has) as a PNG.
pub(crate) fn save_png(
    path: &Path,
    width: u32,
    height: u32,
    colour: png::ColorType,
    pixels: &[u8],
) -> Result<()> {
    let fail = |message: String| Error::Output { path: path.to_path_buf(), message };
    let file = std::fs::File::create(path).map_err(|e| fail(e.to_string()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| fail(e.to_string()))?;
    writer.write_image_data(pixels).map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))
}

/// What each layer of a model outputs for one input.
#[derive(Clone, Debug)]
pub struct LayerOutput {
    /// The layer's name, e.g. `conv2d_1`.
    pub name: String,
    /// Its Keras class, e.g. `Conv2D`.
    pub class_name: &'static str,
    /// Its output, with the batch axis.
    pub output: Array,
}

impl Model {
    /// Runs `x` (a batch of each input) through the model in inference mode and returns every
    /// layer's output, in graph order, inputs left out (Keras' "feature extractor" over all
    /// layers). No chain of layers is fused here, so every layer's own output is there.
    pub fn layer_outputs<'x>(&self, x: impl Into<Arrays<'x>>) -> Result<Vec<LayerOutput>> {
        let x = x.into();
        self.check_inputs(x.as_slice(), "layer_outputs")?;
        no_grad(|| {
            let inputs =
                x.as_slice().iter().map(|a| a.to_tensor(&self.device)).collect::<Result<Vec<_>>>()?;
            let values = self.graph.run_all(&inputs)?;
            values
                .iter()
                .map(|(id, value)| {
                    let node =
                        self.graph.nodes.iter().find(|n| n.node.id == *id).expect("a node of the graph");
                    Ok(LayerOutput {
                        name: self.graph.name_of(node).to_string(),
                        class_name: node.node.op.class_name(),
                        output: Array::from_tensor(value)?,
                    })
                })
                .collect()
        })
    }

    /// The kernel (first variable, Keras layout) of the first layer of class `class_name`
    /// (e.g. `"Conv2D"`), with its name.
    pub fn first_kernel(&self, class_name: &str) -> Result<(String, Array)> {
        let layer = self
            .graph
            .layers
            .iter()
            .find(|l| l.op.class_name() == class_name)
            .ok_or_else(|| Error::Build(format!("the model has no {class_name} layer")))?;
        let Op::Layer(cell) = &layer.op else {
            return Err(Error::Build(format!("layer {} ({class_name}) has no weights", layer.name)));
        };
        let kernel = cell.lock().layer.params().first().copied().cloned().ok_or_else(|| {
            Error::Build(format!(
                "layer {} ({class_name}) has no weights yet: build the model first",
                layer.name
            ))
        })?;
        Ok((layer.name.clone(), Array::from_tensor(&kernel)?))
    }
}

impl Sequential {
    /// Every layer's output for `x` (see [`Model::layer_outputs`]), building the model from
    /// `x` if needed.
    pub fn layer_outputs(&mut self, x: &Array) -> Result<Vec<LayerOutput>> {
        self.build(&x.dims()[1..])?;
        self.model()?.layer_outputs(x)
    }

    /// See [`Model::first_kernel`].
    pub fn first_kernel(&self, class_name: &str) -> Result<(String, Array)> {
        self.model()?.first_kernel(class_name)
    }
}

#[cfg(test)]
mod tests;
