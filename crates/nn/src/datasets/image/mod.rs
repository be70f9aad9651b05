//! A user's own picture of a digit, made to look like an MNIST digit: grey, white strokes on
//! black (inverted if its background, its most common grey, is light), the digit's bounding
//! box scaled (by area averaging, keeping the aspect) to fit 20x20 and placed in a 28x28 image
//! with its centre of mass in the middle, as MNIST's were.
//!
//! ```no_run
//! let digit = nn::datasets::image::mnist_digit("my-seven.png")?; // [1, 28, 28, 1], 0-255
//! # Ok::<(), nn::Error>(())
//! ```

use std::io::BufReader;
use std::path::Path;

use crate::array::Array;
use crate::error::{Error, Result};

/// MNIST's image side, and the box its digits were scaled to fit.
const SIDE: usize = 28;
const DIGIT_BOX: f32 = 20.0;

/// The PNG at `path` as one MNIST-like digit: `[1, 28, 28, 1]`, values 0-255, white on black
/// (see [the module](self)). Divide by 255 for a model trained on normalized pixels.
pub fn mnist_digit(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    let (width, height, grey) = read_png_gray(path)?;
    let digit = to_mnist(&grey, width, height).map_err(|e| match e {
        Error::Data(message) => Error::Input { path: path.to_path_buf(), message },
        other => other,
    })?;
    Array::new(digit, [1, SIDE, SIDE, 1])
}

/// Reads a PNG of any colour type as grey values 0-255 (transparent pixels count as white
/// paper): `(width, height, values)`.
pub fn read_png_gray(path: impl AsRef<Path>) -> Result<(usize, usize, Vec<f32>)> {
    let path = path.as_ref();
    let fail = |e: &dyn std::fmt::Display| Error::Input {
        path: path.to_path_buf(),
        message: format!("not a readable PNG: {e}"),
    };
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| fail(&e))?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or_else(|| fail(&"image too large"))?];
    let info = reader.next_frame(&mut buf).map_err(|e| fail(&e))?;
    let bytes = &buf[..info.buffer_size()];
    let luma = |p: &[u8]| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
    let over_white = |v: f32, alpha: u8| {
        let a = f32::from(alpha) / 255.0;
        v * a + 255.0 * (1.0 - a)
    };
    let grey: Vec<f32> = match info.color_type {
        png::ColorType::Grayscale => bytes.iter().map(|&v| f32::from(v)).collect(),
        png::ColorType::GrayscaleAlpha => {
            bytes.chunks(2).map(|p| over_white(f32::from(p[0]), p[1])).collect()
        }
        png::ColorType::Rgb => bytes.chunks(3).map(luma).collect(),
        png::ColorType::Rgba => bytes.chunks(4).map(|p| over_white(luma(p), p[3])).collect(),
        other => return Err(fail(&format!("unsupported colour type {other:?}"))),
    };
    Ok((info.width as usize, info.height as usize, grey))
}

/// Turns a grey picture of one digit into MNIST's form: 784 values 0-255, white on black.
pub fn to_mnist(grey: &[f32], width: usize, height: usize) -> Result<Vec<f32>> {
    if width == 0 || height == 0 || grey.len() != width * height {
        return Err(Error::Data(format!("a {width}x{height} image cannot have {} pixels", grey.len())));
    }
    // The most common grey is the background: light paper means dark ink, which MNIST stores
    // inverted.
    let mut counts = [0usize; 256];
    for &v in grey {
        counts[v.round().clamp(0.0, 255.0) as usize] += 1;
    }
    let background = (0..256).max_by_key(|&v| counts[v]).unwrap_or(0) as f32;
    let light = background > 127.5;
    let ink: Vec<f32> = grey
        .iter()
        .map(|&v| if light { (background - v).max(0.0) } else { (v - background).max(0.0) })
        .collect();
    let peak = ink.iter().copied().fold(0.0, f32::max);
    if peak < 32.0 {
        return Err(Error::Data("the image looks blank (no stroke differs from the background)".into()));
    }
    let ink: Vec<f32> = ink.iter().map(|v| v * 255.0 / peak).collect();
    // Bounding box of the strokes (faint noise below 10% left out).
    let strokes = |i: &usize| ink[*i] > 25.5;
    let xs = (0..ink.len()).filter(strokes).map(|i| i % width);
    let ys = (0..ink.len()).filter(strokes).map(|i| i / width);
    let (x0, x1) = xs.fold((usize::MAX, 0), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (y0, y1) = ys.fold((usize::MAX, 0), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop: Vec<f32> =
        (y0..=y1).flat_map(|y| ink[y * width + x0..=y * width + x1].iter().copied()).collect();
    let fit = DIGIT_BOX / bw.max(bh) as f32;
    let (dw, dh) = (((bw as f32 * fit).round() as usize).max(1), ((bh as f32 * fit).round() as usize).max(1));
    let digit = resize_area(&crop, bw, bh, dw, dh);
    // Centre of mass to the image's centre, the digit kept whole.
    let mass: f32 = digit.iter().sum();
    let cx = digit.iter().enumerate().map(|(i, v)| (i % dw) as f32 * v).sum::<f32>() / mass;
    let cy = digit.iter().enumerate().map(|(i, v)| (i / dw) as f32 * v).sum::<f32>() / mass;
    let centre = (SIDE as f32 - 1.0) / 2.0;
    let ox = ((centre - cx).round() as isize).clamp(0, (SIDE - dw) as isize) as usize;
    let oy = ((centre - cy).round() as isize).clamp(0, (SIDE - dh) as isize) as usize;
    let mut out = vec![0.0; SIDE * SIDE];
    for (i, v) in digit.iter().enumerate() {
        out[(oy + i / dw) * SIDE + ox + i % dw] = *v;
    }
    Ok(out)
}

/// Resamples `src` (`sw` x `sh`) to `dw` x `dh`: each output pixel is the mean of the source
/// area it covers (partly covered pixels weighted by their covered fraction).
pub fn resize_area(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let rows: Vec<f32> = (0..sh).flat_map(|y| resample(&src[y * sw..(y + 1) * sw], dw)).collect();
    let mut out = vec![0.0; dw * dh];
    for x in 0..dw {
        let column: Vec<f32> = (0..sh).map(|y| rows[y * dw + x]).collect();
        for (y, v) in resample(&column, dh).into_iter().enumerate() {
            out[y * dw + x] = v;
        }
    }
    out
}

/// One line of [`resize_area`].
fn resample(line: &[f32], len: usize) -> Vec<f32> {
    let step = line.len() as f64 / len as f64;
    (0..len)
        .map(|i| {
            let (start, end) = (i as f64 * step, (i + 1) as f64 * step);
            let mut sum = 0.0;
            let mut p = start.floor() as usize;
            while (p as f64) < end && p < line.len() {
                let covered = (end.min(p as f64 + 1.0) - start.max(p as f64)).max(0.0);
                sum += f64::from(line[p]) * covered;
                p += 1;
            }
            (sum / step) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests;
