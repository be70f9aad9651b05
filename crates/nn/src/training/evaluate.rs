//! One batch's losses and metrics (for training and evaluation), their running totals over an
//! epoch, and `evaluate` and `predict`.

use std::sync::Arc;

use tensor::{no_grad, Gradients, Tensor};

use super::data::{Arrays, Prepared};
use super::{Logs, Metric};
use crate::array::Array;
use crate::distributed::Cluster;
use crate::error::{Error, Result};
use crate::losses::Prediction;
use crate::model::run::RunMode;
use crate::model::symbolic::LayerCell;
use crate::model::Model;

/// Keras' default batch size for `evaluate` and `predict` when none is given.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Sums of loss and of each metric's counts over the batches of an epoch, kept on the device
/// so that no step waits for a read-back.
pub(crate) struct RunningTotals {
    pub loss_sum: Option<Tensor>,
    metric_sums: Vec<Option<Tensor>>,
    samples: usize,
}

impl RunningTotals {
    fn new() -> Self {
        RunningTotals { loss_sum: None, metric_sums: Vec::new(), samples: 0 }
    }
    fn add(&mut self, loss: Option<&Tensor>, counts: &[Tensor], n: usize) -> Result<()> {
        if let Some(loss) = loss {
            let weighted = loss.mul_scalar(n as f32)?;
            self.loss_sum = Some(match self.loss_sum.take() {
                Some(s) => s.add(&weighted)?,
                None => weighted,
            });
        }
        self.metric_sums.resize(counts.len(), None);
        for (sum, c) in self.metric_sums.iter_mut().zip(counts) {
            *sum = Some(match sum.take() {
                Some(s) => s.add(c)?,
                None => c.clone(),
            });
        }
        self.samples += n;
        Ok(())
    }
    /// The mean loss, and each metric's value (reads the device), over every rank of
    /// `cluster` (which all must call this together).
    fn means(&self, metrics: &[Metric], cluster: Option<&Cluster>) -> Result<(f32, Vec<f32>)> {
        let mut loss_sum = self.loss_sum.as_ref().map(|t| t.item()).transpose()?.unwrap_or(f32::NAN);
        let mut counts = Vec::with_capacity(self.metric_sums.len());
        for (i, metric) in metrics.iter().enumerate() {
            // A rank that saw no batch has no sums: zeros, as long as the others'.
            let sum = self.metric_sums.get(i).and_then(Option::as_ref);
            let mut c = sum.map(|t| t.to_vec()).transpose()?.unwrap_or_default();
            c.resize(metric.count_len(), 0.0);
            counts.push(c);
        }
        let mut samples = self.samples;
        if let Some(cluster) = cluster {
            // A rank that saw no sample adds nothing (its missing loss sum is 0, not NaN).
            let own_loss = if self.samples == 0 { 0.0 } else { loss_sum as f64 };
            let mut sums: Vec<f64> = [own_loss, self.samples as f64]
                .into_iter()
                .chain(counts.iter().flatten().map(|&c| c as f64))
                .collect();
            cluster.sum_f64(&mut sums)?;
            loss_sum = if self.loss_sum.is_some() || sums[1] > 0.0 { sums[0] as f32 } else { f32::NAN };
            samples = sums[1] as usize;
            let mut rest = &sums[2..];
            for c in &mut counts {
                let (head, tail) = rest.split_at(c.len());
                c.iter_mut().zip(head).for_each(|(c, &s)| *c = s as f32);
                rest = tail;
            }
        }
        let loss = loss_sum / samples.max(1) as f32;
        let values = metrics.iter().zip(&counts).map(|(m, c)| m.value(c, samples)).collect();
        Ok((loss, values))
    }
}

/// What one batch gives: the weighted total loss, and each output's loss and metric counts
/// (device tensors, summed over an epoch without reading them back).
pub(crate) struct BatchResult {
    pub total: Tensor,
    per_output: Vec<(Tensor, Vec<Tensor>)>,
}

/// Running totals over an epoch: the total, then one per output.
pub(crate) struct EpochTotals {
    pub total: RunningTotals,
    per_output: Vec<RunningTotals>,
    names: Vec<String>,
    metrics: Vec<Metric>,
}

impl EpochTotals {
    pub fn new(names: Vec<String>, metrics: &[Metric]) -> Self {
        EpochTotals {
            total: RunningTotals::new(),
            per_output: names.iter().map(|_| RunningTotals::new()).collect(),
            names,
            metrics: metrics.to_vec(),
        }
    }

    pub fn add(&mut self, batch: &BatchResult, n: usize) -> Result<()> {
        self.total.add(Some(&batch.total), &[], n)?;
        // A single output's loss is the total: not summed twice.
        let single = self.names.len() == 1;
        for (totals, (loss, counts)) in self.per_output.iter_mut().zip(&batch.per_output) {
            totals.add((!single).then_some(loss), counts, n)?;
        }
        Ok(())
    }

    /// `loss`, then per output `<name>_loss` and `<name>_<metric>` (for one output just
    /// `<metric>`), each key prefixed with `prefix`. Reads the device. This rank's own values:
    /// see [`report_over`](Self::report_over) for the global ones.
    pub fn report(&self, prefix: &str) -> Result<Logs> {
        self.report_over(prefix, None)
    }

    /// [`report`](Self::report) over every rank of `cluster`, which all call it together.
    pub fn report_over(&self, prefix: &str, cluster: Option<&Cluster>) -> Result<Logs> {
        let (total, _) = self.total.means(&[], cluster)?;
        let mut out = Logs::new();
        out.insert(format!("{prefix}loss"), total);
        let single = self.names.len() == 1;
        for (name, totals) in self.names.iter().zip(&self.per_output) {
            let (loss, values) = totals.means(&self.metrics, cluster)?;
            if !single {
                out.insert(format!("{prefix}{name}_loss"), loss);
            }
            for (metric, value) in self.metrics.iter().zip(values) {
                let metric = metric.keras_name();
                let key =
                    if single { format!("{prefix}{metric}") } else { format!("{prefix}{name}_{metric}") };
                out.insert(key, value);
            }
        }
        Ok(out)
    }
}

impl Model {
    /// The losses and correct counts of one batch.
    fn batch_losses(&self, x: &[Tensor], y: &[Tensor], mode: RunMode) -> Result<BatchResult> {
        let compiled = self.compiled.as_ref().expect("checked by prepare");
        let logits: Vec<bool> = compiled.losses.iter().map(|l| l.uses_softmax_logits()).collect();
        let preds = self.graph.run(x, mode, &logits)?;
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::with_capacity(preds.len());
        for (k, pred) in preds.iter().enumerate() {
            let loss = compiled.losses[k].compute(pred, &y[k])?;
            // A weight of 1 is skipped, not multiplied: one output then trains bit for bit as
            // the same layers always have.
            let weight = compiled.loss_weights[k];
            let weighted = if weight == 1.0 { loss.clone() } else { loss.mul_scalar(weight)? };
            total = Some(match total {
                Some(t) => t.add(&weighted)?,
                None => weighted,
            });
            let counts = no_grad(|| -> Result<Vec<Tensor>> {
                let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = pred;
                let probabilities = match pred {
                    // Thresholded metrics need probabilities; the ranking ones do not.
                    Prediction::SoftmaxLogits(z)
                        if compiled.metrics.iter().any(|m| m.thresholds_scores()) =>
                    {
                        Some(z.softmax()?)
                    }
                    _ => None,
                };
                let binary = compiled.losses[k].is_binary();
                compiled
                    .metrics
                    .iter()
                    .map(|m| {
                        let scores =
                            if m.thresholds_scores() { probabilities.as_ref().unwrap_or(p) } else { p };
                        m.batch_counts(scores, &y[k], binary)
                    })
                    .collect()
            })?;
            per_output.push((loss, counts));
        }
        let mut total = total.expect("a model has outputs");
        // Keras adds the trainable weights' regularization penalties to the total loss, in
        // training and evaluation alike (`model.losses`); the per-output losses stay without.
        for (_, cell) in self.graph.weighted_layers() {
            let state = cell.lock();
            if state.trainable {
                if let Some(penalty) = state.layer.regularization_loss()? {
                    total = total.add(&penalty)?;
                }
            }
        }
        Ok(BatchResult { total, per_output })
    }

    /// A batch's forward and backward pass: its losses and metric counts, and the gradients of
    /// its total loss.
    pub(crate) fn batch_gradients(
        &self,
        x: &[Tensor],
        y: &[Tensor],
        step_seed: u64,
    ) -> Result<(BatchResult, Gradients)> {
        self.batch_gradients_with(x, y, step_seed, |_, _| Ok(()))
    }

    /// [`batch_gradients`](Self::batch_gradients), handing each variable's gradient to
    /// `on_ready` as soon as the backward pass has completed it ([`Tensor::backward_with`]).
    pub(crate) fn batch_gradients_with(
        &self,
        x: &[Tensor],
        y: &[Tensor],
        step_seed: u64,
        on_ready: impl FnMut(&Tensor, &Tensor) -> Result<()>,
    ) -> Result<(BatchResult, Gradients)> {
        let batch = self.batch_losses(x, y, RunMode { training: true, step_seed })?;
        let grads = batch.total.backward_with(on_ready)?;
        let result = BatchResult {
            total: batch.total.detach(),
            per_output: batch.per_output.into_iter().map(|(l, c)| (l.detach(), c)).collect(),
        };
        Ok((result, grads))
    }

    /// The optimizer's step with `grads`; `layers` are the model's layers with weights.
    pub(crate) fn apply_gradients(&mut self, layers: &[Arc<LayerCell>], grads: &Gradients) -> Result<()> {
        let compiled = self.compiled.as_mut().expect("checked by prepare");
        let mut guards: Vec<_> = layers.iter().map(|cell| cell.lock()).collect();
        let mut variables: Vec<&mut Tensor> = guards.iter_mut().flat_map(|g| g.layer.params_mut()).collect();
        compiled.optimizer.apply(&mut variables, grads)
    }

    /// Loss and metrics over prepared data, in batches of `batch_size`; when distributed, this
    /// rank's batches only (dealt round-robin), the error of any rank failing them all.
    pub(crate) fn evaluate_prepared(&self, data: &Prepared<'_>, batch_size: usize) -> Result<EpochTotals> {
        let mut totals = EpochTotals::new(self.output_names(), &self.compiled_metrics());
        let n = data.len();
        let local = no_grad(|| -> Result<()> {
            for (index, start) in (0..n).step_by(batch_size).enumerate() {
                if self.cluster.as_ref().is_some_and(|c| !c.owns_batch(index)) {
                    continue;
                }
                let end = (start + batch_size).min(n);
                let upload = |arrays: &[std::borrow::Cow<'_, Array>]| {
                    arrays
                        .iter()
                        .map(|a| a.slice(start, end).to_tensor(&self.device))
                        .collect::<Result<Vec<_>>>()
                };
                let batch = self.batch_losses(&upload(&data.x)?, &upload(&data.y)?, RunMode::inference())?;
                totals.add(&batch, end - start)?;
            }
            Ok(())
        });
        match &self.cluster {
            Some(cluster) => cluster.agree(local.map(|()| false)).map(|_| ())?,
            None => local?,
        }
        Ok(totals)
    }

    /// Loss and metrics on `(x, y)` (one array per input and per output, or a single array
    /// each for a model of one input and one output), keyed as in `History` (Keras'
    /// `evaluate(..., return_dict=True)`): `loss` (the weighted total), `accuracy` (for several
    /// outputs: `<name>_loss` and `<name>_accuracy` per output). `batch_size` `None` is Keras'
    /// default, 32.
    pub fn evaluate<'x, 'y>(
        &self,
        x: impl Into<Arrays<'x>>,
        y: impl Into<Arrays<'y>>,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Logs> {
        let batch_size = batch_size_or_default(batch_size.into())?;
        let data = self.prepare(&x.into(), &y.into(), "evaluate")?;
        let evaluate = || self.evaluate_prepared(&data, batch_size);
        let totals = super::host_loop(&self.device, self.cluster.is_some(), evaluate)?;
        totals.report_over("", self.cluster.as_ref())
    }

    /// The model's outputs for `x` (one array per input, or one array for a model of one
    /// input), batch by batch: one array per output. `batch_size` `None` is Keras' default, 32.
    pub fn predict<'x>(
        &self,
        x: impl Into<Arrays<'x>>,
        batch_size: impl Into<Option<usize>>,
    ) -> Result<Vec<Array>> {
        let batch_size = batch_size_or_default(batch_size.into())?;
        let x = x.into();
        let n = self.check_inputs(x.as_slice(), "predict")?;
        let outputs = self.graph.outputs.len();
        let mut data: Vec<Vec<f32>> = vec![Vec::new(); outputs];
        // Each rank predicts alone, waiting for no other.
        super::host_loop(&self.device, false, || {
            no_grad(|| -> Result<()> {
                for start in (0..n).step_by(batch_size) {
                    let end = (start + batch_size).min(n);
                    let xb = x
                        .as_slice()
                        .iter()
                        .map(|a| a.slice(start, end).to_tensor(&self.device))
                        .collect::<Result<Vec<_>>>()?;
                    let preds = self.graph.run(&xb, RunMode::inference(), &vec![false; outputs])?;
                    for (out, p) in data.iter_mut().zip(preds) {
                        let (Prediction::Output(p) | Prediction::SoftmaxLogits(p)) = p;
                        out.extend(p.to_vec()?);
                    }
                }
                Ok(())
            })
        })?;
        data.into_iter()
            .zip(&self.graph.outputs)
            .map(|(values, o)| Array::new(values, [&[n][..], o.shape()].concat()))
            .collect()
    }
}

fn batch_size_or_default(batch_size: Option<usize>) -> Result<usize> {
    match batch_size {
        Some(0) => Err(Error::Data("batch_size must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(DEFAULT_BATCH_SIZE),
    }
}
