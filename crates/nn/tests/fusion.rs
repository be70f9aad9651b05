//! `Conv2D(relu)` followed by `MaxPooling2D` runs as one fused convolution + pooling, then the
//! ReLU; that must change nothing a user can see: predictions and trained weights equal those
//! of the unfused layer chain to rounding (exactly where the fused forward runs the same
//! convolution kernel; a 3x3 layer with several input channels may run Winograd's algorithm,
//! and the fused backward pass adds the same products in another order).

use nn::layers::{ActivationLayer, Conv2D, Dense, Flatten, MaxPooling2D};
use nn::{Activation, Array, FitOptions, Loss, Metric, Sequential, Sgd};

fn model(fused: bool) -> Sequential {
    let mut m = Sequential::with_device(&nn::device::cpu()).seed(5);
    if fused {
        m.add(Conv2D::new(6, (3, 3)).activation(Activation::Relu).input_shape([9, 9, 2])).unwrap();
    } else {
        m.add(Conv2D::new(6, (3, 3)).input_shape([9, 9, 2])).unwrap();
        m.add(ActivationLayer::new(Activation::Relu)).unwrap();
    }
    m.add(MaxPooling2D::new()).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
    m.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    m
}

#[test]
fn fused_conv_relu_max_pool_matches_the_layer_chain() {
    let n = 10;
    // Half the inputs negative, so many windows are all-negative (ReLU gradient 0 there).
    let x: Vec<f32> = (0..n * 9 * 9 * 2).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    let x = Array::new(x, [n, 9, 9, 2]).unwrap();
    let labels = Array::new((0..n).map(|i| (i % 3) as f32).collect(), [n]).unwrap();
    let y = nn::to_categorical(&labels, 3).unwrap();
    let (mut fused, mut plain) = (model(true), model(false));
    let (fused_p, plain_p) =
        (fused.predict(&x, 4).unwrap().remove(0), plain.predict(&x, 4).unwrap().remove(0));
    assert_eq!(fused_p.data().len(), plain_p.data().len());
    for (&f, &p) in fused_p.data().iter().zip(plain_p.data()) {
        assert!((f - p).abs() <= 1e-5 * (1.0 + p.abs()), "prediction {f} vs {p}");
    }
    let options = FitOptions::new().epochs(3).batch_size(4).verbose(0).seed(1);
    fused.fit(&x, &y, &options).unwrap();
    plain.fit(&x, &y, &options).unwrap();
    let weights = |m: &Sequential| -> Vec<Vec<f32>> {
        m.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect()
    };
    let (a, b) = (weights(&fused), weights(&plain));
    assert_ne!(a[0], model(true).trainable_variables()[0].to_vec().unwrap(), "training moved the kernel");
    for (fused, plain) in a.iter().zip(&b) {
        for (&f, &p) in fused.iter().zip(plain) {
            assert!((f - p).abs() <= 1e-5 * (1.0 + p.abs()), "trained weight {f} vs {p}");
        }
    }
}
