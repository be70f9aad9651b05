use std::collections::HashSet;

use super::*;

#[test]
fn tiles_are_normalised_per_tile() {
    let t = Tile { width: 2, height: 2, values: vec![-1.0, 0.0, 1.0, 2.0] };
    assert_eq!(t.normalised(), vec![0, 85, 170, 255]);
    let flat = Tile { width: 1, height: 2, values: vec![3.0, 3.0] };
    assert_eq!(flat.normalised(), vec![0, 0]);
}

#[test]
fn filters_and_channels_follow_keras_layouts() {
    // kernel [kh=2, kw=1, in=1, out=2]: value = 10 * row + out.
    let kernel = Array::new(vec![0.0, 1.0, 10.0, 11.0], [2, 1, 1, 2]).unwrap();
    let tiles = Tile::filters(&kernel).unwrap();
    assert_eq!(
        tiles,
        vec![
            Tile { width: 1, height: 2, values: vec![0.0, 10.0] },
            Tile { width: 1, height: 2, values: vec![1.0, 11.0] },
        ]
    );
    // map [1, h=1, w=2, c=2]
    let map = Array::new(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]).unwrap();
    let tiles = Tile::channels(&map).unwrap();
    assert_eq!(tiles[0].values, vec![1.0, 3.0]);
    assert_eq!(tiles[1].values, vec![2.0, 4.0]);
    assert!(Tile::filters(&map.clone().reshape([4]).unwrap()).is_err());
    assert!(Tile::channels(&map.reshape([4]).unwrap()).is_err());
}

#[test]
fn grid_places_enlarged_tiles_between_gaps() {
    let tile = |v: f32| Tile { width: 2, height: 1, values: vec![0.0, v] };
    let image = grid(&[tile(1.0), tile(2.0), tile(3.0)], 2, 3, 1).unwrap();
    // 2 columns of 6 px + 3 gaps; 2 rows of 3 px + 3 gaps.
    assert_eq!((image.width, image.height), (15, 9));
    let row = |y: usize| &image.pixels[y * 15..(y + 1) * 15];
    assert_eq!(row(0), &[GAP_GREY; 15]);
    assert_eq!(row(1), &[128, 0, 0, 0, 255, 255, 255, 128, 0, 0, 0, 255, 255, 255, 128]);
    assert_eq!(row(3), row(1));
    assert_eq!(row(5), &[128, 0, 0, 0, 255, 255, 255, 128, 128, 128, 128, 128, 128, 128, 128]);
    assert!(grid(&[], 2, 3, 1).is_err());
}

#[test]
fn model5_filter_and_feature_map_pngs_decode() {
    let mut model = crate::zoo::model5(&crate::device::cpu(), 5).unwrap();
    let (name, kernel) = model.first_kernel("Conv2D").unwrap();
    assert_eq!((name.as_str(), kernel.dims()), ("conv2d_1", &[5, 5, 1, 20][..]));
    let image: Vec<f32> = (0..784).map(|p| if (p / 28 + p % 28) % 7 < 3 { 255.0 } else { 0.0 }).collect();
    let x = Array::new(image, [1, 28, 28, 1]).unwrap();
    let outputs = model.layer_outputs(&x).unwrap();
    let shapes: Vec<(&str, &[usize])> = outputs.iter().map(|o| (o.class_name, o.output.dims())).collect();
    assert_eq!(
        shapes,
        vec![
            ("Conv2D", &[1, 24, 24, 20][..]),
            ("MaxPooling2D", &[1, 12, 12, 20][..]),
            ("Conv2D", &[1, 10, 10, 40][..]),
            ("MaxPooling2D", &[1, 5, 5, 40][..]),
            ("Flatten", &[1, 1000][..]),
            ("Dense", &[1, 100][..]),
            ("Dense", &[1, 10][..]),
        ]
    );
    // The last layer's output is what predict() gives (which fuses ReLU and pooling, and on
    // CPUs with AVX-512 runs the second convolution by Winograd's algorithm: equal to
    // rounding).
    let predicted = model.predict(&x, 1).unwrap().remove(0);
    let (layered, fused) = (outputs[6].output.data(), predicted.data());
    assert_eq!(layered.len(), fused.len());
    for (i, (&a, &b)) in layered.iter().zip(fused).enumerate() {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "probability {i}: layer by layer {a}, predict {b}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("filters.png");
    let filters = grid(&Tile::filters(&kernel).unwrap(), 10, 8, 2).unwrap();
    filters.save_png(&path).unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height, info.color_type),
        (10 * 42 + 2, 2 * 42 + 2, png::ColorType::Grayscale)
    );
    assert_eq!(&buf[..info.buffer_size()], &filters.pixels[..]);
    let greys: HashSet<u8> = filters.pixels.iter().copied().collect();
    assert!(greys.len() > 50, "{} grey levels: random filters should use many", greys.len());
}
