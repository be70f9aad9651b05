//! Training functional models: the same layers as a Sequential model train bit for bit the same,
//! user losses train like the built-in ones, and several outputs are weighted and reported as
//! Keras does.

use nn::functional::{Apply, Input, Losses, Model, OutputLoss};
use nn::layers::{Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use nn::Activation::{Relu, Sigmoid, Softmax, Tanh};
use nn::{Array, FitOptions, Loss, Metric, Sequential, Sgd};

/// `n` samples of `dims`, values in [-1, 1), deterministic.
fn data(n: usize, dims: &[usize], seed: u32) -> Array {
    let len = n * dims.iter().product::<usize>();
    let values = (0..len).map(|i| {
        (tensor::random::hash32(i as u32 ^ seed.wrapping_mul(0x9e37)) as f32 / u32::MAX as f32) * 2.0 - 1.0
    });
    Array::new(values.collect(), [&[n][..], dims].concat()).unwrap()
}

fn bits(tensors: &[nn::Tensor]) -> Vec<Vec<u32>> {
    tensors.iter().map(|t| t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()).collect()
}

#[test]
fn functional_and_sequential_models_of_the_same_layers_agree_bit_for_bit() {
    let dev = nn::device::cpu();
    let mut seq = Sequential::with_device(&dev).seed(5);
    seq.add(Conv2D::new(4, (3, 3)).activation(Relu).input_shape([8, 8, 1])).unwrap();
    seq.add(MaxPooling2D::new()).unwrap();
    seq.add(Dropout::new(0.25)).unwrap();
    seq.add(Flatten::new()).unwrap();
    seq.add(Dense::new(8).activation(Tanh)).unwrap();
    seq.add(Dense::new(3).activation(Softmax)).unwrap();

    let input = Input::new([8, 8, 1]);
    let x = Conv2D::new(4, (3, 3)).activation(Relu).apply(&input).unwrap();
    let x = MaxPooling2D::new().apply(&x).unwrap();
    let x = Dropout::new(0.25).apply(&x).unwrap();
    let x = Flatten::new().apply(&x).unwrap();
    let x = Dense::new(8).activation(Tanh).apply(&x).unwrap();
    let out = Dense::new(3).activation(Softmax).apply(&x).unwrap();
    let mut fun = Model::with_device(&[&input], &[&out], &dev, 5).unwrap();

    let seq_vars: Vec<nn::Tensor> = seq.trainable_variables();
    assert_eq!(
        bits(&seq_vars),
        bits(&fun.trainable_variables()),
        "same seed, same layer order, same weights"
    );

    let x = data(24, &[8, 8, 1], 1);
    let labels = Array::new((0..24).map(|i| (i % 3) as f32).collect(), [24]).unwrap();
    let y = nn::to_categorical(&labels, 3).unwrap();
    let p_seq = seq.predict(&x, 10).unwrap().remove(0);
    let p_fun = fun.predict(&[&x], 10).unwrap();
    assert_eq!(
        p_seq.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        p_fun[0].data().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );

    // Two epochs of SGD with shuffling and dropout: every step's gradient must agree for the
    // weights (w - lr * g) to stay identical.
    seq.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    fun.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    let options = FitOptions::new().epochs(2).batch_size(8).verbose(0).seed(3);
    let h_seq = seq.fit(&x, &y, &options).unwrap();
    let h_fun = fun.fit(&[&x], &[&y], &options).unwrap();
    let seq_vars: Vec<nn::Tensor> = seq.trainable_variables();
    let before = bits(&fun.trainable_variables());
    assert_eq!(bits(&seq_vars), before, "weights after training");
    assert_eq!(h_seq.history, h_fun.history);
    assert_ne!(h_fun.get("loss").unwrap()[0], h_fun.get("loss").unwrap()[1], "training moved the loss");
    let e_seq = seq.evaluate(&x, &y, 7).unwrap();
    let e_fun = fun.evaluate(&[&x], &[&y], 7).unwrap();
    assert_eq!(e_seq, e_fun, "one evaluate, one result");
}

/// A one-output model compiled with `loss`, trained one epoch; returns (loss before, weights
/// after).
fn train_once(loss: OutputLoss) -> (f32, Vec<Vec<u32>>) {
    let dev = nn::device::cpu();
    let input = Input::new([5]);
    let h = Dense::new(4).activation(Tanh).apply(&input).unwrap();
    let out = Dense::new(2).apply(&h).unwrap();
    let mut model = Model::with_device(&[&input], &[&out], &dev, 11).unwrap();
    model.compile(loss, Sgd::new(0.05), &[]).unwrap();
    let (x, y) = (data(16, &[5], 2), data(16, &[2], 3));
    let before = model.evaluate(&[&x], &[&y], 16).unwrap()["loss"];
    model.fit(&[&x], &[&y], &FitOptions::new().epochs(1).batch_size(16).verbose(0).shuffle(false)).unwrap();
    (before, bits(&model.trainable_variables()))
}

#[test]
fn a_user_written_loss_trains_like_the_built_in_one() {
    let user_mae = OutputLoss::custom(|y_true, y_pred| y_pred.sub(y_true)?.abs()?.mean_axis(-1, false));
    let user_mse = OutputLoss::custom(|y_true, y_pred| y_pred.sub(y_true)?.square()?.mean_axis(-1, false));
    let (mae_loss, mae_after) = train_once(Loss::MeanAbsoluteError.into());
    let (user_mae_loss, user_mae_after) = train_once(user_mae);
    assert_eq!(mae_loss, user_mae_loss);
    assert_eq!(mae_after, user_mae_after, "same gradients, same step");
    let (mse_loss, mse_after) = train_once(Loss::MeanSquaredError.into());
    let (user_mse_loss, user_mse_after) = train_once(user_mse);
    assert_eq!(mse_loss, user_mse_loss);
    assert_eq!(mse_after, user_mse_after);
    assert_ne!(mae_after, mse_after, "the losses differ, so do their gradients");
}

#[test]
fn a_user_loss_value_matches_its_formula() {
    // A user loss returning one value per sample is averaged over the batch.
    let input = Input::new([3]);
    let out = Dense::new(3).apply(&input).unwrap();
    let mut model = Model::new(&[&input], &[&out]).unwrap();
    model
        .compile(OutputLoss::custom(|t, p| p.sub(t)?.abs()?.sum_axis(-1, false)), Sgd::new(0.1), &[])
        .unwrap();
    let (x, y) = (data(6, &[3], 4), data(6, &[3], 5));
    let p = model.predict(&[&x], 6).unwrap();
    let want: f64 =
        p[0].data().iter().zip(y.data()).map(|(&p, &t)| (p as f64 - t as f64).abs()).sum::<f64>() / 6.0;
    let got = model.evaluate(&[&x], &[&y], 4).unwrap()["loss"];
    assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
}

/// Inputs `a` `[4]` and `b` `[2]`; outputs `class` (3-way softmax of both) and `flag`
/// (sigmoid of `b`).
fn two_output_model() -> Model {
    let (a, b) = (Input::named("a", [4]), Input::named("b", [2]));
    let joined = nn::functional::Concatenate::new(-1);
    let joined = nn::functional::MergeLayer::apply_many(joined, &[&a, &b]).unwrap();
    let class = Dense::new(3).activation(Softmax).name("class").apply(&joined).unwrap();
    let flag = Dense::new(1).activation(Sigmoid).name("flag").apply(&b).unwrap();
    Model::with_device(&[&a, &b], &[&class, &flag], &nn::device::cpu(), 2).unwrap()
}

#[test]
fn several_outputs_report_the_weighted_total_and_each_output() {
    let (xa, xb) = (data(20, &[4], 6), data(20, &[2], 7));
    let labels = Array::new((0..20).map(|i| (i % 3) as f32).collect(), [20]).unwrap();
    let flags = Array::new((0..20).map(|i| (i % 2) as f32).collect(), [20, 1]).unwrap();
    let mut model = two_output_model();
    let losses =
        Losses::from([Loss::SparseCategoricalCrossentropy, Loss::BinaryCrossentropy]).weights([1.0, 0.2]);
    model.compile(losses, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    let e = model.evaluate(&[&xa, &xb], &[&labels, &flags], 8).unwrap();
    let keys: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(keys, ["class_accuracy", "class_loss", "flag_accuracy", "flag_loss", "loss"]);
    assert!((e["loss"] - (e["class_loss"] + 0.2 * e["flag_loss"])).abs() < 1e-5, "{e:?}");
    assert!(e["class_loss"] > 0.5 && e["flag_loss"] > 0.3, "{e:?}");

    // The same losses by name give the same numbers.
    let mut by_name = two_output_model();
    let losses =
        Losses::by_name([("flag", Loss::BinaryCrossentropy), ("class", Loss::SparseCategoricalCrossentropy)])
            .weight_for("flag", 0.2);
    by_name.compile(losses, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    assert_eq!(by_name.evaluate(&[&xa, &xb], &[&labels, &flags], 8).unwrap(), e);

    let options = FitOptions::new().epochs(3).batch_size(4).verbose(2).validation_split(0.25);
    let history = model.fit(&[&xa, &xb], &[&labels, &flags], &options).unwrap();
    let keys: Vec<&str> = history.history.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "class_accuracy",
            "class_loss",
            "flag_accuracy",
            "flag_loss",
            "loss",
            "val_class_accuracy",
            "val_class_loss",
            "val_flag_accuracy",
            "val_flag_loss",
            "val_loss"
        ]
    );
    assert!(history.history.values().all(|v| v.len() == 3));
    let loss = history.get("loss").unwrap();
    assert!(loss[2] < loss[0], "training lowers the total loss: {loss:?}");
}

#[test]
fn labels_that_do_not_fit_an_output_are_named() {
    let mut model = two_output_model();
    model.compile(Loss::MeanSquaredError, Sgd::new(0.1), &[]).unwrap();
    let (xa, xb) = (data(4, &[4], 1), data(4, &[2], 2));
    let (good, bad) = (data(4, &[3], 3), data(4, &[2], 4));
    let err = model.evaluate(&[&xa, &xb], &[&good, &bad], 4).unwrap_err().to_string();
    assert!(err.contains("output 'flag'") && err.contains("[2]"), "{err}");
    let err = model.evaluate(&[&xa, &xb], &[&good], 4).unwrap_err().to_string();
    assert!(err.contains("2 outputs (class, flag) but 1 arrays"), "{err}");
}

/// The same two-output model (same seed) on the wgpu backend and on the CPU: the forward pass,
/// the losses and a few training steps agree to float rounding.
#[cfg(feature = "wgpu")]
#[test]
fn two_output_model_on_wgpu_matches_the_cpu() {
    let Ok(gpu) = nn::device::wgpu() else {
        eprintln!("note: no wgpu adapter; skipped");
        return;
    };
    let build = |device: &nn::Device| {
        let (a, b) = (Input::named("a", [4]), Input::named("b", [2]));
        let joined =
            nn::functional::MergeLayer::apply_many(nn::functional::Concatenate::new(-1), &[&a, &b]).unwrap();
        let class = Dense::new(3).activation(Softmax).name("class").apply(&joined).unwrap();
        let flag = Dense::new(1).activation(Sigmoid).name("flag").apply(&b).unwrap();
        let mut model = Model::with_device(&[&a, &b], &[&class, &flag], device, 2).unwrap();
        let losses =
            Losses::from([Loss::SparseCategoricalCrossentropy, Loss::BinaryCrossentropy]).weights([1.0, 0.2]);
        model.compile(losses, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
        model
    };
    let (mut on_gpu, mut on_cpu) = (build(&gpu), build(&nn::device::cpu()));
    let (xa, xb) = (data(20, &[4], 6), data(20, &[2], 7));
    let labels = Array::new((0..20).map(|i| (i % 3) as f32).collect(), [20]).unwrap();
    let flags = Array::new((0..20).map(|i| (i % 2) as f32).collect(), [20, 1]).unwrap();
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
    for (g, c) in on_gpu.predict(&[&xa, &xb], 8).unwrap().iter().zip(on_cpu.predict(&[&xa, &xb], 8).unwrap())
    {
        assert!(close(g.data(), c.data()), "{g:?} vs {c:?}");
    }
    let options = FitOptions::new().epochs(2).batch_size(4).verbose(0);
    let h_gpu = on_gpu.fit(&[&xa, &xb], &[&labels, &flags], &options).unwrap();
    let h_cpu = on_cpu.fit(&[&xa, &xb], &[&labels, &flags], &options).unwrap();
    for (key, values) in &h_cpu.history {
        assert!(close(values, h_gpu.get(key).unwrap()), "{key}: cpu {values:?}, gpu {:?}", h_gpu.get(key));
    }
}
