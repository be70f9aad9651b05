//! One training step's exchange: every rank's gradients, moving statistics and loss, each
//! weighted by the rank's share of the batch, summed in one all-reduce whose head says whether
//! any rank failed.

use tensor::{Device, Gradients, Tensor};

use super::Cluster;
use crate::error::{Error, Result};

/// What a rank computed on its share of a step's batch.
pub(crate) struct LocalStep {
    /// The gradients of its share's mean loss (empty for an empty share).
    pub grads: Gradients,
    /// Its share's loss (0 for an empty share).
    pub loss: f32,
    /// Samples in its share.
    pub samples: usize,
}

/// What every rank has after the exchange: the same gradients, loss and statistics.
pub(crate) struct StepOutcome {
    /// The gradients of the whole batch's mean loss.
    pub grads: Gradients,
    /// The whole batch's loss.
    pub loss: f32,
    /// The moving statistics, averaged over the ranks' updates.
    pub stats: Vec<Tensor>,
}

/// The two values that open every exchange: how many ranks failed, and the sum of their ranks
/// (the failed rank when only one did).
pub(super) fn failure_flags(failed: bool, rank: usize) -> [f32; 2] {
    if failed {
        [1.0, rank as f32]
    } else {
        [0.0, 0.0]
    }
}

/// An error on every rank when any failed: the failed rank keeps its own error, the others get
/// one naming it. `while_doing` says where (" in step 3 of epoch 1").
pub(super) fn check_failures(local: Result<()>, flags: &[f32], while_doing: &str) -> Result<()> {
    local?;
    match flags[0] as usize {
        0 => Ok(()),
        1 => Err(Error::Distributed(format!(
            "rank {} failed{while_doing}; its own output has the error",
            flags[1] as usize
        ))),
        n => {
            Err(Error::Distributed(format!("{n} ranks failed{while_doing}; their own output has the errors")))
        }
    }
}

impl Cluster {
    /// Exchanges one step's results: `local` is this rank's (or its error), `variables` the
    /// model's trainable variables in the optimizer's order, `stats` the moving statistics the
    /// step updated, `batch` the global batch's size.
    pub fn exchange_step(
        &self,
        local: Result<LocalStep>,
        variables: &[&Tensor],
        stats: &[&Tensor],
        batch: usize,
        device: &Device,
        while_doing: &str,
    ) -> Result<StepOutcome> {
        let len: usize = 3 + variables.iter().chain(stats).map(|t| t.numel()).sum::<usize>();
        let mut buffer = Vec::with_capacity(len);
        let packed = local.and_then(|step| {
            buffer.extend(failure_flags(false, 0));
            let weight = step.samples as f32 / batch as f32;
            buffer.push(step.loss * weight);
            for (i, v) in variables.iter().enumerate() {
                if step.samples == 0 {
                    buffer.resize(buffer.len() + v.numel(), 0.0);
                    continue;
                }
                let g = step.grads.get(v).ok_or_else(|| {
                    Error::Build(format!("variable {i} of shape {} has no gradient", v.shape()))
                })?;
                buffer.extend(g.to_vec()?.into_iter().map(|x| x * weight));
            }
            for s in stats {
                buffer.extend(s.to_vec()?.into_iter().map(|x| x * weight));
            }
            Ok(())
        });
        if packed.is_err() {
            // This rank still joins the sum, so that the others learn of its failure.
            buffer.clear();
            buffer.extend(failure_flags(true, self.rank()));
            buffer.resize(len, 0.0);
        }
        self.comm.all_reduce_sum(&mut buffer)?;
        check_failures(packed, &buffer, while_doing)?;

        let mut rest = &buffer[3..];
        let mut take = |t: &Tensor| -> Result<Tensor> {
            let (head, tail) = rest.split_at(t.numel());
            rest = tail;
            Ok(Tensor::from_slice(head, t.shape().clone(), device)?)
        };
        let mut grads = Gradients::default();
        for v in variables {
            grads.accumulate(v, take(v)?)?;
        }
        let stats = stats.iter().map(|s| take(s)).collect::<Result<Vec<_>>>()?;
        Ok(StepOutcome { grads, loss: buffer[2], stats })
    }

    /// Sums `values` (an epoch's loss sums, metric counts and sample count) over the ranks.
    pub fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        self.comm.all_reduce_sum_f64(values)
    }

    /// Sets every rank's `weights` to rank 0's.
    pub fn broadcast_weights(&self, weights: &mut [crate::Array]) -> Result<()> {
        let mut flat: Vec<f32> = weights.iter().flat_map(|w| w.data().iter().copied()).collect();
        self.comm.broadcast(&mut flat, 0)?;
        let mut rest = &flat[..];
        for w in weights {
            let (head, tail) = rest.split_at(w.data().len());
            *w = crate::Array::new(head.to_vec(), w.shape().clone())?;
            rest = tail;
        }
        Ok(())
    }
}
