use super::*;
use crate::conv2d::conv2d_forward;
use crate::winners::NO_WINNER;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tensor::shape::PoolWindow;
use tensor::{Padding, Shape};

fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn spec(x: [usize; 4], f: [usize; 4], padding: Padding, relu: bool) -> ConvPoolSpec {
    let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
    let spec = ConvPoolSpec::new(&Shape::new(x), &Shape::new(f), (1, 1), padding, window).unwrap();
    if relu {
        spec.with_relu()
    } else {
        spec
    }
}

/// Odd shapes: channels that fill no register (1, 3, 20, 33), 1 to 4 registers of filters,
/// `same` padding, convolution outputs of odd size (a row and a column in no window), the
/// batch not a multiple of the images per chunk.
fn cases() -> Vec<ConvPoolSpec> {
    vec![
        spec([3, 12, 12, 20], [3, 3, 20, 40], Padding::Valid, true),
        spec([5, 9, 11, 3], [3, 3, 3, 7], Padding::Same, false),
        spec([2, 8, 8, 17], [3, 3, 17, 64], Padding::Valid, true),
        spec([6, 7, 7, 1], [3, 3, 1, 5], Padding::Valid, false),
        spec([2, 6, 10, 33], [3, 3, 33, 48], Padding::Same, true),
    ]
}

/// The convolution output's value at window `(image, window)`, element `k` (scan order),
/// channel `c`.
fn element(y: &[f32], spec: &ConvPoolSpec, image: usize, window: usize, k: usize, c: usize) -> f32 {
    let (conv, pool) = (&spec.conv, &spec.pool);
    let (oy, ox) = (2 * (window / pool.out_w) + k / 2, 2 * (window % pool.out_w) + k % 2);
    y[((image * conv.out_h + oy) * conv.out_w + ox) * conv.out_c + c]
}

/// Pooled values equal the direct convolution's, max-pooled (and ReLU'd), to rounding, and
/// each winner is an element that holds the maximum to that rounding (the first in scan
/// order unless two tie within it); a ReLU-cut window has no winner.
#[test]
fn forward_matches_the_direct_convolution_and_pooling() {
    if !crate::isa::features().avx512f {
        return;
    }
    let mut rng = StdRng::seed_from_u64(51);
    for spec in cases() {
        assert!(WinogradPool::takes(&spec), "a 3x3 convolution pooled 2x2");
        let kernel = WinogradPool::new(&spec);
        let conv = &spec.conv;
        let x = random(conv.input_shape().numel(), &mut rng);
        let w = random(conv.filter_shape().numel(), &mut rng);
        let b = random(conv.out_c, &mut rng);
        let y = conv2d_forward(&x, &w, Some(&b), conv);
        let (pooled, winners) = kernel.forward(&x, &w, Some(&b));
        let windows = spec.pool.out_h * spec.pool.out_w;
        assert_eq!(pooled.len(), conv.batch * windows * conv.out_c);
        let tolerance = |v: f32| 1e-5 * (1.0 + v.abs()) * conv.in_c as f32;
        for (i, (&got, &won)) in pooled.iter().zip(&winners).enumerate() {
            let (image, window, c) = (i / (windows * conv.out_c), i / conv.out_c % windows, i % conv.out_c);
            let max = (0..4).map(|k| element(&y, &spec, image, window, k, c)).fold(f32::MIN, f32::max);
            let want = if spec.relu { max.max(0.0) } else { max };
            let case = format!("{:?} -> {} [{i}]", conv.input_shape(), conv.out_c);
            assert!((got - want).abs() <= tolerance(want), "{case}: pooled {got}, want {want}");
            if spec.relu && got == 0.0 {
                assert_eq!(won, NO_WINNER, "{case}: a cut window has no winner");
                assert!(max <= tolerance(0.0), "{case}: cut a window of maximum {max}");
            } else {
                assert!([0.0, 1.0, 2.0, 3.0].contains(&won), "{case}: winner {won}");
                let at_winner = element(&y, &spec, image, window, won as usize, c);
                assert!(max - at_winner <= tolerance(max), "{case}: winner holds {at_winner} of {max}");
            }
        }
    }
}

#[test]
fn only_3x3_stride_1_convolutions_pooled_2x2_are_taken() {
    let window = |size| PoolWindow { size, strides: size, padding: Padding::Valid };
    let take = |x: [usize; 4], f: [usize; 4], stride, pool| {
        let spec =
            ConvPoolSpec::new(&Shape::new(x), &Shape::new(f), stride, Padding::Valid, window(pool)).unwrap();
        WinogradPool::takes(&spec)
    };
    assert!(take([1, 12, 12, 20], [3, 3, 20, 40], (1, 1), (2, 2)));
    assert!(!take([1, 28, 28, 1], [5, 5, 1, 20], (1, 1), (2, 2)), "5x5");
    assert!(!take([1, 13, 13, 4], [3, 3, 4, 8], (2, 2), (2, 2)), "stride 2");
    assert!(!take([1, 12, 12, 4], [3, 3, 4, 8], (1, 1), (3, 3)), "3x3 windows");
    assert!(!take([1, 12, 12, 4], [3, 3, 4, 65], (1, 1), (2, 2)), "65 filters");
}
