//! The lecture's MNIST models, as Keras code would define them, and the functional API's
//! two-head example model.

use tensor::{Device, Padding};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::activation::Activation::{Relu, Sigmoid, Softmax, Tanh};
use crate::array::{to_categorical, Array};
use crate::error::{Error, Result};
use crate::functional::{Apply, Input, MergeLayer, Model, Multiply, Shared};
use crate::layers::{
    ActivationLayer, BatchNormalization, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, Layer,
    MaxPooling2D, RandomRotation, RandomTranslation,
};
use crate::losses::Loss;
use crate::model::Sequential;
use crate::optimizers::schedules::CosineDecay;
use crate::optimizers::{Adam, Optimizer, Sgd};
use crate::training::Metric;

/// The layers of a lecture model, the first declaring the input shape.
fn lecture_layers(name: &str, hidden: usize) -> Result<Vec<Box<dyn Layer>>> {
    let conv_pair = |filters, size| -> [Box<dyn Layer>; 2] {
        [Box::new(Conv2D::new(filters, (size, size)).activation(Relu)), Box::new(MaxPooling2D::new())]
    };
    let head: [Box<dyn Layer>; 3] = [
        Box::new(Flatten::new()),
        Box::new(Dense::new(100).activation(Tanh)),
        Box::new(Dense::new(10).activation(Softmax)),
    ];
    let first = Conv2D::new(20, (5, 5)).activation(Relu).input_shape([28, 28, 1]);
    Ok(match name {
        "model1" => vec![
            Box::new(Dense::new(hidden).activation(Sigmoid).input_shape([784])),
            Box::new(Dense::new(10).activation(Softmax)),
        ],
        "model4" => {
            let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(first), Box::new(MaxPooling2D::new())];
            layers.extend(head);
            layers
        }
        "model5" => {
            let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(first), Box::new(MaxPooling2D::new())];
            layers.extend(conv_pair(40, 3));
            layers.extend(head);
            layers
        }
        "model6" => model6_layers(),
        other => {
            return Err(Error::Build(format!(
                "unknown model '{other}' (expected model1, model4, model5 or model6)"
            )))
        }
    })
}

/// The course's deeper network: augmentation, five 3x3 `same` convolutions without bias, each
/// followed by `BatchNormalization` and a ReLU, two max poolings, global average pooling,
/// dropout and the softmax classifier.
fn model6_layers() -> Vec<Box<dyn Layer>> {
    let conv_block = |filters: usize| -> [Box<dyn Layer>; 3] {
        [
            Box::new(Conv2D::new(filters, (3, 3)).padding(Padding::Same).use_bias(false)),
            Box::new(BatchNormalization::new()),
            Box::new(ActivationLayer::new(Relu)),
        ]
    };
    let mut layers: Vec<Box<dyn Layer>> = vec![
        Box::new(RandomTranslation::new(0.1, 0.1).input_shape([28, 28, 1])),
        Box::new(RandomRotation::new(0.05)),
    ];
    layers.extend(conv_block(32));
    layers.extend(conv_block(32));
    layers.push(Box::new(MaxPooling2D::new()));
    layers.extend(conv_block(64));
    layers.extend(conv_block(64));
    layers.push(Box::new(MaxPooling2D::new()));
    layers.extend(conv_block(128));
    layers.push(Box::new(GlobalAveragePooling2D::new()));
    layers.push(Box::new(Dropout::new(0.3)));
    layers.push(Box::new(Dense::new(10).activation(Softmax)));
    layers
}

fn sequential(name: &str, hidden: usize, device: &Device, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::with_device(device).seed(seed);
    for layer in lecture_layers(name, hidden)? {
        m.add_boxed(layer)?;
    }
    Ok(m)
}

/// "model1": `Dense(hidden, sigmoid)` on the 784 flattened pixels, then `Dense(10, softmax)`.
/// Takes samples of shape `[784]`.
pub fn model1(hidden: usize, device: &Device, seed: u64) -> Result<Sequential> {
    sequential("model1", hidden, device, seed)
}

/// "model4": `Conv2D(20, 5x5, relu)`, `MaxPooling2D`, `Flatten`, `Dense(100, tanh)`,
/// `Dense(10, softmax)`; 289,630 parameters. Takes samples of shape `[28, 28, 1]`.
pub fn model4(device: &Device, seed: u64) -> Result<Sequential> {
    sequential("model4", 0, device, seed)
}

/// "model5": model4 with `Conv2D(40, 3x3, relu)` and `MaxPooling2D` after the first pair;
/// 108,870 parameters.
pub fn model5(device: &Device, seed: u64) -> Result<Sequential> {
    sequential("model5", 0, device, seed)
}

/// "model6", the course's deeper network: `RandomTranslation(0.1,
/// 0.1)` and `RandomRotation(0.05)` (training only), then `Conv2D(f, 3x3, same, no bias)`,
/// `BatchNormalization`, `Activation(relu)` for f = 32, 32, (pool) 64, 64, (pool) 128, then
/// `GlobalAveragePooling2D`, `Dropout(0.3)`, `Dense(10, softmax)`; 141,098 parameters, 640 of
/// them non-trainable (the moving statistics). Trained with [`model6_optimizer`] on
/// normalized pixels. Takes samples of shape `[28, 28, 1]`.
///
/// ```
/// let model = nn::zoo::model6(&nn::device::cpu(), 1)?;
/// assert_eq!(model.count_params(), 141_098);
/// assert_eq!(model.count_non_trainable_params(), 640);
/// # Ok::<(), nn::Error>(())
/// ```
pub fn model6(device: &Device, seed: u64) -> Result<Sequential> {
    sequential("model6", 0, device, seed)
}

/// model6's optimizer: Adam whose rate follows Keras' `CosineDecay(1e-3, decay_steps)` down to
/// 0, with `decay_steps` the run's steps (epochs times batches per epoch).
pub fn model6_optimizer(decay_steps: u64) -> Optimizer {
    Adam::new(CosineDecay::new(1e-3, decay_steps)).into()
}

/// A lecture model by name (`model1`, `model4`, `model5`, `model6`).
pub fn by_name(name: &str, device: &Device, seed: u64) -> Result<Sequential> {
    sequential(name, 100, device, seed)
}

/// A lecture model by name, written with the functional API (an `Input`, the same layers
/// applied one after the other, a `Model`): the same layer names and, from the same seed, the
/// same weights as [`by_name`]'s `Sequential`, and the same training.
pub fn functional_by_name(name: &str, device: &Device, seed: u64) -> Result<Model> {
    let input = Input::new(input_shape(name));
    let mut x = input.clone();
    for layer in lecture_layers(name, 100)? {
        x = Shared::from_box(layer).apply(&x)?;
    }
    Model::with_device(&[&input], &[&x], device, seed)
}

/// The lecture's `compile`: categorical cross-entropy, plain SGD with learning rate 0.01,
/// accuracy.
pub fn compile_as_lecture(model: &mut Model) -> Result<()> {
    model.compile(Loss::CategoricalCrossentropy, Sgd::new(LECTURE_LEARNING_RATE), &[Metric::Accuracy])
}

/// The lecture's SGD learning rate.
pub const LECTURE_LEARNING_RATE: f32 = 0.01;

/// A lecture model (`model1`, `model4`, `model5`) as a `Sequential` built into a [`Model`],
/// compiled as the lecture compiles it ([`compile_as_lecture`]).
pub fn lecture_compiled(name: &str, device: &Device, seed: u64) -> Result<Model> {
    let mut model = by_name(name, device, seed)?.into_model()?;
    compile_as_lecture(&mut model)?;
    Ok(model)
}

/// The per-sample input shape a lecture model takes.
pub fn input_shape(name: &str) -> &'static [usize] {
    if name == "model1" {
        &[784]
    } else {
        &[28, 28, 1]
    }
}

/// The functional API's two-head model (`examples/two_heads.rs`): inputs `image` (per-sample
/// `image_shape`, e.g. `[28, 28, 1]`) and `requested` (a one-hot digit of `classes`); outputs
/// `digit`, the image's class (softmax), and `is_requested`, whether the image shows the
/// requested digit (sigmoid over the product of `digit` and `requested`, so this head reads
/// the first one's belief in the requested class).
pub fn two_heads(image_shape: &[usize], classes: usize, device: &Device, seed: u64) -> Result<Model> {
    let image = Input::named("image", image_shape);
    let requested = Input::named("requested", [classes]);
    let x = Conv2D::new(16, (3, 3)).activation(Relu).apply(&image)?;
    let x = MaxPooling2D::new().apply(&x)?;
    let x = Flatten::new().apply(&x)?;
    let x = Dense::new(64).activation(Relu).apply(&x)?;
    let digit = Dense::new(classes).activation(Softmax).name("digit").apply(&x)?;
    let belief = Multiply::new().name("belief_in_requested").apply_many(&[&digit, &requested])?;
    let is_requested = Dense::new(1).activation(Sigmoid).name("is_requested").apply(&belief)?;
    Model::with_device(&[&image, &requested], &[&digit, &is_requested], device, seed)
}

/// The second input and output of [`two_heads`] for class `labels` (`[n]`): for each sample a
/// requested digit, one-hot (`[n, classes]`), that is the sample's own class half of the time
/// and another class otherwise, and whether it is (`[n, 1]`, 1 or 0). Drawn from `seed`.
pub fn requested_digits(labels: &Array, classes: usize, seed: u64) -> Result<(Array, Array)> {
    if classes < 2 {
        return Err(Error::Data(format!("{classes} classes: a wrong digit needs at least 2")));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut requested = Vec::with_capacity(labels.len());
    let mut matches = Vec::with_capacity(labels.len());
    for &label in labels.data() {
        let same = rng.random_bool(0.5);
        // A uniformly drawn class other than `label`: skip over it.
        let other = rng.random_range(0..classes - 1) as f32;
        let request = if same {
            label
        } else if other >= label {
            other + 1.0
        } else {
            other
        };
        requested.push(request);
        matches.push(if same { 1.0 } else { 0.0 });
    }
    let requested = to_categorical(&Array::new(requested, [labels.len()])?, classes)?;
    Ok((requested, Array::new(matches, [labels.len(), 1])?))
}
