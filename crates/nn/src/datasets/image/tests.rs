use super::*;
use std::path::Path;

/// A "7" drawn with thick strokes in a `w` x `h` picture: `ink(x, y)` is 1 on a stroke.
fn seven(w: usize, h: usize) -> impl Fn(usize, usize) -> bool {
    move |x: usize, y: usize| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let top_bar = (0.2..0.3).contains(&fy) && (0.25..0.75).contains(&fx);
        // The diagonal from the bar's right end down to the bottom left.
        let t = (fy - 0.2) / 0.6;
        let diagonal = (0.2..0.8).contains(&fy) && (fx - (0.75 - 0.3 * t)).abs() < 0.06;
        top_bar || diagonal
    }
}

fn write_png(path: &Path, w: usize, h: usize, colour: png::ColorType, bytes: &[u8]) {
    crate::visualize::save_png(path, w as u32, h as u32, colour, bytes).unwrap();
}

#[test]
fn resize_area_averages_covered_pixels() {
    assert_eq!(resize_area(&[0.0, 2.0, 4.0, 6.0, 2.0, 4.0, 6.0, 8.0], 4, 2, 2, 1), vec![2.0, 6.0]);
    // 3 -> 2: each output covers 1.5 inputs.
    assert_eq!(resize_area(&[0.0, 3.0, 6.0], 3, 1, 2, 1), vec![1.0, 5.0]);
    // 1 -> 3 repeats.
    assert_eq!(resize_area(&[7.0], 1, 1, 3, 1), vec![7.0; 3]);
}

#[test]
fn dark_on_light_rgb_and_light_on_dark_grey_give_the_same_mnist_digit() {
    let (w, h) = (90, 120);
    let ink = seven(w, h);
    let dir = tempfile::tempdir().unwrap();
    let paper = dir.path().join("paper.png");
    let rgb: Vec<u8> =
        (0..w * h).flat_map(|i| if ink(i % w, i / w) { [20, 20, 20] } else { [255, 255, 255] }).collect();
    write_png(&paper, w, h, png::ColorType::Rgb, &rgb);
    let screen = dir.path().join("screen.png");
    let grey: Vec<u8> = (0..w * h).map(|i| if ink(i % w, i / w) { 235 } else { 0 }).collect();
    write_png(&screen, w, h, png::ColorType::Grayscale, &grey);
    let transparent = dir.path().join("transparent.png");
    let rgba: Vec<u8> =
        (0..w * h).flat_map(|i| if ink(i % w, i / w) { [20, 20, 20, 255] } else { [0, 0, 0, 0] }).collect();
    write_png(&transparent, w, h, png::ColorType::Rgba, &rgba);

    let digits: Vec<Vec<f32>> = [&paper, &screen, &transparent]
        .iter()
        .map(|p| {
            let (w, h, g) = read_png_gray(p).unwrap();
            to_mnist(&g, w, h).unwrap()
        })
        .collect();
    for d in &digits[1..] {
        let diff = d.iter().zip(&digits[0]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 0.01, "same digit, different picture: max difference {diff}");
    }
    let digit = &digits[0];
    assert_eq!(digit.len(), 784);
    assert_eq!(digit.iter().copied().fold(0.0, f32::max), 255.0);
    // Background black, the digit's longer side (height) 20 px, its mass centred.
    let rows: Vec<usize> = (0..28).filter(|y| digit[y * 28..(y + 1) * 28].iter().any(|&v| v > 0.0)).collect();
    assert_eq!(rows.len(), 20, "rows with ink: {rows:?}");
    let mass: f32 = digit.iter().sum();
    let cx = digit.iter().enumerate().map(|(i, v)| (i % 28) as f32 * v).sum::<f32>() / mass;
    let cy = digit.iter().enumerate().map(|(i, v)| (i / 28) as f32 * v).sum::<f32>() / mass;
    assert!((cx - 13.5).abs() <= 0.5 && (cy - 13.5).abs() <= 0.5, "centre of mass ({cx}, {cy})");
    // The top bar is ink, the bottom-right corner below it is not.
    assert!(digit[rows[1] * 28 + 14] > 200.0);
    assert_eq!(digit[(rows[19]) * 28 + 20], 0.0);
}

#[test]
fn blank_and_broken_images_are_errors() {
    let err = to_mnist(&[255.0; 100], 10, 10).unwrap_err().to_string();
    assert!(err.contains("blank"), "{err}");
    assert!(to_mnist(&[0.0; 3], 2, 2).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not.png");
    std::fs::write(&path, b"not a png").unwrap();
    let err = read_png_gray(&path).unwrap_err();
    assert!(matches!(&err, Error::Input { path: p, .. } if p == &path), "{err:?}");
    assert!(err.to_string().contains("not.png"), "{err}");
    let err = mnist_digit(&path).unwrap_err().to_string();
    assert!(err.contains("not.png"), "{err}");
}
