//! The two-head model of `examples/two_heads.rs` (image + requested digit in; digit class and
//! "is it the requested digit" out, loss weights 1.0 and 0.2) on a small synthetic data set:
//! both heads must beat chance (10% and 50%) by far on held-out samples.

use nn::functional::Losses;
use nn::{Adam, Array, FitOptions, Loss, Metric};

const CLASSES: usize = 10;
const SIDE: usize = 10;

/// `n` noisy 10x10 images: class `c` is a bright 2x2 block at its own place (two rows of five),
/// on uniform noise in [0, 0.4). Returns (images `[n, 10, 10, 1]`, labels `[n]`).
fn synthetic_digits(n: usize, seed: u32) -> (Array, Array) {
    let noise =
        |i: usize| tensor::random::hash32(i as u32 ^ seed.wrapping_mul(0x85eb_ca6b)) as f32 / u32::MAX as f32;
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for s in 0..n {
        let class = (tensor::random::hash32(s as u32 ^ seed) as usize) % CLASSES;
        let (top, left) = ((class / 5) * 5 + 1, (class % 5) * 2);
        for r in 0..SIDE {
            for c in 0..SIDE {
                let block = (top..top + 2).contains(&r) && (left..left + 2).contains(&c);
                pixels.push(if block { 1.0 } else { 0.4 * noise(pixels.len()) });
            }
        }
        labels.push(class as f32);
    }
    (Array::new(pixels, [n, SIDE, SIDE, 1]).unwrap(), Array::new(labels, [n]).unwrap())
}

#[test]
fn both_heads_beat_chance_by_far() {
    let dev = nn::device::cpu();
    let mut model = nn::zoo::two_heads(&[SIDE, SIDE, 1], CLASSES, &dev, 1).unwrap();
    assert_eq!(model.output_names(), ["digit", "is_requested"]);
    let losses =
        Losses::from([Loss::SparseCategoricalCrossentropy, Loss::BinaryCrossentropy]).weights([1.0, 0.2]);
    model.compile(losses, Adam::new(0.01), &[Metric::Accuracy]).unwrap();

    let (x_train, y_train) = synthetic_digits(600, 1);
    let (request_train, match_train) = nn::zoo::requested_digits(&y_train, CLASSES, 2).unwrap();
    let options = FitOptions::new().epochs(8).batch_size(32).verbose(0);
    model.fit(&[&x_train, &request_train], &[&y_train, &match_train], &options).unwrap();

    let (x_test, y_test) = synthetic_digits(300, 99);
    let (request_test, match_test) = nn::zoo::requested_digits(&y_test, CLASSES, 100).unwrap();
    let positives = match_test.data().iter().filter(|&&m| m == 1.0).count();
    assert!((100..200).contains(&positives), "about half the requests match: {positives}");
    let scores = model.evaluate(&[&x_test, &request_test], &[&y_test, &match_test], 64).unwrap();
    assert!(scores["digit_accuracy"] > 0.9, "{scores:?}");
    assert!(scores["is_requested_accuracy"] > 0.85, "{scores:?}");
    assert!((scores["loss"] - (scores["digit_loss"] + 0.2 * scores["is_requested_loss"])).abs() < 1e-4);
}

#[test]
fn requested_digits_are_the_label_half_the_time_and_never_a_wrong_match() {
    let labels = Array::new((0..1000).map(|i| (i % CLASSES) as f32).collect(), [1000]).unwrap();
    let (requested, matches) = nn::zoo::requested_digits(&labels, CLASSES, 7).unwrap();
    assert_eq!((requested.dims(), matches.dims()), (&[1000, CLASSES][..], &[1000, 1][..]));
    let mut hits = 0;
    for (i, row) in requested.data().chunks(CLASSES).enumerate() {
        assert_eq!(row.iter().sum::<f32>(), 1.0, "one-hot");
        let asked = row.iter().position(|&v| v == 1.0).unwrap();
        let same = asked == i % CLASSES;
        assert_eq!(matches.data()[i], if same { 1.0 } else { 0.0 });
        hits += same as usize;
    }
    assert!((430..570).contains(&hits), "{hits} of 1000 requests match");
}
