//! `cargo xtask train-mnist` and `cargo xtask summary`.

use nn::callbacks::{CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau};
use nn::{Adam, FitOptions, Loss, Metric, Model, Optimizer, Sgd};

use crate::args::Args;
use crate::data;
use crate::ranks::{InjectedFault, Ranks};

/// Epochs the lecture trained each model for (model6: the course's 10).
fn lecture_epochs(model: &str) -> usize {
    match model {
        "model5" => 100,
        "model6" => 10,
        _ => 30,
    }
}

/// The optimizer `--optimizer` names (default: the lecture's SGD; for model6 Adam with a
/// cosine decay over the run), for a run of `steps` steps.
fn optimizer(args: &Args, model: &str, steps: u64) -> Result<Optimizer, String> {
    let default = if model == "model6" { "adam-cosine" } else { "sgd" };
    Ok(match args.value("optimizer").unwrap_or(default) {
        "sgd" => Sgd::new(args.get("lr", nn::zoo::LECTURE_LEARNING_RATE)?).into(),
        "adam" => Adam::new(args.get("lr", 0.001f32)?).into(),
        "adam-cosine" => {
            let lr = args.get("lr", 0.001f32)?;
            Adam::new(nn::optimizers::schedules::CosineDecay::new(lr, steps.max(1))).into()
        }
        other => return Err(format!("--optimizer: unknown optimizer '{other}' (sgd, adam or adam-cosine)")),
    })
}

/// A lecture model, as a `Sequential` or written with the functional API (`functional`); the
/// same layers, weights and training either way.
fn lecture_model(name: &str, functional: bool, device: &nn::Device, seed: u64) -> Result<Model, String> {
    let model = if functional {
        nn::zoo::functional_by_name(name, device, seed)
    } else {
        nn::zoo::by_name(name, device, seed).and_then(nn::Sequential::into_model)
    };
    model.map_err(|e| e.to_string())
}

/// What `--report FILE.json` writes.
#[derive(serde::Serialize)]
struct Report<'a> {
    model: &'a str,
    backend: String,
    epochs: usize,
    epoch_seconds: &'a [f64],
    train_loss: &'a [f32],
    train_accuracy: &'a [f32],
    #[serde(skip_serializing_if = "Option::is_none")]
    val_accuracy: Option<&'a [f32]>,
    test_loss: f32,
    test_accuracy: f32,
    wrong: usize,
    /// Processes that trained together (`--distributed`).
    ranks: usize,
}

/// `--bucket-kb N|fused`: the gradient buckets' cap in KiB (0: one per variable), or `fused`
/// for one all-reduce after the backward pass.
pub(crate) fn parse_bucket_kb(text: &str) -> Result<usize, String> {
    match text {
        "fused" => Ok(usize::MAX),
        _ => text
            .parse::<usize>()
            .map(|kb| kb.saturating_mul(1024))
            .map_err(|_| format!("--bucket-kb: expected KiB or 'fused', got '{text}'")),
    }
}

pub fn summary(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &["model"], &["functional"])?;
    let name = args.value("model").unwrap_or("model5");
    let model = lecture_model(name, args.switch("functional"), &nn::device::cpu(), 0)?;
    print!("{}", model.summary().map_err(|e| e.to_string())?);
    Ok(())
}

pub fn train_mnist(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(
        argv,
        &[
            "model",
            "epochs",
            "batch-size",
            "optimizer",
            "lr",
            "backend",
            "data",
            "dataset",
            "seed",
            "verbose",
            "report",
            "min-accuracy",
            "save",
            "save-weights",
            "checkpoint",
            "resume",
            "plot",
            "history",
            "early-stopping",
            "csv",
            "fail-at",
            "bucket-kb",
            "adapter",
        ],
        &["normalize", "validate", "functional", "reduce-lr-on-plateau", "distributed"],
    )?;
    let ranks = Ranks::new(args.switch("distributed"))?;
    train(&args, &ranks).map_err(|e| ranks.fail(e))
}

/// `train-mnist` on `ranks`: every rank runs this; only the chief prints and writes files.
fn train(args: &Args, ranks: &Ranks) -> Result<(), String> {
    let chief = ranks.is_chief();
    let name = args.value("model").unwrap_or("model5").to_string();
    let epochs = args.get("epochs", lecture_epochs(&name))?;
    let batch_size = args.get("batch-size", 128usize)?;
    let seed = args.get("seed", 1u64)?;
    let verbose = args.get("verbose", 2u8)?;
    let functional = args.switch("functional");
    // Parsed before training, so a typo fails at once rather than after the run.
    let min_accuracy: Option<f32> = args.optional("min-accuracy")?;
    let patience: Option<usize> = args.optional("early-stopping")?;
    // Checked before training; built once the number of steps is known.
    optimizer(args, &name, 1)?;
    let fault = args.value("fail-at").map(InjectedFault::parse).transpose()?;
    let bucket_bytes = args.value("bucket-kb").map(parse_bucket_kb).transpose()?;
    if bucket_bytes.is_some() && !args.switch("distributed") {
        return Err("--bucket-kb: only with --distributed (one process exchanges no gradients)".into());
    }
    let kind: nn::DeviceKind =
        args.value("backend").unwrap_or("cpu").parse().map_err(|e| format!("--backend: {e}"))?;
    let device = ranks.device(kind, args.optional("adapter")?).map_err(|e| format!("--backend: {e}"))?;
    // A checkpoint brings its own architecture, optimizer state and epoch count.
    let resumed = args.value("resume").is_some();
    let mut model = match args.value("resume") {
        Some(path) => {
            let model = Model::load_on(path, &device).map_err(|e| format!("--resume: {e}"))?;
            if functional && model.class_name() == "Sequential" {
                return Err(format!(
                    "--resume: {path} holds a Sequential model; drop --functional to resume it"
                ));
            }
            model
        }
        None => lecture_model(&name, functional, &device, seed)?,
    };
    ranks.attach(&mut model, bucket_bytes);
    let dataset = data::dataset_kind(args.value("dataset"))?;
    // The lecture feeds raw 0-255 pixel values; --normalize scales them to [0, 1] (model6's
    // recipe always does).
    let shape = model.input_shapes().remove(0);
    let normalize = args.switch("normalize") || name == "model6";
    let data::Prepared { x_train, y_train, x_test, y_test } =
        data::load(args.value("data"), dataset, &shape, normalize)?;

    if verbose > 0 && chief {
        println!("backend: {}", device.name());
        print!("{}", model.summary().map_err(|e| e.to_string())?);
    }
    if model.is_compiled() {
        if chief {
            println!("resuming after epoch {} with the checkpoint's optimizer", model.epochs_done());
        }
    } else {
        let steps = (epochs * x_train.len().div_ceil(batch_size)) as u64;
        model
            .compile(Loss::CategoricalCrossentropy, optimizer(args, &name, steps)?, &[Metric::Accuracy])
            .map_err(|e| e.to_string())?;
    }
    // TerminateOnNaN is on (FitOptions' default): a NaN loss ends the run with an error naming
    // the epoch and batch, and the last checkpoint is kept.
    let mut fit = FitOptions::new()
        .epochs(epochs)
        .batch_size(batch_size)
        .verbose(verbose)
        .seed(seed)
        .initial_epoch(model.epochs_done());
    if let Some(path) = args.value("csv") {
        // A resumed run continues the file of the run it resumes.
        fit = fit.callback(CSVLogger::new(path).append(resumed));
    }
    if let Some(patience) = patience {
        fit = fit
            .callback(EarlyStopping::new().monitor("val_loss").patience(patience).restore_best_weights(true));
    }
    if args.switch("reduce-lr-on-plateau") {
        fit = fit.callback(ReduceLROnPlateau::new().monitor("val_loss").verbose(verbose > 0));
    }
    if let Some(path) = args.value("checkpoint") {
        fit = fit.checkpoint(ModelCheckpoint::new(path));
    }
    if let Some(fault) = fault {
        fit = fit.callback(fault);
    }
    // Test accuracy after every epoch, as the lecture's curves show it: asked for, drawn by
    // --plot, or watched by the callbacks that monitor val_loss.
    let validate = args.switch("validate")
        || args.value("plot").is_some()
        || patience.is_some()
        || args.switch("reduce-lr-on-plateau");
    if validate {
        fit = fit.validation_data(x_test.clone(), y_test.clone());
    }
    let history = model.fit(&x_train, &y_train, &fit).map_err(|e| e.to_string())?;
    let eval_start = std::time::Instant::now();
    let scores = model.evaluate(&x_test, &y_test, 256).map_err(|e| e.to_string())?;
    let eval_seconds = eval_start.elapsed().as_secs_f64();
    if !chief {
        return Ok(());
    }

    if let Some(path) = args.value("plot") {
        history.plot(path).map_err(|e| format!("--plot: {e}"))?;
        println!("plotted the history to {path}");
    }
    if let Some(path) = args.value("history") {
        let saved = if path.ends_with(".csv") { history.save_csv(path) } else { history.save_json(path) };
        saved.map_err(|e| format!("--history: {e}"))?;
    }
    if let Some(path) = args.value("save") {
        // The whole model (architecture + weights), loadable with `nn::Model::load`.
        model.save(path).map_err(|e| format!("--save: {e}"))?;
        println!("saved the model to {path}");
    }
    if let Some(path) = args.value("save-weights") {
        // The weights alone: the same bytes for the same weights, whatever the model's kind.
        model.save_weights(path).map_err(|e| format!("--save-weights: {e}"))?;
        println!("saved the weights to {path}");
    }

    let (test_loss, test_accuracy) = (scores["loss"], scores["accuracy"]);
    let wrong = ((1.0 - test_accuracy as f64) * x_test.len() as f64).round() as usize;
    println!("test loss: {test_loss:.4} (evaluated in {eval_seconds:.2}s)");
    println!("test accuracy: {test_accuracy:.4} ({wrong}/{} wrong)", x_test.len());

    if let Some(path) = args.value("report") {
        let report = Report {
            model: &name,
            backend: device.name(),
            epochs,
            epoch_seconds: &history.epoch_seconds,
            train_loss: history.get("loss").unwrap_or(&[]),
            train_accuracy: history.get("accuracy").unwrap_or(&[]),
            val_accuracy: history.get("val_accuracy"),
            test_loss,
            test_accuracy,
            wrong,
            ranks: ranks.size(),
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("--report: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("cannot write report {path}: {e}"))?;
    }
    if let Some(min) = min_accuracy {
        if test_accuracy < min {
            return Err(format!("test accuracy {test_accuracy:.4} is below --min-accuracy {min}"));
        }
    }
    Ok(())
}
