//! Every field of `FitOptions` has its effect on a `Sequential` and on the same model written
//! with the functional API: one `fit` serves both.

mod synthetic;

use std::io::Write;
use std::sync::{Arc, Mutex};

use nn::callbacks::{LambdaCallback, ModelCheckpoint};
use nn::functional::{Apply, Input};
use nn::layers::{Dense, Flatten};
use nn::Activation::{Relu, Softmax};
use nn::{Array, Error, FitOptions, History, Loss, Metric, Model, ProgressOutput, Sequential, Sgd};
use synthetic::{images, CLASSES, SIDE};

/// What the tests need of a model, for both kinds.
trait Trained {
    fn fit(&mut self, x: &Array, y: &Array, options: &FitOptions) -> nn::Result<History>;
    fn evaluate(&mut self, x: &Array, y: &Array) -> nn::Logs;
    fn bits(&self) -> Vec<Vec<u32>>;
    fn epochs_done(&self) -> usize;
}

impl Trained for Sequential {
    fn fit(&mut self, x: &Array, y: &Array, options: &FitOptions) -> nn::Result<History> {
        Sequential::fit(self, x, y, options)
    }
    fn evaluate(&mut self, x: &Array, y: &Array) -> nn::Logs {
        Sequential::evaluate(self, x, y, 256).unwrap()
    }
    fn bits(&self) -> Vec<Vec<u32>> {
        synthetic::model_bits(self.model().unwrap())
    }
    fn epochs_done(&self) -> usize {
        Sequential::epochs_done(self)
    }
}

impl Trained for Model {
    fn fit(&mut self, x: &Array, y: &Array, options: &FitOptions) -> nn::Result<History> {
        Model::fit(self, &[x], &[y], options)
    }
    fn evaluate(&mut self, x: &Array, y: &Array) -> nn::Logs {
        Model::evaluate(self, &[x], &[y], 256).unwrap()
    }
    fn bits(&self) -> Vec<Vec<u32>> {
        synthetic::model_bits(self)
    }
    fn epochs_done(&self) -> usize {
        Model::epochs_done(self)
    }
}

/// A small dense classifier of the synthetic images, no dropout (so only shuffling depends on
/// the seed), compiled; as a `Sequential` or as a functional `Model`.
fn model(functional: bool, loss: Loss) -> Box<dyn Trained> {
    let device = nn::device::cpu();
    if functional {
        let input = Input::new([SIDE, SIDE, 1]);
        let x = Flatten::new().apply(&input).unwrap();
        let x = Dense::new(16).activation(Relu).apply(&x).unwrap();
        let out = Dense::new(CLASSES).activation(Softmax).apply(&x).unwrap();
        let mut m = Model::with_device(&[&input], &[&out], &device, 3).unwrap();
        m.compile(loss, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
        Box::new(m)
    } else {
        let mut m = Sequential::with_device(&device).seed(3);
        m.add(Flatten::new().input_shape([SIDE, SIDE, 1])).unwrap();
        m.add(Dense::new(16).activation(Relu)).unwrap();
        m.add(Dense::new(CLASSES).activation(Softmax)).unwrap();
        m.compile(loss, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
        Box::new(m)
    }
}

/// Runs `check` on a `Sequential` and on the functional model (sparse labels).
fn for_both(check: impl Fn(&dyn Fn() -> Box<dyn Trained>, &str)) {
    for functional in [false, true] {
        let kind = if functional { "functional" } else { "sequential" };
        check(&|| model(functional, Loss::SparseCategoricalCrossentropy), kind);
    }
}

fn quiet() -> FitOptions {
    FitOptions::new().batch_size(16).verbose(0).seed(5)
}

/// Counts the batches of each `fit`.
fn batch_counter() -> (LambdaCallback, Arc<Mutex<usize>>) {
    let count = Arc::new(Mutex::new(0));
    let sink = count.clone();
    (
        LambdaCallback::new().on_train_batch_end(move |_, _, _| {
            *sink.lock().unwrap() += 1;
            Ok(())
        }),
        count,
    )
}

#[test]
fn epochs_and_initial_epoch() {
    let (x, y) = images(64);
    for_both(|make, kind| {
        let mut m = make();
        let history = m.fit(&x, &y, &quiet().epochs(3)).unwrap();
        assert_eq!((history.epochs(), m.epochs_done()), (3, 3), "{kind}");
        let mut resumed = make();
        let history = resumed.fit(&x, &y, &quiet().epochs(3).initial_epoch(1)).unwrap();
        assert_eq!((history.epochs(), resumed.epochs_done()), (2, 3), "{kind}: epochs 2 and 3 ran");
        assert_ne!(resumed.bits(), m.bits(), "{kind}: other epochs, other shuffles");
    });
}

#[test]
fn batch_size_sets_the_steps() {
    let (x, y) = images(64);
    for_both(|make, kind| {
        for (batch_size, steps) in [(16, 4), (64, 1), (50, 2)] {
            let (counter, count) = batch_counter();
            make().fit(&x, &y, &quiet().batch_size(batch_size).callback(counter)).unwrap();
            assert_eq!(*count.lock().unwrap(), steps, "{kind}, batch size {batch_size}");
        }
    });
}

/// A writer a test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn verbose_and_output() {
    let (x, y) = images(64);
    for_both(|make, kind| {
        let printed = |verbose: u8, tty: bool| {
            let captured = Captured::default();
            let output =
                ProgressOutput::new(captured.clone(), tty).redraw_interval(std::time::Duration::ZERO);
            make().fit(&x, &y, &quiet().epochs(2).verbose(verbose).output(output)).unwrap();
            captured.text()
        };
        assert_eq!(printed(0, true), "", "{kind}");
        let lines = printed(2, false);
        assert!(
            lines.starts_with("Epoch 1/2\n4/4 - ") && lines.contains("\nEpoch 2/2\n4/4 - "),
            "{kind}: {lines}"
        );
        assert!(lines.contains(" - accuracy: ") && !lines.contains('\r'), "{kind}: {lines}");
        let bar = printed(1, true);
        assert!(bar.contains('\r') && bar.contains("━━━━━") && bar.contains("ETA"), "{kind}: {bar:?}");
        // Not a terminal: verbose 1 prints verbose 2's lines.
        let piped = printed(1, false);
        assert!(!piped.contains('\r') && piped.lines().count() == lines.lines().count(), "{kind}: {piped:?}");
        let err = make().fit(&x, &y, &quiet().verbose(3)).unwrap_err().to_string();
        assert_eq!(err, "bad option: verbose is 0, 1 or 2, not 3", "{kind}");
    });
}

#[test]
fn shuffle_and_seed() {
    let (x, y) = images(64);
    for_both(|make, kind| {
        let run = |options: FitOptions| {
            let mut m = make();
            m.fit(&x, &y, &options.epochs(2)).unwrap();
            m.bits()
        };
        assert_eq!(run(quiet().seed(1)), run(quiet().seed(1)), "{kind}: same seed, same run");
        assert_ne!(run(quiet().seed(1)), run(quiet().seed(2)), "{kind}: the seed picks the shuffles");
        let unshuffled = run(quiet().shuffle(false).seed(1));
        assert_eq!(
            unshuffled,
            run(quiet().shuffle(false).seed(2)),
            "{kind}: without shuffling the seed has nothing to do"
        );
        assert_ne!(unshuffled, run(quiet().seed(1)), "{kind}: shuffling changes the batches");
    });
}

#[test]
fn validation_split_holds_out_the_last_samples() {
    let (x, y) = images(64);
    let (head, tail) = ((x.slice(0, 48), y.slice(0, 48)), (x.slice(48, 64), y.slice(48, 64)));
    for_both(|make, kind| {
        let mut split = make();
        let h_split = split.fit(&x, &y, &quiet().epochs(2).validation_split(0.25)).unwrap();
        let mut given = make();
        let h_given = given
            .fit(&head.0, &head.1, &quiet().epochs(2).validation_data(tail.0.clone(), tail.1.clone()))
            .unwrap();
        assert_eq!(split.bits(), given.bits(), "{kind}: trained on the first 48 samples only");
        assert_eq!(h_split.history, h_given.history, "{kind}: validated on the last 16");
        let err = make().fit(&x, &y, &quiet().validation_split(1.0)).unwrap_err().to_string();
        assert_eq!(err, "bad option: validation_split 1 is not in [0, 1)", "{kind}");
        let both = quiet().validation_split(0.25).validation_data(tail.0.clone(), tail.1.clone());
        let err = make().fit(&x, &y, &both).unwrap_err().to_string();
        assert!(err.contains("validation_split 0.25 and validation_data both given"), "{kind}: {err}");
    });
}

#[test]
fn validation_data_is_evaluated_after_each_epoch() {
    let (x, y) = images(64);
    let (xv, yv) = (x.slice(0, 20), y.slice(0, 20));
    for_both(|make, kind| {
        let mut m = make();
        let history = m.fit(&x, &y, &quiet().epochs(2).validation_data(xv.clone(), yv.clone())).unwrap();
        let scores = m.evaluate(&xv, &yv);
        assert_eq!(history.get("val_loss").unwrap()[1], scores["loss"], "{kind}");
        assert_eq!(history.get("val_accuracy").unwrap()[1], scores["accuracy"], "{kind}");
    });
}

#[test]
fn checkpoint_saves_every_epoch() {
    let (x, y) = images(32);
    for_both(|make, kind| {
        let tmp = tempfile::tempdir().unwrap();
        let template = tmp.path().join("m-{epoch}.safetensors");
        let mut m = make();
        m.fit(&x, &y, &quiet().epochs(2).checkpoint(ModelCheckpoint::new(template.to_str().unwrap())))
            .unwrap();
        for epoch in 1..=2 {
            let loaded = Model::load(tmp.path().join(format!("m-{epoch}.safetensors"))).unwrap();
            assert_eq!(loaded.epochs_done(), epoch, "{kind}");
            assert_eq!(loaded.class_name(), if kind == "functional" { "Functional" } else { "Sequential" });
        }
        let last = Model::load(tmp.path().join("m-2.safetensors")).unwrap();
        assert_eq!(synthetic::model_bits(&last), m.bits(), "{kind}");
    });
}

#[test]
fn terminate_on_nan_names_the_first_bad_step_or_the_epoch() {
    let (x, labels) = images(64);
    let mut y = nn::to_categorical(&labels, CLASSES).unwrap().into_data();
    y[40 * CLASSES] = f32::NAN;
    let y = Array::new(y, [64, CLASSES]).unwrap();
    for functional in [false, true] {
        let make = || model(functional, Loss::CategoricalCrossentropy);
        let options = quiet().shuffle(false).epochs(2);
        let on = make().fit(&x, &y, &options).unwrap_err();
        assert!(matches!(on, Error::NonFiniteLoss { epoch: 1, step: 3, .. }), "{functional}: {on:?}");
        let off = make().fit(&x, &y, &options.terminate_on_nan(false)).unwrap_err();
        assert!(matches!(off, Error::NonFiniteLoss { epoch: 1, step: 4, .. }), "{functional}: {off:?}");
    }
}

#[test]
fn callbacks_are_called() {
    let (x, y) = images(64);
    for_both(|make, kind| {
        let (counter, count) = batch_counter();
        make().fit(&x, &y, &quiet().epochs(2).callback(counter)).unwrap();
        assert_eq!(*count.lock().unwrap(), 8, "{kind}");
    });
}

#[test]
fn validation_data_for_several_inputs_and_outputs() {
    let (a, b) = (Input::named("a", [4]), Input::named("b", [2]));
    let joined =
        nn::functional::MergeLayer::apply_many(nn::functional::Concatenate::new(-1), &[&a, &b]).unwrap();
    let class = Dense::new(3).activation(Softmax).name("class").apply(&joined).unwrap();
    let flag = Dense::new(1).activation(nn::Activation::Sigmoid).name("flag").apply(&b).unwrap();
    let mut m = Model::with_device(&[&a, &b], &[&class, &flag], &nn::device::cpu(), 2).unwrap();
    let losses = nn::losses::Losses::from([Loss::SparseCategoricalCrossentropy, Loss::BinaryCrossentropy]);
    m.compile(losses, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    let values = |n: usize, d: usize| {
        Array::new((0..n * d).map(|i| ((i * 7 % 11) as f32) / 11.0).collect(), [n, d]).unwrap()
    };
    let (xa, xb) = (values(24, 4), values(24, 2));
    let labels = Array::new((0..24).map(|i| (i % 3) as f32).collect(), [24]).unwrap();
    let flags = Array::new((0..24).map(|i| (i % 2) as f32).collect(), [24, 1]).unwrap();
    let (va, vb, vl, vf) = (xa.slice(0, 8), xb.slice(0, 8), labels.slice(0, 8), flags.slice(0, 8));
    let options =
        quiet().epochs(2).validation_data(vec![va.clone(), vb.clone()], vec![vl.clone(), vf.clone()]);
    let history = m.fit(&[&xa, &xb], &[&labels, &flags], &options).unwrap();
    let scores = m.evaluate(&[&va, &vb], &[&vl, &vf], 256).unwrap();
    for key in ["loss", "class_loss", "class_accuracy", "flag_loss", "flag_accuracy"] {
        assert_eq!(history.get(&format!("val_{key}")).unwrap()[1], scores[key], "{key}");
    }
    let wrong = quiet().validation_data(va, vl);
    let err = m.fit(&[&xa, &xb], &[&labels, &flags], &wrong).unwrap_err().to_string();
    assert!(err.contains("validation_data: the model has 2 inputs (a, b) but 1 arrays"), "{err}");
}
