//! Shared by the training tests: a small synthetic image data set and a small convolutional
//! network big enough that every CPU kernel it uses runs on several rayon threads.

#![allow(dead_code)] // each test file uses a part

use nn::layers::{Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use nn::{Activation, Array, Sequential};

/// Side of the square images.
pub const SIDE: usize = 14;
/// Number of classes.
pub const CLASSES: usize = 4;

/// `n` images of `SIDE x SIDE x 1` pixels and their class indices (`[n, 1]`): each class
/// brightens one quadrant, plus pseudo-random noise from a fixed hash (no RNG crate state, so
/// the data never changes between runs or platforms).
pub fn images(n: usize) -> (Array, Array) {
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % CLASSES;
        for p in 0..SIDE * SIDE {
            let (row, col) = (p / SIDE, p % SIDE);
            let quadrant = (row >= SIDE / 2) as usize * 2 + (col >= SIDE / 2) as usize;
            let noise = (hash((i * SIDE * SIDE + p) as u64) % 1000) as f32 / 1000.0;
            pixels.push(if quadrant == class { 0.6 + 0.4 * noise } else { 0.5 * noise });
        }
        labels.push(class as f32);
    }
    (Array::new(pixels, [n, SIDE, SIDE, 1]).unwrap(), Array::new(labels, [n, 1]).unwrap())
}

fn hash(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// conv(16, 3x3) - max pool - conv(32, 3x3) - flatten - dropout - dense(64) - dense(CLASSES,
/// softmax) on the CPU. At batch 64 the convolutions, both gradients of each, the dense
/// products and the reductions all pass the CPU backend's thresholds for running in parallel.
pub fn conv_net(seed: u64) -> Sequential {
    let mut m = Sequential::with_device(&nn::device::cpu()).seed(seed);
    m.add(Conv2D::new(16, (3, 3)).activation(Activation::Relu).input_shape([SIDE, SIDE, 1])).unwrap();
    m.add(MaxPooling2D::new()).unwrap();
    m.add(Conv2D::new(32, (3, 3)).activation(Activation::Relu)).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.25)).unwrap();
    m.add(Dense::new(64).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(CLASSES).activation(Activation::Softmax)).unwrap();
    m
}

/// The bits of every trainable variable, layer by layer.
pub fn weight_bits(model: &Sequential) -> Vec<Vec<u32>> {
    model
        .trainable_variables()
        .iter()
        .map(|v| v.to_vec().unwrap().iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// [`conv_net`] written with the functional API: the same layers, names and, from the same
/// seed, the same weights.
pub fn conv_net_functional(seed: u64) -> nn::Model {
    use nn::functional::{Apply, Input};
    let input = Input::new([SIDE, SIDE, 1]);
    let x = Conv2D::new(16, (3, 3)).activation(Activation::Relu).apply(&input).unwrap();
    let x = MaxPooling2D::new().apply(&x).unwrap();
    let x = Conv2D::new(32, (3, 3)).activation(Activation::Relu).apply(&x).unwrap();
    let x = Flatten::new().apply(&x).unwrap();
    let x = Dropout::new(0.25).apply(&x).unwrap();
    let x = Dense::new(64).activation(Activation::Relu).apply(&x).unwrap();
    let out = Dense::new(CLASSES).activation(Activation::Softmax).apply(&x).unwrap();
    nn::Model::with_device(&[&input], &[&out], &nn::device::cpu(), seed).unwrap()
}

/// The bits of every weight of a model, layer by layer.
pub fn model_bits(model: &nn::Model) -> Vec<Vec<u32>> {
    model.variables().iter().map(|v| v.to_vec().unwrap().iter().map(|x| x.to_bits()).collect()).collect()
}
