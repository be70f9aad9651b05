//! Each callback does what Keras' does, checked on real training runs: EarlyStopping stops at
//! the epoch its patience implies and restores the best weights, ReduceLROnPlateau lowers the
//! rate when the monitored value stalls and not before, a scheduler's rates are the ones the
//! updates use, CSVLogger's rows are the History, a user callback sees every hook in Keras'
//! order and can stop training, TerminateOnNaN stops, and ModelCheckpoint refuses what it
//! cannot do before training.

mod synthetic;

use std::sync::{Arc, Mutex};

use nn::callbacks::{
    CSVLogger, Callback, CallbackContext, EarlyStopping, LambdaCallback, LearningRateScheduler,
    ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
};
use nn::training::Logs;
use nn::{Array, Error, FitOptions, History, Loss, Metric, Model, Sgd};
use synthetic::{conv_net, images, model_bits};

fn compiled(optimizer: Sgd) -> Model {
    let mut model = conv_net(4).into_model().unwrap();
    model.compile(Loss::SparseCategoricalCrossentropy, optimizer, &[Metric::Accuracy]).unwrap();
    model
}

fn options(epochs: usize) -> FitOptions {
    let (x_val, y_val) = images(64);
    FitOptions::new().epochs(epochs).batch_size(32).verbose(0).seed(21).validation_data(x_val, y_val)
}

/// A callback recording the weights after every epoch (put it before one that changes them).
fn weights_recorder() -> (LambdaCallback, Arc<Mutex<Vec<Vec<Array>>>>) {
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    let callback = LambdaCallback::new().on_epoch_end(move |_, _, ctx| {
        sink.lock().unwrap().push(ctx.model().get_weights()?);
        Ok(())
    });
    (callback, recorded)
}

#[test]
fn early_stopping_stops_where_its_patience_says_and_restores_the_best_weights() {
    let (x, y) = images(128);
    // A rate high enough that the validation loss goes up and down.
    let mut model = compiled(Sgd::new(0.3).momentum(0.9));
    let (recorder, recorded) = weights_recorder();
    let stopper =
        Arc::new(Mutex::new(EarlyStopping::new().monitor("val_loss").patience(1).restore_best_weights(true)));
    let history =
        model.fit(&x, &y, &options(30).callback(recorder).shared_callback(stopper.clone())).unwrap();

    // Keras' rule, on the values the History recorded.
    let val_loss = history.get("val_loss").unwrap();
    let (mut best, mut best_epoch, mut wait, mut stop) = (f32::INFINITY, 0, 0, None);
    for (epoch, &v) in val_loss.iter().enumerate() {
        wait += 1;
        if v < best {
            (best, best_epoch, wait) = (v, epoch, 0);
        } else if wait >= 1 && epoch > 0 {
            stop = Some(epoch);
            break;
        }
    }
    let stopper = stopper.lock().unwrap();
    assert!(stop.is_some(), "the test needs an epoch that does not improve: {val_loss:?}");
    assert_eq!(stopper.stopped_epoch(), stop, "val_loss per epoch: {val_loss:?}");
    assert_eq!(val_loss.len(), stop.unwrap() + 1, "no epoch after the stop");
    assert_eq!((stopper.best(), stopper.best_epoch()), (Some(best), best_epoch));
    let restored = model.get_weights().unwrap();
    assert_eq!(restored, recorded.lock().unwrap()[best_epoch], "the best epoch's weights are back");
    assert_ne!(restored, *recorded.lock().unwrap().last().unwrap(), "the last epoch was not the best");
}

/// What `ReduceLROnPlateau(factor, patience)` (no cooldown, `min_delta` 1e-4) sets after each
/// epoch of `values`, starting from `lr`: Keras' rule, written out independently.
fn plateau_rates(values: &[f32], lr: f32, factor: f64, patience: usize) -> Vec<f32> {
    let (mut best, mut wait, mut lr, mut rates) = (f32::INFINITY, 0, lr, Vec::new());
    for &v in values {
        rates.push(lr);
        if ((v as f64 + 1e-4) as f32) < best {
            (best, wait) = (v, 0);
        } else {
            wait += 1;
            if wait >= patience {
                lr = (lr as f64 * factor) as f32;
                wait = 0;
            }
        }
    }
    rates
}

#[test]
fn reduce_lr_on_plateau_lowers_the_rate_when_the_loss_stalls_and_not_before() {
    let (x, y) = images(128);
    let mut model = compiled(Sgd::new(0.3).momentum(0.9));
    let reduce = ReduceLROnPlateau::new().monitor("val_loss").factor(0.5).patience(2);
    let history = model.fit(&x, &y, &options(12).callback(reduce)).unwrap();
    let rates = history.get("learning_rate").unwrap();
    let expected = plateau_rates(history.get("val_loss").unwrap(), 0.3, 0.5, 2);
    assert_eq!(rates, expected, "val_loss: {:?}", history.get("val_loss"));
    assert!(rates.last().unwrap() < &0.3, "the test needs a plateau: {rates:?}");
    assert_eq!(rates[..2], [0.3, 0.3], "no reduction before patience epochs have passed");
}

#[test]
fn a_schedulers_rates_are_the_ones_the_updates_use() {
    let (x, y) = images(96);
    let schedule = |epoch: usize, _lr: f32| 0.2 / (epoch + 1) as f32;
    let mut scheduled = compiled(Sgd::new(0.05));
    let history = scheduled.fit(&x, &y, &options(3).callback(LearningRateScheduler::new(schedule))).unwrap();
    assert_eq!(history.get("learning_rate").unwrap(), [0.2, 0.1, 0.2 / 3.0]);

    // The same epochs, each compiled with its rate by hand (plain SGD keeps no state).
    let mut by_hand = compiled(Sgd::new(0.05));
    for epoch in 0..3 {
        by_hand
            .compile(Loss::SparseCategoricalCrossentropy, Sgd::new(schedule(epoch, 0.0)), &[Metric::Accuracy])
            .unwrap();
        by_hand.fit(&x, &y, &options(epoch + 1).initial_epoch(epoch)).unwrap();
    }
    assert_eq!(model_bits(&scheduled), model_bits(&by_hand));
}

/// The rows of a CSV file as (header, values), values parsed.
fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse().unwrap_or(f64::NAN)).collect()).collect();
    (header, rows)
}

fn assert_rows_are_the_history(header: &[String], rows: &[Vec<f64>], history: &History) {
    assert_eq!(header[0], "epoch");
    assert_eq!(header[1..], history.history.keys().cloned().collect::<Vec<_>>()[..]);
    assert_eq!(rows.len(), history.epochs());
    for (epoch, row) in rows.iter().enumerate() {
        assert_eq!(row[0], epoch as f64);
        for (key, &value) in header[1..].iter().zip(&row[1..]) {
            assert_eq!(value as f32, history.get(key).unwrap()[epoch], "{key} of epoch {epoch}");
        }
    }
}

#[test]
fn csv_logger_rows_equal_the_history_and_a_resumed_run_appends() {
    let (x, y) = images(64);
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("log.csv");
    let mut model = compiled(Sgd::new(0.05).momentum(0.9));
    let history = model.fit(&x, &y, &options(3).callback(CSVLogger::new(&csv))).unwrap();
    let (header, rows) = read_csv(&csv);
    assert_eq!(header, ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]);
    assert_rows_are_the_history(&header, &rows, &history);

    // 1 epoch, a checkpoint, then 2 more from it appending: the file of one 3-epoch run.
    let split = tmp.path().join("split.csv");
    let ckpt = tmp.path().join("ckpt.safetensors");
    let mut first = compiled(Sgd::new(0.05).momentum(0.9));
    let first_options =
        options(1).callback(CSVLogger::new(&split)).checkpoint(ModelCheckpoint::new(ckpt.to_str().unwrap()));
    first.fit(&x, &y, &first_options).unwrap();
    let mut resumed = Model::load(&ckpt).unwrap();
    let rest = options(3).initial_epoch(resumed.epochs_done()).callback(CSVLogger::new(&split).append(true));
    resumed.fit(&x, &y, &rest).unwrap();
    assert_eq!(std::fs::read_to_string(&split).unwrap(), std::fs::read_to_string(&csv).unwrap());
}

/// Records each hook as Keras names it.
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    stop_at: Option<(usize, usize)>,
    epoch: usize,
}

impl Callback for Recorder {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        self.calls.lock().unwrap().push("train_begin".into());
        Ok(())
    }
    fn on_train_end(&mut self, logs: Option<&Logs>, _ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        self.calls.lock().unwrap().push(format!("train_end({})", logs.is_some()));
        Ok(())
    }
    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        self.epoch = epoch;
        self.calls.lock().unwrap().push(format!("epoch_begin({epoch})"));
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _ctx: &mut CallbackContext<'_>,
    ) -> nn::Result<()> {
        let keys: Vec<&str> = logs.keys().map(String::as_str).collect();
        self.calls.lock().unwrap().push(format!("epoch_end({epoch}, {})", keys.join(" ")));
        Ok(())
    }
    fn on_train_batch_begin(&mut self, batch: usize, _ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        self.calls.lock().unwrap().push(format!("batch_begin({batch})"));
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &nn::callbacks::BatchLogs<'_>,
        ctx: &mut CallbackContext<'_>,
    ) -> nn::Result<()> {
        let loss = logs.loss().item()?;
        assert!(loss.is_finite() && logs.running()?["loss"].is_finite());
        self.calls.lock().unwrap().push(format!("batch_end({batch})"));
        if self.stop_at == Some((self.epoch, batch)) {
            ctx.stop_training();
        }
        Ok(())
    }
}

#[test]
fn a_user_callback_sees_every_hook_in_keras_order_and_can_stop_training() {
    let (x, y) = images(64);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder { calls: calls.clone(), stop_at: None, epoch: 0 };
    let mut model = compiled(Sgd::new(0.05));
    model.fit(&x, &y, &options(2).callback(recorder)).unwrap();
    let epoch = |e: usize| {
        vec![
            format!("epoch_begin({e})"),
            "batch_begin(0)".into(),
            "batch_end(0)".into(),
            "batch_begin(1)".into(),
            "batch_end(1)".into(),
            format!("epoch_end({e}, accuracy loss val_accuracy val_loss)"),
        ]
    };
    let expected: Vec<String> =
        [vec!["train_begin".to_string()], epoch(0), epoch(1), vec!["train_end(true)".to_string()]].concat();
    assert_eq!(*calls.lock().unwrap(), expected);

    // Stopping at epoch 1's first batch: the epoch ends (with its validation), no other starts.
    calls.lock().unwrap().clear();
    let recorder = Recorder { calls: calls.clone(), stop_at: Some((1, 0)), epoch: 0 };
    let mut model = compiled(Sgd::new(0.05));
    let history = model.fit(&x, &y, &options(5).callback(recorder)).unwrap();
    let mut cut_short = epoch(1);
    cut_short.drain(3..5);
    let expected: Vec<String> =
        [vec!["train_begin".to_string()], epoch(0), cut_short, vec!["train_end(true)".to_string()]].concat();
    assert_eq!(*calls.lock().unwrap(), expected);
    assert_eq!(history.epochs(), 2);
    assert_eq!(model.epochs_done(), 2);
}

#[test]
fn terminate_on_nan_stops_at_the_first_bad_batch() {
    let (x, labels) = images(64);
    // A NaN label in sample 40: with shuffling off, batch 2 of 16 samples holds it.
    let mut y = nn::to_categorical(&labels, synthetic::CLASSES).unwrap().into_data();
    y[40 * synthetic::CLASSES] = f32::NAN;
    let y = Array::new(y, [64, synthetic::CLASSES]).unwrap();
    let compiled = |optimizer: Sgd| {
        let mut model = conv_net(4).into_model().unwrap();
        model.compile(Loss::CategoricalCrossentropy, optimizer, &[]).unwrap();
        model
    };
    let calls = Arc::new(Mutex::new(0usize));
    let counted = calls.clone();
    let count = LambdaCallback::new().on_train_batch_end(move |_, _, _| {
        *counted.lock().unwrap() += 1;
        Ok(())
    });
    let base = FitOptions::new().epochs(3).batch_size(16).shuffle(false).verbose(0).terminate_on_nan(false);
    // Keras' default: training stops after the bad batch, fit returns.
    let mut model = compiled(Sgd::new(0.05));
    let history = model.fit(&x, &y, &base.clone().callback(TerminateOnNaN::new()).callback(count)).unwrap();
    assert_eq!(*calls.lock().unwrap(), 3, "batches 0, 1 and 2 ran, then training stopped");
    assert!(history.get("loss").unwrap()[0].is_nan());
    assert_eq!(history.epochs(), 1);
    // raise_error: the error names the epoch and batch (from 1).
    let mut model = compiled(Sgd::new(0.05));
    let err = model.fit(&x, &y, &base.callback(TerminateOnNaN::new().raise_error(true))).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { epoch: 1, step: 3, .. }), "{err:?}");
}

#[test]
fn model_checkpoint_refuses_what_it_cannot_do_before_training() {
    let (x, y) = images(32);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.safetensors");
    let mut model = compiled(Sgd::new(0.05));
    let before = model_bits(&model);
    let no_validation = FitOptions::new().verbose(0);
    let best = ModelCheckpoint::new(path.to_str().unwrap()).save_best_only(true);
    let err = model.fit(&x, &y, &no_validation.clone().checkpoint(best)).unwrap_err().to_string();
    assert_eq!(
        err,
        "bad option: ModelCheckpoint monitors 'val_loss', which fit does not log (it logs: loss, accuracy; pass \
         validation data for val_ metrics)"
    );
    let typo = ModelCheckpoint::new(tmp.path().join("m-{val_los}.st").to_str().unwrap());
    let err = model.fit(&x, &y, &options(1).checkpoint(typo)).unwrap_err().to_string();
    assert!(err.contains("unknown field 'val_los'"), "{err}");
    // A user loss cannot be saved whole: refused before the first epoch, weights-only works.
    let mae = nn::losses::OutputLoss::custom(|t, p| p.sub(t)?.abs()?.mean_axis(-1, false));
    model.compile(mae, Sgd::new(0.05), &[]).unwrap();
    let y1 = nn::to_categorical(&y, synthetic::CLASSES).unwrap();
    let err = model
        .fit(&x, &y1, &no_validation.clone().checkpoint(ModelCheckpoint::new(path.to_str().unwrap())))
        .unwrap_err();
    assert!(err.to_string().contains("compiled with a user loss"), "{err}");
    assert_eq!(model_bits(&model), before, "nothing was trained");
    let weights_only = ModelCheckpoint::new(path.to_str().unwrap()).save_weights_only(true);
    model.fit(&x, &y1, &no_validation.checkpoint(weights_only)).unwrap();
    assert!(path.exists());
}

#[test]
fn a_model_with_a_nan_weight_never_overwrites_a_checkpoint() {
    let (x, y) = images(32);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ckpt.safetensors");
    // At the end of epoch 2, before the checkpoint, a bias becomes NaN.
    let poison = LambdaCallback::new().on_epoch_end(|epoch, _, ctx| {
        if epoch == 1 {
            let layer = ctx.model().get_layer("dense_2")?;
            let mut weights = layer.get_weights()?;
            let mut bias = weights[1].data().to_vec();
            bias[0] = f32::NAN;
            weights[1] = Array::new(bias, weights[1].dims().to_vec())?;
            layer.set_weights(&weights)?;
        }
        Ok(())
    });
    let mut model = compiled(Sgd::new(0.05));
    let options = FitOptions::new()
        .epochs(2)
        .verbose(0)
        .callback(poison)
        .checkpoint(ModelCheckpoint::new(path.to_str().unwrap()));
    let err = model.fit(&x, &y, &options).unwrap_err();
    assert!(
        matches!(&err, Error::Saving(nn::SavingError::NonFiniteWeights { name, .. }) if name == "dense_2/bias"),
        "{err:?}"
    );
    assert_eq!(Model::load(&path).unwrap().epochs_done(), 1, "epoch 1's checkpoint is kept");
}
