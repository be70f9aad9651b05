//! The one `fit` loop (Keras' `trainer.fit`): epochs of shuffled batches, one gradient step
//! each, validation after each epoch, and the callbacks at Keras' hooks.

use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tensor::Tensor;

use super::data::{Arrays, BatchSource, Prepared};
use super::evaluate::EpochTotals;
use super::{FitOptions, History, Logs};
use crate::array::Array;
use crate::callbacks::{BatchLogs, Callback, CallbackList, FitState, TerminateOnNaN};
use crate::distributed::{Cluster, StepExchange};
use crate::error::{Error, Result};
use crate::model::symbolic::LayerCell;
use crate::model::Model;
use crate::progress::{Progress, ProgressOutput};

/// Batches of at least this many samples for validation: it needs no gradients, and larger
/// batches evaluate faster.
const MIN_VALIDATION_BATCH: usize = 256;

impl Model {
    /// Trains the model, as Keras' `fit`: `x` holds one array per input and `y` one per output,
    /// in the model's order (a single array each for a model of one input and one output).
    /// Returns the [`History`]. See [`FitOptions`] for what can be set, and
    /// [`callbacks`](crate::callbacks) for what runs at each epoch and batch. On the CPU the
    /// loop, callbacks included, runs on a worker thread of the backend's pool
    /// ([`tensor::Device::run_host_loop`]), except for a distributed model.
    pub fn fit<'x, 'y>(
        &mut self,
        x: impl Into<Arrays<'x>>,
        y: impl Into<Arrays<'y>>,
        options: &FitOptions,
    ) -> Result<History> {
        let (x, y, device) = (x.into(), y.into(), self.device.clone());
        super::host_loop(&device, self.cluster.is_some(), || self.fit_here(&x, &y, options))
    }

    /// [`Model::fit`] on the calling thread.
    fn fit_here(&mut self, x: &Arrays<'_>, y: &Arrays<'_>, options: &FitOptions) -> Result<History> {
        options.check()?;
        let data = self.prepare(x, y, "fit")?;
        let (train, validation) = self.split_validation(data, options)?;
        let n = train.len();
        let seed = options.seed.unwrap_or(self.seed);
        let steps = n.div_ceil(options.batch_size);
        let layers: Vec<Arc<LayerCell>> =
            self.graph.weighted_layers().into_iter().map(|(_, cell)| cell).collect();
        let inputs = train.x.len();
        let arrays: Vec<&Array> = train.x.iter().chain(&train.y).map(|a| &**a).collect();
        let mut batches = BatchSource::new(arrays, &self.device)?;

        let output = options.output.clone().unwrap_or_else(ProgressOutput::stdout);
        let cluster = self.cluster.clone();
        let (rank, ranks) = self.rank_and_size();
        // Only rank 0 prints.
        let verbose = if rank == 0 { options.verbose } else { 0 };
        let mut state = FitState {
            stop_training: false,
            epochs: options.epochs,
            initial_epoch: options.initial_epoch,
            steps,
            verbose,
            log_keys: self.log_keys(validation.is_some())?,
            output: output.clone(),
            epoch_seconds: 0.0,
            rank,
            ranks,
        };
        // Keras' order: the user's callbacks, then the History, then the progress output.
        let mut nan_guard = options.terminate_on_nan.then(|| TerminateOnNaN::new().raise_error(true));
        let mut user: Vec<MutexGuard<'_, dyn Callback>> = options
            .callbacks
            .iter()
            .map(|c| c.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
            .collect();
        let mut history = History::default();
        let mut progress = Progress::new(output.clone(), verbose, steps);
        let mut list: Vec<&mut dyn Callback> = Vec::new();
        if let Some(guard) = &mut nan_guard {
            list.push(guard);
        }
        list.extend(user.iter_mut().map(|c| &mut **c as &mut dyn Callback));
        list.push(&mut history);
        list.push(&mut progress);
        let mut callbacks = CallbackList { callbacks: list };

        if let Some(cluster) = &cluster {
            let mut weights = self.get_weights()?;
            cluster.broadcast_weights(&mut weights)?;
            self.set_weights(&weights)?;
            if verbose > 0 {
                let size = options.batch_size;
                output.write_line(&format!(
                    "data-parallel on {ranks} ranks ({}): global batch {size}, {} to {} samples per rank",
                    cluster.communicator().describe(),
                    size / ranks,
                    size.div_ceil(ranks),
                ));
            }
        }
        let hook = callbacks.train_begin(self, &mut state);
        together(cluster.as_ref(), hook, &mut state)?;
        let mut order: Vec<usize> = (0..n).collect();
        if options.shuffle {
            // Each epoch shuffles the previous epoch's order: replay the skipped ones.
            for epoch in 1..=options.initial_epoch {
                shuffle_for_epoch(&mut order, seed, epoch);
            }
        }
        let mut last_logs: Option<Logs> = None;
        for epoch in options.initial_epoch + 1..=options.epochs {
            let hook = callbacks.epoch_begin(epoch - 1, self, &mut state);
            together(cluster.as_ref(), hook, &mut state)?;
            if options.shuffle {
                shuffle_for_epoch(&mut order, seed, epoch);
            }
            let start = Instant::now();
            let mut totals = EpochTotals::new(self.output_names(), &self.compiled_metrics());
            let mut steps_done = 0;
            for (step, batch) in order.chunks(options.batch_size).enumerate() {
                let step_seed = step_seed(seed, epoch, steps, step);
                let loss = match &cluster {
                    None => {
                        callbacks.batch_begin(step, self, &mut state)?;
                        let mut tensors = batches.gather(batch)?;
                        let labels = tensors.split_off(inputs);
                        let (result, grads) = self.batch_gradients(&tensors, &labels, step_seed)?;
                        self.apply_gradients(&layers, &grads)?;
                        totals.add(&result, batch.len())?;
                        result.total
                    }
                    Some(cluster) => {
                        // This rank's share; the step's gradient is the whole batch's. Its
                        // buckets' sums start while the backward pass still runs.
                        let share = &batch[cluster.share(batch.len())];
                        let begun = callbacks.batch_begin(step, self, &mut state);
                        // The variables after the callbacks, which may have set the weights.
                        let mut exchange =
                            cluster.begin_step(trainable_variables(&layers), share.len(), batch.len());
                        let local = begun.and_then(|()| {
                            if share.is_empty() {
                                return Ok(None);
                            }
                            let mut tensors = batches.gather(share)?;
                            let labels = tensors.split_off(inputs);
                            let (result, _) = self.batch_gradients_with(
                                &tensors,
                                &labels,
                                cluster.step_seed(step_seed),
                                |v, g| exchange.gradient_ready(v, g),
                            )?;
                            let loss = result.total.item()?;
                            Ok(Some((result, loss)))
                        });
                        let (result, loss) = match local {
                            Ok(Some((result, loss))) => (Some(result), Ok(loss)),
                            Ok(None) => (None, Ok(0.0)),
                            Err(e) => (None, Err(e)),
                        };
                        let where_ = format!(" in batch {} of epoch {epoch}", step + 1);
                        let loss = self.finish_step(exchange, &layers, loss, &where_)?;
                        if let Some(result) = &result {
                            totals.add(result, share.len())?;
                        }
                        Tensor::scalar(loss, &self.device)?
                    }
                };
                steps_done = step + 1;
                let running = || totals.report("");
                let logs = BatchLogs {
                    loss: &loss,
                    size: batch.len(),
                    running: &running,
                    running_loss_sum: totals.total.loss_sum.as_ref(),
                };
                let hook = callbacks.batch_end(step, &logs, self, &mut state);
                together(cluster.as_ref(), hook, &mut state)?;
                if state.stop_training {
                    break;
                }
            }
            state.epoch_seconds = start.elapsed().as_secs_f64();
            let mut logs = totals.report_over("", cluster.as_ref())?;
            let loss = logs["loss"];
            // Without TerminateOnNaN, a non-finite epoch still ends training (a callback that
            // stopped training on it has had its say).
            if !loss.is_finite() && !state.stop_training {
                return Err(Error::NonFiniteLoss { epoch, step: steps_done, loss });
            }
            if let Some(validation) = &validation {
                let batch_size = options.batch_size.max(MIN_VALIDATION_BATCH);
                logs.extend(
                    self.evaluate_prepared(validation, batch_size)?.report_over("val_", cluster.as_ref())?,
                );
            }
            self.epochs_done = epoch;
            let hook = callbacks.epoch_end(epoch - 1, &mut logs, self, &mut state);
            together(cluster.as_ref(), hook, &mut state)?;
            last_logs = Some(logs);
            if state.stop_training {
                break;
            }
        }
        let hook = callbacks.train_end(last_logs.as_ref(), self, &mut state);
        together(cluster.as_ref(), hook, &mut state)?;
        drop(callbacks);
        Ok(history)
    }

    /// Ends a step's exchange with this rank's loss (or error) and applies the whole batch's
    /// gradient; returns the batch's loss. The moving statistics (BatchNormalization's) become
    /// the ranks' weighted mean, as the whole batch would have moved them.
    fn finish_step(
        &mut self,
        exchange: StepExchange<'_>,
        layers: &[Arc<LayerCell>],
        loss: Result<f32>,
        while_doing: &str,
    ) -> Result<f32> {
        let mut stats = Vec::new();
        for cell in layers {
            let state = cell.lock();
            if state.trainable {
                stats.extend(state.layer.non_trainable().into_iter().cloned());
            }
        }
        let outcome = exchange.finish(loss, &stats.iter().collect::<Vec<_>>(), &self.device, while_doing)?;
        self.apply_gradients(layers, &outcome.grads)?;
        let mut averaged = outcome.stats.into_iter();
        for cell in layers {
            let mut state = cell.lock();
            if state.trainable {
                for s in state.layer.non_trainable_mut() {
                    *s = averaged.next().expect("one per statistic sent");
                }
            }
        }
        Ok(outcome.loss)
    }

    /// The training and validation sets `options` ask for: `data` and `validation_data`
    /// (prepared here), or `data` split, its last `validation_split` held out.
    fn split_validation<'a>(
        &self,
        data: Prepared<'a>,
        options: &'a FitOptions,
    ) -> Result<(Prepared<'a>, Option<Prepared<'a>>)> {
        if let Some((vx, vy)) = &options.validation_data {
            let validation = self.prepare(&Arrays::from(vx), &Arrays::from(vy), "validation_data")?;
            return Ok((data, Some(validation)));
        }
        if options.validation_split <= 0.0 {
            return Ok((data, None));
        }
        let n = data.len();
        let n_val = (n as f32 * options.validation_split) as usize;
        let split = n - n_val.min(n);
        if n_val == 0 || split == 0 {
            return Err(Error::Data(format!(
                "validation_split {} leaves no samples",
                options.validation_split
            )));
        }
        Ok((data.slice(0, split), Some(data.slice(split, n))))
    }
}

/// The trainable variables of `layers` in the optimizer's order (`apply_gradients`').
fn trainable_variables(layers: &[Arc<LayerCell>]) -> Vec<Tensor> {
    let mut variables = Vec::new();
    for cell in layers {
        let state = cell.lock();
        variables.extend(state.layer.params().into_iter().filter(|p| p.is_variable()).cloned());
    }
    variables
}

/// A callback hook's outcome, agreed by every rank when distributed: an error on any rank is an
/// error on all, and a stop asked by any rank stops all.
fn together(cluster: Option<&Cluster>, hook: Result<()>, state: &mut FitState) -> Result<()> {
    match cluster {
        None => hook,
        Some(cluster) => {
            state.stop_training = cluster.agree(hook.map(|()| state.stop_training))?;
            Ok(())
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
