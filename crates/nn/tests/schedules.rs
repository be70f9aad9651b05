//! Learning-rate schedules on the optimizers: the rate of each step is the schedule's, and a
//! checkpoint saves the schedule with the optimizer's state, so training resumes on it.

mod synthetic;

use nn::callbacks::ModelCheckpoint;
use nn::optimizers::{CosineDecay, ExponentialDecay, LearningRate, PiecewiseConstantDecay};
use nn::{Adam, FitOptions, Loss, Metric, Model, Optimizer, Sgd};
use synthetic::{conv_net, images, model_bits};

fn compiled(optimizer: impl Into<Optimizer>) -> Model {
    let mut model = conv_net(7).into_model().unwrap();
    model.compile(Loss::SparseCategoricalCrossentropy, optimizer, &[Metric::Accuracy]).unwrap();
    model
}

fn options(epochs: usize) -> FitOptions {
    FitOptions::new().epochs(epochs).batch_size(16).verbose(0).seed(3)
}

#[test]
fn a_piecewise_schedule_changes_the_rate_at_its_step() {
    let (x, y) = images(64);
    // 4 steps an epoch: steps 0-3 (epoch 1) at 0.1, steps 4-7 (epoch 2) at 0.02.
    let mut scheduled = compiled(Sgd::new(PiecewiseConstantDecay::new([3], [0.1, 0.02])));
    scheduled.fit(&x, &y, &options(2)).unwrap();
    let mut by_hand = compiled(Sgd::new(0.1));
    by_hand.fit(&x, &y, &options(1)).unwrap();
    by_hand.compile(Loss::SparseCategoricalCrossentropy, Sgd::new(0.02), &[Metric::Accuracy]).unwrap();
    by_hand.fit(&x, &y, &options(2).initial_epoch(1)).unwrap();
    assert_eq!(model_bits(&scheduled), model_bits(&by_hand));
}

#[test]
fn a_schedule_is_saved_with_the_optimizer_and_resumes() {
    let (x, y) = images(64);
    let tmp = tempfile::tempdir().unwrap();
    for (i, optimizer) in [
        Optimizer::from(Sgd::new(ExponentialDecay::new(0.1, 3, 0.5).staircase(true)).momentum(0.9)),
        Optimizer::from(Adam::new(CosineDecay::new(0.01, 8).alpha(0.1).warmup(0.02, 2))),
        Optimizer::from(Sgd::new(PiecewiseConstantDecay::new([2, 5], [0.1, 0.05, 0.01]))),
    ]
    .into_iter()
    .enumerate()
    {
        let path = tmp.path().join(format!("ckpt-{i}.safetensors"));
        let mut straight = compiled(optimizer.clone());
        straight.fit(&x, &y, &options(3)).unwrap();
        let mut first = compiled(optimizer.clone());
        first.fit(&x, &y, &options(1).checkpoint(ModelCheckpoint::new(path.to_str().unwrap()))).unwrap();
        let mut resumed = Model::load(&path).unwrap();
        resumed.fit(&x, &y, &options(3).initial_epoch(1)).unwrap();
        assert_eq!(model_bits(&resumed), model_bits(&straight), "{optimizer:?}");
        assert!(matches!(optimizer.learning_rate(), LearningRate::Schedule(_)));
    }
}

#[test]
fn a_schedule_keras_refuses_is_refused_at_compile() {
    let mut model = conv_net(1).into_model().unwrap();
    let err = model
        .compile(
            Loss::MeanSquaredError,
            Sgd::new(PiecewiseConstantDecay::new([5, 2], [0.1, 0.05, 0.01])),
            &[],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad option: PiecewiseConstantDecay: the boundaries [5, 2] must not decrease"
    );
    let err =
        model.compile(Loss::MeanSquaredError, Sgd::new(ExponentialDecay::new(0.1, 0, 0.5)), &[]).unwrap_err();
    assert_eq!(err.to_string(), "bad option: ExponentialDecay: decay_steps must be > 0");
}
