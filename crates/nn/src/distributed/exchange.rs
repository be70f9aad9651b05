//! What the exchanges have in common: the failure flags that open every head, a step's
//! outcome, and the sums of an epoch's totals and the broadcast of the weights. (A step's
//! gradients go in buckets: `buckets.rs`.)

use tensor::{Gradients, Tensor};

use super::Cluster;
use crate::error::{Error, Result};

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
