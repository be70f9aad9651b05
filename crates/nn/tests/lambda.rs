//! Tensor ops in functional models: `Lambda` and the `SymbolicTensor` shorthands (scalar
//! arithmetic, slicing, reshaping, element-wise arithmetic between tensors).

use nn::functional::{Apply, Input, Model};
use nn::layers::{Dense, Lambda};
use nn::{Array, FitOptions, Loss, Sgd, Tensor};

fn data() -> (Array, Array) {
    let x = (0..8 * 6).map(|n| (0.37 * n as f32).sin()).collect();
    let y = (0..8 * 2).map(|n| (0.21 * n as f32).cos()).collect();
    (Array::new(x, [8, 6]).unwrap(), Array::new(y, [8, 2]).unwrap())
}

/// Outputs equal the same arithmetic done by hand on the inputs and the weights.
#[test]
fn ops_compute_what_they_say() {
    let (x, _) = data();
    let input = Input::new([6]);
    let scaled = input.mul_scalar(2.0).unwrap().add_scalar(-0.5).unwrap();
    let middle = scaled.slice(-1, 1, 3).unwrap();
    let product = middle.mul(&middle).unwrap().div(&middle.add_scalar(3.0).unwrap()).unwrap();
    let reshaped = product.reshape([3, 1]).unwrap().reshape([3]).unwrap();
    let out = reshaped.sub(&middle).unwrap();
    let model = Model::new(&[&input], &[&out]).unwrap();
    assert_eq!(model.output_shapes(), vec![vec![3]]);
    let got = model.predict(&x, 4).unwrap().remove(0);
    for (i, row) in x.data().chunks(6).enumerate() {
        for k in 0..3 {
            let m = row[k + 1] * 2.0 - 0.5;
            let want = m * m / (m + 3.0) - m;
            let g = got.data()[i * 3 + k];
            assert!((g - want).abs() < 1e-6, "sample {i}, {k}: {g} vs {want}");
        }
    }
}

/// Training through a `Lambda` takes the steps it would on data transformed beforehand.
#[test]
fn training_through_a_lambda_matches_transformed_data() {
    let (x, y) = data();
    let train = |model: &mut Model, x: &Array| {
        model.compile(Loss::MeanSquaredError, Sgd::new(0.1), &[]).unwrap();
        model.fit(x, &y, &FitOptions { epochs: 2, batch_size: 4, verbose: 0, ..Default::default() }).unwrap();
        model.get_weights().unwrap().into_iter().map(|w| w.data().to_vec()).collect::<Vec<_>>()
    };
    let input = Input::new([6]);
    let doubled = Lambda::new(|t: &Tensor| t.mul_scalar(2.0)).apply(&input).unwrap();
    let out = Dense::new(2).apply(&doubled).unwrap();
    let mut with_lambda = Model::new(&[&input], &[&out]).unwrap();
    let plain_input = Input::new([6]);
    let plain_out = Dense::new(2).apply(&plain_input).unwrap();
    let mut plain = Model::new(&[&plain_input], &[&plain_out]).unwrap();
    plain.set_weights(&with_lambda.get_weights().unwrap()).unwrap();
    let doubled_x = x.clone().map(|v| v * 2.0);
    assert_eq!(train(&mut with_lambda, &x), train(&mut plain, &doubled_x));
}

/// A model with a `Lambda` saves its weights but refuses to save whole (code is not data);
/// bad slices and functions that change the batch are refused with the reason.
#[test]
fn saving_and_bad_uses_are_refused() {
    let input = Input::new([6]);
    let out = Dense::new(2).apply(&input.mul_scalar(3.0).unwrap()).unwrap();
    let model = Model::new(&[&input], &[&out]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = model.save(dir.path().join("whole.safetensors")).unwrap_err().to_string();
    assert!(err.contains("lambda") && err.contains("cannot be saved"), "{err}");
    model.save_weights(dir.path().join("weights.safetensors")).unwrap();
    assert!(input.slice(-1, 4, 3).unwrap_err().to_string().contains("4..7"));
    assert!(input.slice(2, 0, 1).unwrap_err().to_string().contains("axis 2"));
    let err = Lambda::new(|t: &Tensor| t.reshape([t.numel()])).apply(&input).unwrap_err().to_string();
    assert!(err.contains("must keep the batch axis"), "{err}");
}
