//! `compile`, `fit` and `evaluate` for functional [`Model`]s, with Keras' semantics for several
//! outputs: the loss minimised is `sum_k weight_k * loss_k`; `History`, the epoch line and
//! `evaluate` report that total as `loss`, and each output's own (unweighted) loss and metrics
//! as `<output>_loss` and `<output>_accuracy` (plain `accuracy` for a single output).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use tensor::{no_grad, Tensor};

use super::losses::{Losses, OutputLoss};
use super::model::{check_arrays, Model};
use crate::array::Array;
use crate::error::{Error, Result};
use crate::losses::Prediction;
use crate::optimizers::{Optimizer, OptimizerState};
use crate::training::{
    correct_count, epoch_line, prepare_labels, shuffle_for_epoch, step_seed, BatchSource, FitOptions,
    History, Metric, RunningTotals,
};

/// A functional model's losses (one per output), their weights, optimizer and metrics.
pub(crate) struct CompiledModel {
    losses: Vec<OutputLoss>,
    weights: Vec<f32>,
    optimizer: OptimizerState,
    metrics: Vec<Metric>,
}

/// What one batch gives: the weighted total loss, and each output's loss and correct count
/// (device scalars, summed over an epoch without reading them back).
struct BatchResult {
    total: Tensor,
    per_output: Vec<(Tensor, Option<Tensor>)>,
}

/// Running totals over an epoch: the total, then one per output.
struct EpochTotals {
    total: RunningTotals,
    per_output: Vec<RunningTotals>,
}

impl EpochTotals {
    fn new(outputs: usize) -> Self {
        EpochTotals {
            total: RunningTotals::new(),
            per_output: (0..outputs).map(|_| RunningTotals::new()).collect(),
        }
    }

    fn add(&mut self, batch: BatchResult, n: usize) -> Result<()> {
        self.total.add(&batch.total, None, n)?;
        for (totals, (loss, correct)) in self.per_output.iter_mut().zip(batch.per_output) {
            totals.add(&loss, correct, n)?;
        }
        Ok(())
    }

    /// `(key, value)` pairs: `loss`, then per output `<name>_loss` and `<name>_accuracy` (for
    /// one output just `accuracy`), each key prefixed with `prefix`.
    fn report(&self, names: &[String], prefix: &str) -> Result<Vec<(String, f32)>> {
        let (total, _) = self.total.means()?;
        let mut out = vec![(format!("{prefix}loss"), total)];
        let single = names.len() == 1;
        for (name, totals) in names.iter().zip(&self.per_output) {
            let (loss, accuracy) = totals.means()?;
            if !single {
                out.push((format!("{prefix}{name}_loss"), loss));
            }
            if let Some(a) = accuracy {
                let key =
                    if single { format!("{prefix}accuracy") } else { format!("{prefix}{name}_accuracy") };
                out.push((key, a));
            }
        }
        Ok(out)
    }
}

impl Model {
    /// Sets one loss per output (see [`Losses`]: a single [`Loss`](crate::Loss) for every
    /// output, a list, or a map by output name, with `loss_weights`), the optimizer, and the
    /// metrics reported for every output.
    pub fn compile(
        &mut self,
        losses: impl Into<Losses>,
        optimizer: impl Into<Optimizer>,
        metrics: &[Metric],
    ) -> Result<()> {
        let optimizer = optimizer.into();
        if !(optimizer.learning_rate() > 0.0 && optimizer.learning_rate().is_finite()) {
            return Err(Error::Build(format!(
                "learning rate {} must be positive",
                optimizer.learning_rate()
            )));
        }
        let (losses, weights) = losses.into().resolve(&self.output_names())?;
        self.compiled = Some(CompiledModel {
            losses,
            weights,
            optimizer: OptimizerState::new(optimizer),
            metrics: metrics.to_vec(),
        });
        Ok(())
    }

    fn compiled(&self) -> Result<&CompiledModel> {
        self.compiled.as_ref().ok_or_else(|| Error::Build("call compile() before fit() or evaluate()".into()))
    }

    /// Checks inputs and labels; returns the labels as each output's loss wants them.
    fn prepare(&self, x: &[&Array], y: &[&Array], what: &str) -> Result<Vec<Array>> {
        let n = self.check_inputs(x, what)?;
        let m = check_arrays(y, &self.outputs, "output", what)?;
        if n != m {
            return Err(Error::Data(format!("{what}: {n} samples in x but {m} in y")));
        }
        let compiled = self.compiled()?;
        y.iter()
            .zip(&self.outputs)
            .zip(&compiled.losses)
            .map(|((y, out), loss)| match loss.builtin() {
                Some(loss) => {
                    prepare_labels(loss, y, out.shape(), &format!("{what}, output '{}'", out.name()))
                }
                // A user loss decides what its labels look like.
                None => Ok((*y).clone()),
            })
            .collect()
    }

    /// The losses and correct counts of one batch.
    fn batch_losses(
        &self,
        x: &[Tensor],
        y: &[Tensor],
        training: bool,
        step_seed: u64,
    ) -> Result<BatchResult> {
        let compiled = self.compiled()?;
        let logits: Vec<bool> = compiled.losses.iter().map(OutputLoss::uses_softmax_logits).collect();
        let preds = self.forward(x, training, step_seed, &logits)?;
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::with_capacity(preds.len());
        for (k, pred) in preds.iter().enumerate() {
            let loss = compiled.losses[k].compute(pred, &y[k])?;
            // A weight of 1 is skipped, not multiplied: one output then trains bit for bit as
            // the same Sequential model.
            let weight = compiled.weights[k];
            let weighted = if weight == 1.0 { loss.clone() } else { loss.mul_scalar(weight)? };
            total = Some(match total {
                Some(t) => t.add(&weighted)?,
                None => weighted,
            });
            let correct = if compiled.metrics.contains(&Metric::Accuracy) {
                let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = pred;
                Some(no_grad(|| correct_count(p, &y[k], compiled.losses[k].is_binary()))?)
            } else {
                None
            };
            per_output.push((loss, correct));
        }
        Ok(BatchResult { total: total.expect("a model has outputs"), per_output })
    }

    /// One gradient step on a batch.
    fn train_step(&mut self, x: &[Tensor], y: &[Tensor], step_seed: u64) -> Result<BatchResult> {
        let batch = self.batch_losses(x, y, true, step_seed)?;
        let grads = batch.total.backward()?;
        let mut compiled = self.compiled.take().expect("compiled checked");
        let result = {
            let mut guards = self.lock_layers();
            let mut variables: Vec<&mut Tensor> =
                guards.iter_mut().flat_map(|g| g.layer.params_mut()).collect();
            compiled.optimizer.apply(&mut variables, &grads)
        };
        self.compiled = Some(compiled);
        result?;
        Ok(BatchResult {
            total: batch.total.detach(),
            per_output: batch.per_output.into_iter().map(|(l, c)| (l.detach(), c)).collect(),
        })
    }

    /// Trains the model, as Keras' `fit`: `x` holds one array per input and `y` one per output,
    /// in the model's order. `options.validation_data` works for models of one input and one
    /// output; `validation_split` for any model.
    pub fn fit(&mut self, x: &[&Array], y: &[&Array], options: &FitOptions) -> Result<History> {
        if options.batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        let y = self.prepare(x, y, "fit")?;
        let x: Vec<Array> = x.iter().map(|&a| a.clone()).collect();
        let (x_train, y_train, validation) = self.split_validation(x, y, options)?;
        let n = x_train[0].len();
        let seed = options.seed.unwrap_or(self.seed);
        let steps = n.div_ceil(options.batch_size);
        let names = self.output_names();
        let mut batches = BatchSource::new(x_train.iter().chain(&y_train).collect(), &self.device)?;
        let mut history = History::default();
        let mut order: Vec<usize> = (0..n).collect();
        for epoch in 1..=options.epochs {
            if options.verbose > 0 {
                println!("Epoch {epoch}/{}", options.epochs);
            }
            if options.shuffle {
                shuffle_for_epoch(&mut order, seed, epoch);
            }
            let start = Instant::now();
            let mut totals = EpochTotals::new(names.len());
            for (step, batch) in order.chunks(options.batch_size).enumerate() {
                let mut tensors = batches.gather(batch)?;
                let yb = tensors.split_off(x_train.len());
                let result = self.train_step(&tensors, &yb, step_seed(seed, epoch, steps, step))?;
                totals.add(result, batch.len())?;
            }
            let seconds = start.elapsed().as_secs_f64();
            let mut line = totals.report(&names, "")?;
            // Checked once per epoch here (the functional loop does not have Sequential's
            // per-step TerminateOnNaN yet): the step is the epoch's last.
            if !line[0].1.is_finite() {
                return Err(Error::NonFiniteLoss { epoch, step: steps, loss: line[0].1 });
            }
            if let Some((vx, vy)) = &validation {
                line.extend(
                    self.evaluate_prepared(vx, vy, options.batch_size.max(256))?.report(&names, "val_")?,
                );
            }
            for (k, v) in &line {
                history.history.entry(k.clone()).or_default().push(*v);
            }
            history.epoch_seconds.push(seconds);
            if options.verbose > 0 {
                println!("{}", epoch_line(steps, seconds, &line));
                let _ = std::io::stdout().flush();
            }
        }
        Ok(history)
    }

    /// Training and validation sets from `options` (validation labels already prepared).
    #[allow(clippy::type_complexity)]
    fn split_validation(
        &self,
        x: Vec<Array>,
        y: Vec<Array>,
        options: &FitOptions,
    ) -> Result<(Vec<Array>, Vec<Array>, Option<(Vec<Array>, Vec<Array>)>)> {
        if let Some((vx, vy)) = &options.validation_data {
            if x.len() != 1 || y.len() != 1 {
                return Err(Error::Data(
                    "validation_data holds one input and one output array; for a model of several, \
                     use validation_split"
                        .into(),
                ));
            }
            let vy = self.prepare(&[vx], &[vy], "validation_data")?;
            return Ok((x, y, Some((vec![vx.clone()], vy))));
        }
        if options.validation_split <= 0.0 {
            return Ok((x, y, None));
        }
        let n = x[0].len();
        let n_val = (n as f32 * options.validation_split) as usize;
        let split = n - n_val.min(n);
        if n_val == 0 || split == 0 {
            return Err(Error::Data(format!(
                "validation_split {} leaves no samples",
                options.validation_split
            )));
        }
        let head = |arrays: &[Array]| arrays.iter().map(|a| a.slice(0, split)).collect::<Vec<_>>();
        let tail = |arrays: &[Array]| arrays.iter().map(|a| a.slice(split, n)).collect::<Vec<_>>();
        Ok((head(&x), head(&y), Some((tail(&x), tail(&y)))))
    }

    fn evaluate_prepared(&self, x: &[Array], y: &[Array], batch_size: usize) -> Result<EpochTotals> {
        let mut totals = EpochTotals::new(self.outputs.len());
        let n = x[0].len();
        no_grad(|| -> Result<()> {
            for start in (0..n).step_by(batch_size) {
                let end = (start + batch_size).min(n);
                let upload = |arrays: &[Array]| {
                    arrays
                        .iter()
                        .map(|a| a.slice(start, end).to_tensor(&self.device))
                        .collect::<Result<Vec<_>>>()
                };
                let batch = self.batch_losses(&upload(x)?, &upload(y)?, false, 0)?;
                totals.add(batch, end - start)?;
            }
            Ok(())
        })?;
        Ok(totals)
    }

    /// Loss and metrics on `(x, y)` (one array per input and per output), keyed as in
    /// `History`: `loss` (the weighted total), and per output `<name>_loss` and
    /// `<name>_accuracy` (for a single output: `loss` and `accuracy`).
    pub fn evaluate(&self, x: &[&Array], y: &[&Array], batch_size: usize) -> Result<BTreeMap<String, f32>> {
        if batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        let y = self.prepare(x, y, "evaluate")?;
        let x: Vec<Array> = x.iter().map(|&a| a.clone()).collect();
        Ok(self
            .evaluate_prepared(&x, &y, batch_size)?
            .report(&self.output_names(), "")?
            .into_iter()
            .collect())
    }
}
