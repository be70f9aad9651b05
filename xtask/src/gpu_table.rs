//! `cargo xtask gpu-table`: the lecture's CPU-vs-GPU table on this machine: model5's epoch
//! time and total time on 50,000 and 250,000 training images, on each backend.
//!
//! The larger set is MNIST's 60,000 training images followed by copies shifted by one or two
//! pixels (a fixed list of shifts, so every run trains on the same images).

use std::time::Instant;

use nn::{Array, DeviceKind, FitOptions};

use crate::args::Args;
use crate::data;

/// Shifts (dx, dy) of the successive copies of the training set.
const SHIFTS: [(isize, isize); 12] = [
    (1, 0),
    (0, 1),
    (-1, 0),
    (0, -1),
    (2, 1),
    (-1, 2),
    (-2, -1),
    (1, -2),
    (1, 1),
    (-1, -1),
    (2, -2),
    (-2, 2),
];

pub fn gpu_table(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["epochs", "sizes", "backends", "batch-size", "data", "seed"], &[])?;
    let epochs: usize = args.get("epochs", 1)?;
    let batch_size: usize = args.get("batch-size", 128)?;
    let seed: u64 = args.get("seed", 1)?;
    let sizes: Vec<usize> = args.list("sizes", "50000,250000")?;
    if sizes.contains(&0) || epochs == 0 {
        return Err("--sizes and --epochs must be positive".into());
    }
    let backends: Vec<DeviceKind> = args.list("backends", "cpu,wgpu")?;
    let mnist = data::load(
        args.value("data"),
        nn::datasets::DatasetKind::Mnist,
        nn::zoo::input_shape("model5"),
        false,
    )?;
    let largest = *sizes.iter().max().expect("at least one size");
    let (x_all, y_all) = augmented(&mnist.x_train, &mnist.y_train, largest)?;

    let mut rows = Vec::new();
    for kind in &backends {
        let device = match nn::device::select(*kind) {
            Ok(device) => device,
            // A missing backend is reported, never skipped silently; in CI it fails the run.
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                return Err(format!("backend {kind:?} is not available: {e}"));
            }
            Err(e) => {
                eprintln!("warning: backend {kind:?} is not available: {e}");
                rows.push(format!("| {kind:?} | not available: {e} | | | |"));
                continue;
            }
        };
        for &size in &sizes {
            println!("{} on {size} images, {epochs} epoch(s):", device.name());
            let mut model = data::lecture_model("model5", &device, seed)?;
            let fit = FitOptions::new().epochs(epochs).batch_size(batch_size).verbose(2).seed(seed);
            let start = Instant::now();
            let history =
                model.fit(&x_all.slice(0, size), &y_all.slice(0, size), &fit).map_err(|e| e.to_string())?;
            let total = start.elapsed().as_secs_f64();
            let epoch = history.epoch_seconds.iter().sum::<f64>() / history.epoch_seconds.len() as f64;
            rows.push(format!(
                "| {} | {} | {size} | {epoch:.1} s | {total:.1} s |",
                format!("{kind:?}").to_lowercase(),
                device.name()
            ));
        }
    }
    println!(
        "\nmodel5, SGD lr 0.01, batch {batch_size}, {epochs} epoch(s); total includes the upload of the data"
    );
    println!("| backend | device | training images | time per epoch | total time |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// The first `size` images of MNIST's training set followed by its shifted copies (see
/// [`SHIFTS`]), with their labels.
pub fn augmented(x: &Array, y: &Array, size: usize) -> Result<(Array, Array), String> {
    let n = x.len();
    let copies = size.div_ceil(n);
    if copies > SHIFTS.len() + 1 {
        return Err(format!(
            "at most {} training images ({} shifted copies of {n})",
            n * (SHIFTS.len() + 1),
            SHIFTS.len()
        ));
    }
    let (image, label) = (x.sample_len(), y.sample_len());
    let mut xs = Vec::with_capacity(size * image);
    let mut ys = Vec::with_capacity(size * label);
    for i in 0..size {
        let (copy, sample) = (i / n, i % n);
        let pixels = &x.data()[sample * image..(sample + 1) * image];
        match copy {
            0 => xs.extend_from_slice(pixels),
            k => xs.extend(shift(pixels, SHIFTS[k - 1])),
        }
        ys.extend_from_slice(&y.data()[sample * label..(sample + 1) * label]);
    }
    let dims = |d: &[usize]| -> Vec<usize> { std::iter::once(size).chain(d[1..].iter().copied()).collect() };
    let x = Array::new(xs, dims(x.dims())).map_err(|e| e.to_string())?;
    let y = Array::new(ys, dims(y.dims())).map_err(|e| e.to_string())?;
    Ok((x, y))
}

/// A 28x28 image moved `dx` pixels right and `dy` down, the uncovered edge black.
fn shift(pixels: &[f32], (dx, dy): (isize, isize)) -> Vec<f32> {
    const SIDE: isize = 28;
    (0..SIDE * SIDE)
        .map(|i| {
            let (sx, sy) = (i % SIDE - dx, i / SIDE - dy);
            if (0..SIDE).contains(&sx) && (0..SIDE).contains(&sy) {
                pixels[(sy * SIDE + sx) as usize]
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_copies_follow_the_originals() {
        let image = |k: usize| (0..784).map(|p| ((p * 7 + k) % 256) as f32).collect::<Vec<f32>>();
        let x = Array::new((0..3).flat_map(image).collect(), [3, 28, 28, 1]).unwrap();
        let y = Array::new(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0], [3, 2]).unwrap();
        let (ax, ay) = augmented(&x, &y, 8).unwrap();
        assert_eq!((ax.dims(), ay.dims()), (&[8, 28, 28, 1][..], &[8, 2][..]));
        assert_eq!(&ax.data()[..3 * 784], x.data(), "the originals come first");
        // Image 4 is sample 1 moved one pixel right (SHIFTS[0]).
        let moved = &ax.data()[4 * 784..5 * 784];
        let original = image(1);
        for row in 0..28 {
            assert_eq!(moved[row * 28], 0.0);
            assert_eq!(&moved[row * 28 + 1..row * 28 + 28], &original[row * 28..row * 28 + 27]);
        }
        // Image 7 is sample 1 moved one pixel down (SHIFTS[1]).
        assert_eq!(&ax.data()[7 * 784..7 * 784 + 28], &[0.0; 28]);
        assert_eq!(&ax.data()[7 * 784 + 28..8 * 784], &original[..784 - 28]);
        assert_eq!(&ay.data()[6..12], y.data(), "labels follow their images");
        assert_eq!(&ay.data()[14..16], &[0.0, 1.0]);
        assert!(augmented(&x, &y, 3 * 14).unwrap_err().contains("at most 39"));
    }
}
