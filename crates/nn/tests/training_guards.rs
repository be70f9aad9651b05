//! Training that fails loudly: TerminateOnNaN stops at the first non-finite step and leaves the
//! last checkpoint good; bad data is an error naming what is wrong before the first step.

mod synthetic;

use nn::callbacks::ModelCheckpoint;
use nn::layers::{Dense, Flatten};
use nn::{to_categorical, Array, Error, FitOptions, Loss, Metric, Sequential, Sgd};
use synthetic::{conv_net, images, weight_bits, CLASSES, SIDE};

/// A linear net (no dropout, so a step's result does not depend on the step count; no ReLU
/// or softmax, so a diverging step is not stopped by dead units or a saturated output): with
/// a huge learning rate, least squares diverges geometrically until the loss overflows.
fn linear_net() -> Sequential {
    let mut m = Sequential::with_device(&nn::device::cpu()).seed(2);
    m.add(Flatten::new().input_shape([SIDE, SIDE, 1])).unwrap();
    m.add(Dense::new(32)).unwrap();
    m.add(Dense::new(CLASSES)).unwrap();
    m
}

/// Raw 0-255 pixels, as the lecture feeds MNIST, and one-hot labels.
fn raw_images(n: usize) -> (Array, Array) {
    let (x, y) = images(n);
    (x.map(|p| p * 255.0), to_categorical(&y.reshape([n]).unwrap(), CLASSES).unwrap())
}

const BATCH: usize = 16;

fn huge_lr_fit(model: &mut Sequential, x: &Array, y: &Array) -> nn::Result<nn::History> {
    model.compile(Loss::MeanSquaredError, Sgd::new(1e6), &[Metric::Accuracy])?;
    model.fit(x, y, &FitOptions::new().epochs(1).batch_size(BATCH).shuffle(false).verbose(0))
}

#[test]
fn a_huge_learning_rate_stops_at_the_first_nan_step_and_the_checkpoint_stays_good() {
    let (x, y) = raw_images(256);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("last.safetensors");

    // One sane epoch writes a checkpoint.
    let mut model = linear_net();
    model.compile(Loss::MeanSquaredError, Sgd::new(1e-6), &[Metric::Accuracy]).unwrap();
    let checkpoint = ModelCheckpoint::new(path.to_str().unwrap());
    let options = FitOptions::new().batch_size(BATCH).shuffle(false).verbose(0).checkpoint(checkpoint);
    model.fit(&x, &y, &options.clone().epochs(1)).unwrap();
    let saved = weight_bits(&model);

    // Then a learning rate of 1e6 blows the weights up within a few steps of epoch 2.
    model.compile(Loss::MeanSquaredError, Sgd::new(1e6), &[Metric::Accuracy]).unwrap();
    let err = model.fit(&x, &y, &options.epochs(3).initial_epoch(1)).unwrap_err();
    let Error::NonFiniteLoss { epoch, step, loss } = err else { panic!("{err:?}") };
    assert_eq!(epoch, 2);
    assert!(!loss.is_finite());
    assert_eq!(
        err_text(epoch, step, loss),
        format!("epoch 2, batch {step}: invalid loss ({loss}), terminating training")
    );
    assert!((2..256 / BATCH).contains(&step), "the first step uses sane weights; step {step}");

    // `step` is the first bad one: the same run on the first `step - 1` batches is finite, and
    // on the first `step` batches fails at `step`.
    let start_model = || Sequential::load(&path).unwrap();
    let before = (step - 1) * BATCH;
    let history = huge_lr_fit(&mut start_model(), &x.slice(0, before), &y.slice(0, before)).unwrap();
    assert!(history.get("loss").unwrap()[0].is_finite());
    let upto = step * BATCH;
    let again = huge_lr_fit(&mut start_model(), &x.slice(0, upto), &y.slice(0, upto)).unwrap_err();
    assert!(matches!(again, Error::NonFiniteLoss { epoch: 1, step: s, .. } if s == step), "{again:?}");

    // The checkpoint of epoch 1 was not overwritten and is finite.
    let loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.epochs_done(), 1);
    assert_eq!(weight_bits(&loaded), saved);
    assert!(loaded.trainable_variables().iter().all(|v| v.to_vec().unwrap().iter().all(|w| w.is_finite())));
}

fn err_text(epoch: usize, step: usize, loss: f32) -> String {
    Error::NonFiniteLoss { epoch, step, loss }.to_string()
}

#[test]
fn without_terminate_on_nan_the_epoch_still_ends_training() {
    let (x, y) = raw_images(64);
    let mut model = linear_net();
    model.compile(Loss::MeanSquaredError, Sgd::new(1e6), &[]).unwrap();
    let options = FitOptions::new().epochs(2).batch_size(BATCH).verbose(0).terminate_on_nan(false);
    let err = model.fit(&x, &y, &options).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { epoch: 1, step: 4, .. }), "the epoch's last step: {err:?}");
}

fn compiled_conv_net() -> Sequential {
    let mut model = conv_net(1);
    model.compile(Loss::SparseCategoricalCrossentropy, Sgd::new(0.01), &[Metric::Accuracy]).unwrap();
    model
}

fn fit_error(x: &Array, y: &Array, options: &FitOptions) -> (Error, Sequential) {
    let mut model = compiled_conv_net();
    let err = model.fit(x, y, options).unwrap_err();
    (err, model)
}

#[test]
fn samples_of_the_wrong_shape_fail_before_the_first_step() {
    let (x, y) = images(8);
    let flat = x.clone().reshape([8, SIDE * SIDE]).unwrap();
    let (err, model) = fit_error(&flat, &y, &FitOptions::new().verbose(0));
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert_eq!(err.to_string(), "bad data: fit: the model expects samples of shape [14, 14, 1], got [196]");
    assert_eq!(weight_bits(&model), weight_bits(&conv_net(1)), "no step was taken");
    assert_eq!(model.epochs_done(), 0);
}

#[test]
fn labels_that_do_not_fit_the_output_fail_before_the_first_step() {
    let (x, _) = images(8);
    let one_hot_for_10 = Array::new(vec![0.0; 80], [8, 10]).unwrap();
    let mut model = conv_net(1);
    model.compile(Loss::CategoricalCrossentropy, Sgd::new(0.01), &[]).unwrap();
    let err = model.fit(&x, &one_hot_for_10, &FitOptions::new().verbose(0)).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "bad data: fit: labels have shape [10] per sample but the model outputs [4] \
         (use to_categorical for class indices)"
    );
    assert_eq!(weight_bits(&model), weight_bits(&conv_net(1)));
}

#[test]
fn different_sample_counts_in_x_and_y_are_an_error() {
    let (x, y) = images(8);
    let (err, _) = fit_error(&x, &y.slice(0, 7), &FitOptions::new().verbose(0));
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert_eq!(err.to_string(), "bad data: fit: 8 samples in x but 7 in y");
}

#[test]
fn an_empty_data_set_is_an_error() {
    let x = Array::new(vec![], [0, SIDE, SIDE, 1]).unwrap();
    let y = Array::new(vec![], [0, 1]).unwrap();
    let (err, _) = fit_error(&x, &y, &FitOptions::new().verbose(0));
    assert!(matches!(err, Error::Data(_)), "{err:?}");
    assert_eq!(err.to_string(), "bad data: fit: no samples");
    let (x, y) = images(8);
    let (err, _) =
        fit_error(&x, &y, &FitOptions::new().verbose(0).validation_data(x.slice(0, 0), y.slice(0, 0)));
    assert_eq!(err.to_string(), "bad data: validation_data: no samples");
}

#[test]
fn a_batch_larger_than_the_data_set_is_one_smaller_batch() {
    let (x, y) = images(10);
    let mut big = compiled_conv_net();
    let history = big.fit(&x, &y, &FitOptions::new().batch_size(1000).shuffle(false).verbose(0)).unwrap();
    let mut exact = compiled_conv_net();
    let exact_history =
        exact.fit(&x, &y, &FitOptions::new().batch_size(10).shuffle(false).verbose(0)).unwrap();
    assert_eq!(weight_bits(&big), weight_bits(&exact), "one step on the 10 samples");
    assert_eq!(history.get("loss"), exact_history.get("loss"));
    assert_ne!(weight_bits(&big), weight_bits(&conv_net(1)));
}

#[test]
fn a_zero_batch_size_is_an_error() {
    let (x, y) = images(8);
    let (err, _) = fit_error(&x, &y, &FitOptions::new().batch_size(0).verbose(0));
    assert_eq!(err.to_string(), "bad data: batch_size must be at least 1");
}
