//! Checkpoints during `fit` and resuming from them: 2 epochs straight and 1 epoch + checkpoint
//! + load + 1 epoch train bit-identical weights on the CPU, with SGD + momentum and with Adam.

mod synthetic;

use nn::callbacks::ModelCheckpoint;
use nn::{Adam, Array, FitOptions, History, Loss, Metric, Optimizer, Sequential, Sgd};
use synthetic::{conv_net, images, weight_bits};

fn options(x_val: &Array, y_val: &Array) -> FitOptions {
    FitOptions::new().batch_size(32).verbose(0).seed(21).validation_data(x_val.clone(), y_val.clone())
}

fn compiled(optimizer: impl Into<Optimizer>) -> Sequential {
    let mut model = conv_net(4);
    model.compile(Loss::SparseCategoricalCrossentropy, optimizer, &[Metric::Accuracy]).unwrap();
    model
}

fn bits(history: &History, key: &str) -> Vec<u32> {
    history.get(key).unwrap().iter().map(|v| v.to_bits()).collect()
}

fn resume_matches_straight_run(optimizer: Optimizer) {
    let (x, y) = images(192);
    let (x_val, y_val) = images(64);
    let tmp = tempfile::tempdir().unwrap();

    let mut straight = compiled(optimizer.clone());
    let full = straight.fit(&x, &y, &options(&x_val, &y_val).epochs(2)).unwrap();
    assert_eq!(straight.epochs_done(), 2);

    let path = tmp.path().join("ckpt.safetensors");
    let mut first = compiled(optimizer);
    let checkpoint = ModelCheckpoint::new(path.to_str().unwrap());
    first.fit(&x, &y, &options(&x_val, &y_val).epochs(1).checkpoint(checkpoint)).unwrap();
    drop(first);

    let mut resumed = Sequential::load(&path).unwrap();
    assert_eq!(resumed.epochs_done(), 1);
    let rest =
        resumed.fit(&x, &y, &options(&x_val, &y_val).epochs(2).initial_epoch(resumed.epochs_done())).unwrap();
    assert_eq!(resumed.epochs_done(), 2);

    assert_ne!(weight_bits(&straight), weight_bits(&conv_net(4)), "training changed the weights");
    for (i, (a, b)) in weight_bits(&straight).iter().zip(weight_bits(&resumed)).enumerate() {
        let differing = a.iter().zip(&b).filter(|(p, q)| p != q).count();
        assert_eq!(differing, 0, "variable {i}: {differing} of {} values differ", a.len());
    }
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        assert_eq!(bits(&rest, key), bits(&full, key)[1..], "{key} of epoch 2");
    }
}

#[test]
fn sgd_with_momentum_resumes_bit_identically() {
    resume_matches_straight_run(Sgd::new(0.05).momentum(0.9).into());
}

#[test]
fn nesterov_resumes_bit_identically() {
    resume_matches_straight_run(Sgd::new(0.05).momentum(0.8).nesterov(true).into());
}

#[test]
fn adam_resumes_bit_identically() {
    resume_matches_straight_run(Adam::new(0.002).into());
}

#[test]
fn a_checkpoint_holds_the_optimizer_state_and_its_weights_load_alone() {
    let (x, y) = images(64);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("adam.safetensors");
    let mut model = compiled(Adam::new(0.001));
    let options = FitOptions::new()
        .epochs(1)
        .batch_size(32)
        .verbose(0)
        .checkpoint(ModelCheckpoint::new(path.to_str().unwrap()));
    model.fit(&x, &y, &options).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = file.names();
    for name in ["dense_2/kernel", "optimizer/dense_2/kernel/momentum", "optimizer/dense_2/kernel/velocity"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()[nn::saving::TRAINING_KEY]).unwrap();
    assert_eq!(state["epochs_done"], 1);
    assert_eq!(state["optimizer"]["class_name"], "Adam");
    assert_eq!(state["optimizer"]["iterations"], 2, "64 samples in batches of 32");

    // A weights-only load skips the optimizer's tensors.
    let mut other = conv_net(9);
    other.load_weights(&path).unwrap();
    assert_eq!(weight_bits(&other), weight_bits(&model));
}

#[test]
fn every_epoch_checkpoints_follow_the_path_template() {
    let (x, y) = images(64);
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("m-{epoch:02d}.safetensors");
    let mut model = compiled(Sgd::new(0.01));
    let options = FitOptions::new()
        .epochs(3)
        .batch_size(32)
        .verbose(0)
        .checkpoint(ModelCheckpoint::new(template.to_str().unwrap()));
    model.fit(&x, &y, &options).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["m-01.safetensors", "m-02.safetensors", "m-03.safetensors"]);
    for epoch in 1..=3 {
        let loaded = Sequential::load(tmp.path().join(format!("m-{epoch:02}.safetensors"))).unwrap();
        assert_eq!(loaded.epochs_done(), epoch);
    }
    let last = Sequential::load(tmp.path().join("m-03.safetensors")).unwrap();
    assert_eq!(weight_bits(&last), weight_bits(&model));
}

#[test]
fn save_best_only_saves_exactly_the_epochs_that_improved() {
    let (x, y) = images(128);
    let (x_val, y_val) = images(32);
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("best-{epoch}.safetensors");
    let mut model = compiled(Sgd::new(0.3).momentum(0.9));
    let checkpoint =
        ModelCheckpoint::new(template.to_str().unwrap()).monitor("val_loss").save_best_only(true);
    let history = model.fit(&x, &y, &options(&x_val, &y_val).epochs(6).checkpoint(checkpoint)).unwrap();

    let val_loss = history.get("val_loss").unwrap();
    let mut expected = Vec::new();
    let mut best = f32::INFINITY;
    for (i, &v) in val_loss.iter().enumerate() {
        if v < best {
            best = v;
            expected.push(format!("best-{}.safetensors", i + 1));
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort_by_key(|n| {
        n.trim_start_matches("best-").trim_end_matches(".safetensors").parse::<usize>().unwrap()
    });
    assert_eq!(names, expected, "val_loss per epoch: {val_loss:?}");
    assert!(expected.len() < 6, "the test needs an epoch that did not improve: {val_loss:?}");
}

#[test]
fn initial_epoch_after_the_last_epoch_is_an_error() {
    let (x, y) = images(8);
    let mut model = compiled(Sgd::new(0.01));
    let err = model.fit(&x, &y, &FitOptions::new().epochs(2).initial_epoch(3).verbose(0)).unwrap_err();
    assert!(matches!(err, nn::Error::Options(_)), "{err:?}");
    assert_eq!(err.to_string(), "bad option: initial_epoch 3 is after the last epoch (2)");
}
