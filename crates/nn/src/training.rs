//! `compile`, `fit`, `evaluate` and `predict` for [`Sequential`] models, with Keras' semantics:
//! losses and metrics are means over the samples of an epoch, batches are reshuffled each
//! epoch, and progress is printed as Keras prints it (see [`crate::progress`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tensor::{no_grad, Device, Tensor};

use crate::array::{to_categorical, Array};
use crate::callbacks::{ModelCheckpoint, NanGuard};
use crate::error::{Error, Result};
use crate::losses::{Loss, Prediction};
use crate::optimizers::{Optimizer, OptimizerState};
pub use crate::progress::epoch_line;
use crate::progress::{Progress, ProgressOutput};
use crate::sequential::Sequential;

/// Metrics reported besides the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of correct predictions: the argmax matches for several classes; for one
    /// output column (or binary cross-entropy), the prediction rounded at 0.5 matches.
    Accuracy,
}

/// A model's loss, optimizer (with its state) and metrics.
pub struct Compiled {
    pub(crate) loss: Loss,
    pub(crate) optimizer: OptimizerState,
    pub(crate) metrics: Vec<Metric>,
}

/// Options of [`Sequential::fit`], with Keras' defaults.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Passes over the training data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32).
    pub batch_size: usize,
    /// 0 silent, 1 a live progress bar (on a terminal; else as 2), 2 one line per epoch (default 1).
    pub verbose: u8,
    /// Reshuffle the samples before each epoch (default true).
    pub shuffle: bool,
    /// Fraction of the data (taken from the end, before shuffling) held out for validation.
    pub validation_split: f32,
    /// Data evaluated after each epoch (overrides `validation_split`).
    pub validation_data: Option<(Array, Array)>,
    /// Seed for shuffling and dropout (default: the model's seed).
    pub seed: Option<u64>,
    /// Epochs already done (default 0): training runs epochs `initial_epoch + 1 ..= epochs`,
    /// with the shuffles and dropout masks an uninterrupted run would use for them.
    pub initial_epoch: usize,
    /// Saves the model during training (default none).
    pub checkpoint: Option<ModelCheckpoint>,
    /// Stop with [`Error::NonFiniteLoss`] at the first step whose loss is NaN or infinite
    /// (Keras' `TerminateOnNaN`; default on). The loss is read after every step on the CPU,
    /// and every [`DEVICE_NAN_CHECK_INTERVAL`](crate::callbacks::DEVICE_NAN_CHECK_INTERVAL) steps and at the end of each epoch on a GPU
    /// (a read waits for the GPU), the error still naming the first bad step. Off, an epoch
    /// whose mean loss is not finite still ends training, naming its last step.
    pub terminate_on_nan: bool,
    /// Where progress goes (default: standard output; the live bar only on a terminal).
    pub output: Option<ProgressOutput>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            verbose: 1,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            seed: None,
            initial_epoch: 0,
            checkpoint: None,
            terminate_on_nan: true,
            output: None,
        }
    }
}

impl FitOptions {
    /// Keras' defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Holds out the last `fraction` of the samples for validation.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }
    /// Evaluates on `(x, y)` after each epoch.
    pub fn validation_data(mut self, x: Array, y: Array) -> Self {
        self.validation_data = Some((x, y));
        self
    }
    /// Seeds shuffling and dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Resumes after `epochs_done` epochs (Keras' `initial_epoch`), e.g. a loaded checkpoint's
    /// [`Sequential::epochs_done`]; `epochs` stays the total.
    pub fn initial_epoch(mut self, epochs_done: usize) -> Self {
        self.initial_epoch = epochs_done;
        self
    }
    /// Saves the model during training as `checkpoint` says.
    pub fn checkpoint(mut self, checkpoint: ModelCheckpoint) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }
    /// Turns the per-step NaN check on or off.
    pub fn terminate_on_nan(mut self, on: bool) -> Self {
        self.terminate_on_nan = on;
        self
    }
    /// Sends progress to `output` instead of standard output.
    pub fn output(mut self, output: ProgressOutput) -> Self {
        self.output = Some(output);
        self
    }
}

/// What `fit` returns: per-epoch values of the loss and metrics (Keras' `history.history`),
/// keyed `loss`, `accuracy`, `val_loss`, `val_accuracy`, and the seconds each epoch took.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Metric name -> one value per epoch.
    pub history: BTreeMap<String, Vec<f32>>,
    /// Wall-clock seconds of each epoch's training (validation excluded).
    pub epoch_seconds: Vec<f64>,
}

impl History {
    /// The values of one metric, e.g. `history.get("accuracy")`.
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        self.history.get(key).map(Vec::as_slice)
    }
}

/// Sums of loss and correct predictions over the batches of an epoch, kept on the device so
/// that no step waits for a read-back.
pub(crate) struct RunningTotals {
    loss_sum: Option<Tensor>,
    correct: Option<Tensor>,
    samples: usize,
}

impl RunningTotals {
    pub(crate) fn new() -> Self {
        RunningTotals { loss_sum: None, correct: None, samples: 0 }
    }
    pub(crate) fn add(&mut self, loss: &Tensor, correct: Option<Tensor>, n: usize) -> Result<()> {
        let weighted = loss.mul_scalar(n as f32)?;
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(s) => s.add(&weighted)?,
            None => weighted,
        });
        if let Some(c) = correct {
            self.correct = Some(match self.correct.take() {
                Some(s) => s.add(&c)?,
                None => c,
            });
        }
        self.samples += n;
        Ok(())
    }
    /// (mean loss, accuracy)
    pub(crate) fn means(&self) -> Result<(f32, Option<f32>)> {
        let n = self.samples.max(1) as f32;
        let loss = self.loss_sum.as_ref().map(|t| t.item()).transpose()?.unwrap_or(f32::NAN) / n;
        let acc = self.correct.as_ref().map(|t| t.item()).transpose()?.map(|c| c / n);
        Ok((loss, acc))
    }
}

impl Sequential {
    /// Sets the loss, optimizer and metrics, as Keras' `compile`.
    pub fn compile(&mut self, loss: Loss, optimizer: impl Into<Optimizer>, metrics: &[Metric]) -> Result<()> {
        let optimizer = optimizer.into();
        if !(optimizer.learning_rate() > 0.0 && optimizer.learning_rate().is_finite()) {
            return Err(Error::Build(format!(
                "learning rate {} must be positive",
                optimizer.learning_rate()
            )));
        }
        self.compiled =
            Some(Compiled { loss, optimizer: OptimizerState::new(optimizer), metrics: metrics.to_vec() });
        Ok(())
    }

    /// Whether [`compile`](Self::compile) was called (or the model was loaded from a compiled
    /// save, such as a checkpoint).
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    fn compiled(&self) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or_else(|| Error::Build("call compile() before fit() or evaluate()".into()))
    }

    /// Checks `x`/`y` against the model (building it from `x` if needed) and returns the labels
    /// as the model's loss wants them (sparse labels one-hot encoded).
    fn prepare(&mut self, x: &Array, y: &Array, what: &str) -> Result<Array> {
        if x.is_empty() {
            return Err(Error::Data(format!("{what}: no samples")));
        }
        if x.len() != y.len() {
            return Err(Error::Data(format!("{what}: {} samples in x but {} in y", x.len(), y.len())));
        }
        self.build(&x.dims()[1..])?;
        let loss = self.compiled()?.loss;
        prepare_labels(loss, y, self.output_shape().expect("built"), what)
    }

    fn correct_count(&self, pred: &Prediction, y: &Tensor) -> Result<Option<Tensor>> {
        let compiled = self.compiled()?;
        if !compiled.metrics.contains(&Metric::Accuracy) {
            return Ok(None);
        }
        let p = match pred {
            Prediction::Output(p) | Prediction::SoftmaxLogits(p) => p,
        };
        let binary = compiled.loss == Loss::BinaryCrossentropy;
        Ok(Some(correct_count(p, y, binary)?))
    }

    /// Trains the model, as Keras' `fit`.
    pub fn fit(&mut self, x: &Array, y: &Array, options: &FitOptions) -> Result<History> {
        if options.batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        let y = self.prepare(x, y, "fit")?;
        // The inputs are borrowed, not copied (the training set is 188 MB of floats), unless
        // a validation split slices them.
        let (x_train, y_train, validation) = match &options.validation_data {
            Some((vx, vy)) => {
                (Cow::Borrowed(x), y, Some((Cow::Borrowed(vx), self.prepare(vx, vy, "validation_data")?)))
            }
            None if options.validation_split > 0.0 => {
                let n_val = (x.len() as f32 * options.validation_split) as usize;
                let split = x.len() - n_val;
                if n_val == 0 || split == 0 {
                    return Err(Error::Data(format!(
                        "validation_split {} leaves no samples",
                        options.validation_split
                    )));
                }
                (
                    Cow::Owned(x.slice(0, split)),
                    y.slice(0, split),
                    Some((Cow::Owned(x.slice(split, x.len())), y.slice(split, x.len()))),
                )
            }
            None => (Cow::Borrowed(x), y, None),
        };
        if options.initial_epoch > options.epochs {
            return Err(Error::Options(format!(
                "initial_epoch {} is after the last epoch ({})",
                options.initial_epoch, options.epochs
            )));
        }
        let log_keys = self.log_keys(validation.is_some())?;
        let mut checkpoint = options.checkpoint.as_ref().map(|c| c.start(&log_keys)).transpose()?;
        let seed = options.seed.unwrap_or(self.seed);
        let n = x_train.len();
        let steps = n.div_ceil(options.batch_size);
        let mut history = History::default();
        let mut order: Vec<usize> = (0..n).collect();
        let mut batches = BatchSource::new(vec![&*x_train, &y_train], &self.device)?;
        let output = options.output.clone().unwrap_or_else(ProgressOutput::stdout);
        let mut progress = Progress::new(output, options.verbose, steps);
        if options.shuffle {
            // Each epoch shuffles the previous epoch's order: replay the skipped ones.
            for epoch in 1..=options.initial_epoch {
                shuffle_for_epoch(&mut order, seed, epoch);
            }
        }
        for epoch in options.initial_epoch + 1..=options.epochs {
            progress.begin_epoch(epoch, options.epochs);
            if options.shuffle {
                shuffle_for_epoch(&mut order, seed, epoch);
            }
            let start = Instant::now();
            let mut totals = RunningTotals::new();
            let mut nan_guard = options.terminate_on_nan.then(|| NanGuard::for_device(&self.device));
            for (step, batch) in order.chunks(options.batch_size).enumerate() {
                let [xb, yb]: [Tensor; 2] =
                    batches.gather(batch)?.try_into().expect("one tensor per array: inputs and labels");
                let (loss, correct) = self.train_step(&xb, &yb, step_seed(seed, epoch, steps, step))?;
                totals.add(&loss, correct, batch.len())?;
                if let Some(guard) = &mut nan_guard {
                    guard.after_step(epoch, step + 1, &loss, totals.loss_sum.as_ref())?;
                }
                progress.step(step + 1, || totals.means())?;
            }
            if let Some(guard) = &mut nan_guard {
                guard.check(epoch, totals.loss_sum.as_ref())?;
            }
            let (loss, acc) = totals.means()?;
            let seconds = start.elapsed().as_secs_f64();
            if !loss.is_finite() {
                return Err(Error::NonFiniteLoss { epoch, step: steps, loss });
            }
            let mut line = vec![("loss".to_string(), loss)];
            line.extend(acc.map(|a| ("accuracy".to_string(), a)));
            if let Some((vx, vy)) = &validation {
                let (vl, va) = self.evaluate_prepared(vx, vy, options.batch_size.max(256))?;
                line.push(("val_loss".into(), vl));
                line.extend(va.map(|a| ("val_accuracy".to_string(), a)));
            }
            for (k, v) in &line {
                history.history.entry(k.clone()).or_default().push(*v);
            }
            history.epoch_seconds.push(seconds);
            progress.end_epoch(seconds, &line);
            self.epochs_done = epoch;
            if let Some(checkpoint) = &mut checkpoint {
                checkpoint.on_epoch_end(self, epoch, &line)?;
            }
        }
        Ok(history)
    }

    /// The names `fit` logs each epoch: `loss`, `accuracy` when compiled with it, and their
    /// `val_` versions with validation data.
    fn log_keys(&self, validation: bool) -> Result<Vec<&'static str>> {
        let accuracy = self.compiled()?.metrics.contains(&Metric::Accuracy);
        let mut keys = vec!["loss"];
        keys.extend(accuracy.then_some("accuracy"));
        if validation {
            keys.push("val_loss");
            keys.extend(accuracy.then_some("val_accuracy"));
        }
        Ok(keys)
    }

    /// One gradient step; returns the batch's mean loss and correct count (on the device).
    fn train_step(&mut self, x: &Tensor, y: &Tensor, step_seed: u64) -> Result<(Tensor, Option<Tensor>)> {
        let loss_fn = self.compiled()?.loss;
        let pred = self.forward(x, true, step_seed, loss_fn.uses_softmax_logits())?;
        let loss = loss_fn.compute(&pred, y)?;
        let grads = loss.backward()?;
        let correct = no_grad(|| self.correct_count(&pred, y))?;
        let mut optimizer = self.compiled.take().expect("compiled checked");
        let result = optimizer.optimizer.apply(&mut self.variables_mut(), &grads);
        self.compiled = Some(optimizer);
        result?;
        Ok((loss.detach(), correct))
    }

    fn evaluate_prepared(&self, x: &Array, y: &Array, batch_size: usize) -> Result<(f32, Option<f32>)> {
        let loss_fn = self.compiled()?.loss;
        let mut totals = RunningTotals::new();
        no_grad(|| -> Result<()> {
            for start in (0..x.len()).step_by(batch_size) {
                let end = (start + batch_size).min(x.len());
                let xb = x.slice(start, end).to_tensor(&self.device)?;
                let yb = y.slice(start, end).to_tensor(&self.device)?;
                let pred = self.forward(&xb, false, 0, loss_fn.uses_softmax_logits())?;
                let loss = loss_fn.compute(&pred, &yb)?;
                totals.add(&loss, self.correct_count(&pred, &yb)?, end - start)?;
            }
            Ok(())
        })?;
        totals.means()
    }

    /// Loss and metrics on `(x, y)`: `[loss, accuracy]` when compiled with accuracy.
    pub fn evaluate(&mut self, x: &Array, y: &Array, batch_size: usize) -> Result<Vec<f32>> {
        if batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        let y = self.prepare(x, y, "evaluate")?;
        let (loss, acc) = self.evaluate_prepared(x, &y, batch_size)?;
        Ok(std::iter::once(loss).chain(acc).collect())
    }

    /// The model's outputs for `x`, batch by batch.
    pub fn predict(&mut self, x: &Array, batch_size: usize) -> Result<Array> {
        if batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        self.build(&x.dims()[1..])?;
        let out_dims = self.output_shape().expect("built").to_vec();
        let mut data = Vec::with_capacity(x.len() * out_dims.iter().product::<usize>());
        no_grad(|| -> Result<()> {
            for start in (0..x.len()).step_by(batch_size) {
                let end = (start + batch_size).min(x.len());
                let xb = x.slice(start, end).to_tensor(&self.device)?;
                let Prediction::Output(p) = self.forward(&xb, false, 0, false)? else { unreachable!() };
                data.extend(p.to_vec()?);
            }
            Ok(())
        })?;
        let mut dims = vec![x.len()];
        dims.extend(out_dims);
        Array::new(data, dims)
    }
}

/// The labels `y` as `loss` wants them for a model output of per-sample shape `out`: class
/// indices one-hot encoded for a sparse loss; an error when the shapes do not match.
pub(crate) fn prepare_labels(loss: Loss, y: &Array, out: &[usize], what: &str) -> Result<Array> {
    let y = if loss.sparse_labels() {
        let classes = *out.last().unwrap_or(&1);
        to_categorical(&y.clone().reshape([y.len()])?, classes)?
    } else {
        y.clone()
    };
    if y.dims()[1..] != out[..] {
        return Err(Error::Data(format!(
            "{what}: labels have shape {:?} per sample but the model outputs {out:?}{}",
            &y.dims()[1..],
            if loss == Loss::CategoricalCrossentropy {
                " (use to_categorical for class indices)"
            } else {
                ""
            }
        )));
    }
    Ok(y)
}

/// The number of correct predictions in a batch (a scalar on the device). With `binary` (a
/// binary cross-entropy) or one output column, a prediction rounded at 0.5 must match (Keras'
/// binary accuracy, a mean over the last axis per sample); otherwise the argmax must match.
pub(crate) fn correct_count(p: &Tensor, y: &Tensor, binary: bool) -> Result<Tensor> {
    let hits = if binary || p.dims().last() == Some(&1) {
        let half = Tensor::scalar(0.5, p.device())?;
        let per_element = p.greater_equal(&half)?.equal(y)?;
        per_element.mean_axis(-1, false)?
    } else {
        p.argmax()?.equal(&y.argmax()?)?
    };
    Ok(hits.sum_all()?)
}

/// Where a `fit` loop's batches come from. The whole training set goes to the device once, if
/// it fits there (a GPU limits the size of one buffer); each step then sends only its indices.
/// Otherwise each batch is gathered on the host and uploaded.
pub(crate) struct BatchSource<'a> {
    arrays: Vec<&'a Array>,
    device: Device,
    resident: Option<Vec<Tensor>>,
    indices: Vec<u32>,
}

impl<'a> BatchSource<'a> {
    /// Batches of the same samples of each of `arrays` (inputs, then labels).
    pub(crate) fn new(arrays: Vec<&'a Array>, device: &Device) -> Result<Self> {
        let n = arrays.first().map_or(0, |a| a.len());
        if u32::try_from(n).is_err() {
            return Err(Error::Data(format!("{n} training samples: at most {} are supported", u32::MAX)));
        }
        let resident = arrays.iter().map(|a| a.to_tensor(device)).collect::<Result<Vec<_>>>().ok();
        Ok(BatchSource { arrays, device: device.clone(), resident, indices: Vec::new() })
    }

    /// One tensor per array, holding samples `batch` in that order.
    pub(crate) fn gather(&mut self, batch: &[usize]) -> Result<Vec<Tensor>> {
        match &self.resident {
            Some(all) => {
                self.indices.clear();
                self.indices.extend(batch.iter().map(|&i| i as u32));
                all.iter().map(|t| Ok(t.gather_rows(&self.indices)?)).collect()
            }
            None => self.arrays.iter().map(|a| a.gather(batch).to_tensor(&self.device)).collect(),
        }
    }
}

/// The seed of a training step's random ops (dropout): a function of the absolute epoch and
/// step, so a resumed run draws what an uninterrupted one would.
pub(crate) fn step_seed(seed: u64, epoch: usize, steps: usize, step: usize) -> u64 {
    tensor::random::hash32((epoch * steps + step) as u32) as u64 ^ seed
}

/// Reorders the sample indices for an epoch: a pure function of (seed, epoch, order), so a
/// run resumed at an epoch sees the same batches as an uninterrupted one.
pub fn shuffle_for_epoch(order: &mut [usize], seed: u64, epoch: usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    order.shuffle(&mut rng);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_changes_order_not_content() {
        let mut order: Vec<usize> = (0..1000).collect();
        shuffle_for_epoch(&mut order, 7, 1);
        assert_ne!(order, (0..1000).collect::<Vec<_>>());
        let mut again: Vec<usize> = (0..1000).collect();
        shuffle_for_epoch(&mut again, 7, 1);
        assert_eq!(order, again, "same seed and epoch, same order");
        let mut next = order.clone();
        shuffle_for_epoch(&mut next, 7, 2);
        assert_ne!(next, order, "each epoch reshuffles");
        next.sort_unstable();
        assert_eq!(next, (0..1000).collect::<Vec<_>>());
    }
}
