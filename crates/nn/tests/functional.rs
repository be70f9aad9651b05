//! The functional API: wiring checks when a model is built, naming, shared layers, the summary's
//! "Connected to" column, and several inputs and outputs through predict.

use nn::functional::{Add, Apply, Concatenate, Input, MergeLayer, Model, Shared, Subtract};
use nn::layers::{Conv2D, Dense, Flatten};
use nn::Activation::Relu;
use nn::Array;

fn build_error(result: nn::Result<impl Sized>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn automatic_names_follow_keras_per_model() {
    let x = Input::new([4]);
    let a = Dense::new(3).apply(&x).unwrap();
    let b = Dense::new(3).activation(Relu).apply(&a).unwrap();
    let c = Dense::new(2).name("head").apply(&b).unwrap();
    // Before a model numbers them, tensors are described by their kind.
    assert_eq!((x.name(), a.name(), b.name(), c.name()), ("input", "dense", "dense", "head"));
    let model = Model::new(&[&x], &[&c]).unwrap();
    assert_eq!(model.layer_names(), ["input_1", "dense_1", "dense_2", "head"]);
    assert_eq!(model.count_params(), (4 * 3 + 3) + (3 * 3 + 3) + (3 * 2 + 2));
    // Numbering is per model: a second model of new layers starts again at dense_1, and a
    // model of some of the same layers numbers them in its own graph order.
    let y = Input::new([4]);
    let d = Dense::new(5).apply(&y).unwrap();
    let other = Model::new(&[&y], &[&d]).unwrap();
    assert_eq!(other.layer_names(), ["input_1", "dense_1"]);
    let part = Model::new(&[&x], &[&b]).unwrap();
    assert_eq!(part.layer_names(), ["input_1", "dense_1", "dense_2"]);
    assert_eq!(part.output_names(), ["dense_2"]);
}

#[test]
fn a_given_name_that_an_automatic_one_repeats_is_an_error() {
    let x = Input::new([4]);
    let a = Dense::new(3).name("dense_2").apply(&x).unwrap();
    let b = Dense::new(3).apply(&a).unwrap();
    let c = Dense::new(3).apply(&b).unwrap();
    assert!(build_error(Model::new(&[&x], &[&c])).contains("two layers are named 'dense_2'"));
}

#[test]
fn an_output_that_needs_another_input_is_an_error() {
    let (a, b) = (Input::named("a", [4]), Input::named("b", [4]));
    let sum = Add::new().apply_many(&[&a, &b]).unwrap();
    let err = build_error(Model::new(&[&a], &[&sum]));
    assert!(err.contains("not reachable from the model's inputs") && err.contains("'b'"), "{err}");
}

#[test]
fn an_unused_input_is_an_error() {
    let (a, b) = (Input::named("a", [4]), Input::named("unused", [7]));
    let out = Dense::new(2).apply(&a).unwrap();
    let err = build_error(Model::new(&[&a, &b], &[&out]));
    assert!(err.contains("input 'unused' (None, 7) is not used by any output"), "{err}");
}

#[test]
fn a_non_input_as_input_and_repeated_outputs_are_errors() {
    let x = Input::new([4]);
    let h = Dense::new(2).apply(&x).unwrap();
    assert!(build_error(Model::new(&[&h], &[&h])).contains("not an Input"));
    assert!(build_error(Model::new(&[&x], &[&h, &h])).contains("listed twice"));
}

#[test]
fn merge_shape_mismatch_names_both_layers() {
    let x = Input::new([4]);
    let a = Dense::new(8).name("wide").apply(&x).unwrap();
    let b = Dense::new(5).name("narrow").apply(&x).unwrap();
    let err = build_error(Add::new().name("sum").apply_many(&[&a, &b]));
    assert_eq!(
        err,
        "cannot build model: layer sum (Add) cannot merge wide output (None, 8) with narrow output (None, 5): \
         element-wise merges need inputs of one shape"
    );
    let img = Input::named("img", [6, 6, 2]);
    let conv = Conv2D::new(3, (3, 3)).name("conv").apply(&img).unwrap();
    let err = build_error(Concatenate::new(-1).apply_many(&[&conv, &img]));
    assert!(err.contains("conv output (None, 4, 4, 3) with img output (None, 6, 6, 2)"), "{err}");
    assert!(build_error(Subtract::new().apply_many(&[&a, &a, &a])).contains("exactly 2 inputs"));
}

#[test]
fn a_layer_that_does_not_fit_its_input_names_both() {
    let img = Input::named("img", [2, 2, 1]);
    let err = build_error(Conv2D::new(3, (5, 5)).name("big").apply(&img));
    assert!(err.contains("layer big (Conv2D) applied to img output (None, 2, 2, 1)"), "{err}");
}

#[test]
fn duplicate_layer_names_are_an_error() {
    let x = Input::new([4]);
    let a = Dense::new(3).name("same").apply(&x).unwrap();
    let b = Dense::new(3).name("same").apply(&a).unwrap();
    assert!(build_error(Model::new(&[&x], &[&b])).contains("two layers are named 'same'"));
}

#[test]
fn a_shared_layer_shares_weights_and_checks_its_input_shape() {
    let (a, b) = (Input::named("a", [4]), Input::named("b", [4]));
    let shared = Shared::new(Dense::new(3).name("encoder"));
    let (ea, eb) = (shared.apply(&a).unwrap(), shared.apply(&b).unwrap());
    let diff = Subtract::new().name("diff").apply_many(&[&ea, &eb]).unwrap();
    let model = Model::new(&[&a, &b], &[&diff, &ea]).unwrap();
    assert_eq!(model.count_params(), 4 * 3 + 3, "one kernel and one bias");
    assert_eq!(model.trainable_variables().len(), 2);
    // The same sample through both branches: the difference is exactly 0, and the second output
    // is the encoder's output on it.
    let x = Array::new((0..8).map(|i| i as f32 * 0.25 - 1.0).collect(), [2, 4]).unwrap();
    let out = model.predict(&[&x, &x], 2).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].data().iter().all(|&v| v == 0.0), "{:?}", out[0]);
    assert_eq!(out[1].dims(), &[2, 3]);
    assert!(out[1].data().iter().any(|&v| v != 0.0));

    let other = Input::named("other", [5]);
    let err = build_error(shared.apply(&other));
    assert!(
        err.contains(
            "layer encoder (Dense) was built for input (None, 4) but is applied to other output (None, 5)"
        ),
        "{err}"
    );
}

#[test]
fn summary_shows_connected_to() {
    let (a, b) = (Input::named("a", [4]), Input::named("b", [4]));
    let shared = Shared::new(Dense::new(3));
    let (ea, eb) = (shared.apply(&a).unwrap(), shared.apply(&b).unwrap());
    let joined = Concatenate::new(-1).apply_many(&[&ea, &eb]).unwrap();
    let out = Dense::new(1).apply(&joined).unwrap();
    let model = Model::new(&[&a, &b], &[&out]).unwrap();
    let s = model.summary().unwrap();
    let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    for line in [
        "Model: \"functional_1\"",
        "Layer (type) Output Shape Param # Connected to",
        "a (InputLayer) (None, 4) 0 -",
        "dense_1 (Dense) (None, 3) 15 a[0][0]",
        "b[0][0]",
        "b (InputLayer) (None, 4) 0 -",
        "concatenate_1 (Concatenate) (None, 6) 0 dense_1[0][0]",
        "dense_1[1][0]",
        "dense_2 (Dense) (None, 1) 7 concatenate_1[0][0]",
        "Total params: 22",
    ] {
        assert!(squeeze(&s).contains(&squeeze(line)), "missing {line:?} in\n{s}");
    }
}

#[test]
fn predict_checks_its_arrays() {
    let (a, b) = (Input::named("a", [2]), Input::named("b", [3]));
    let out = Concatenate::new(-1).apply_many(&[&a, &b]).unwrap();
    let model = Model::new(&[&a, &b], &[&out]).unwrap();
    let xa = Array::new(vec![1., 2., 3., 4.], [2, 2]).unwrap();
    let xb = Array::new(vec![5., 6., 7., 8., 9., 10.], [2, 3]).unwrap();
    let [joined] = &model.predict(&[&xa, &xb], 1).unwrap()[..] else { panic!() };
    assert_eq!(joined.dims(), &[2, 5]);
    assert_eq!(joined.data(), &[1., 2., 5., 6., 7., 3., 4., 8., 9., 10.]);
    assert!(build_error(model.predict(&[&xa], 1)).contains("2 inputs (a, b) but 1 arrays"));
    assert!(build_error(model.predict(&[&xb, &xa], 1)).contains("'a' expects samples of shape [2], got [3]"));
}

#[test]
fn a_skip_connection_adds_the_input_back() {
    let x = Input::new([3]);
    let h = Dense::new(3).apply(&x).unwrap();
    let zero = Subtract::new().apply_many(&[&h, &h]).unwrap();
    let skip = Add::new().apply_many(&[&zero, &x]).unwrap();
    let flat = Flatten::new().apply(&skip).unwrap();
    let model = Model::new(&[&x], &[&flat]).unwrap();
    let data = Array::new(vec![0.5, -1.0, 2.0], [1, 3]).unwrap();
    assert_eq!(model.predict(&[&data], 1).unwrap()[0].data(), &[0.5, -1.0, 2.0]);
}

#[test]
fn elementwise_merges_compute_keras_values() {
    use nn::functional::{Average, Maximum, Multiply};
    let (a, b) = (Input::named("a", [3]), Input::named("b", [3]));
    let outs = [
        Add::new().apply_many(&[&a, &b]).unwrap(),
        Subtract::new().apply_many(&[&a, &b]).unwrap(),
        Multiply::new().apply_many(&[&a, &b]).unwrap(),
        Average::new().apply_many(&[&a, &b]).unwrap(),
        Maximum::new().apply_many(&[&a, &b]).unwrap(),
    ];
    let model = Model::new(&[&a, &b], &outs.iter().collect::<Vec<_>>()).unwrap();
    let xa = Array::new(vec![1., -2., 3.], [1, 3]).unwrap();
    let xb = Array::new(vec![4., 5., -6.], [1, 3]).unwrap();
    let got: Vec<Vec<f32>> =
        model.predict(&[&xa, &xb], 1).unwrap().iter().map(|o| o.data().to_vec()).collect();
    assert_eq!(
        got,
        [vec![5., 3., -3.], vec![-3., -7., 9.], vec![4., -10., -18.], vec![2.5, 1.5, -1.5], vec![4., 5., 3.]]
    );
}

#[test]
fn models_and_symbolic_tensors_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Model>();
    send_and_sync::<nn::functional::SymbolicTensor>();
    send_and_sync::<Shared>();
}
