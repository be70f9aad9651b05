//! Data-parallel training over several processes (Keras' `MultiWorkerMirroredStrategy`,
//! Horovod): the same program runs as one process or as N, each N a *rank* with its own copy
//! of the model.
//!
//! Give a model a [`Communicator`] ([`Model::distribute`](crate::Model::distribute); with the
//! `mpi` feature, `Mpi` over the system's MPI) and the one `fit` loop then:
//! - broadcasts rank 0's weights before the first step, so every rank starts from the same
//!   model (its optimizer state comes from `compile` or from the same checkpoint);
//! - shuffles with the same seed on every rank and splits each global batch of `batch_size`
//!   samples into one contiguous share per rank (`batch_size * r / N ..`), so the batches are a
//!   single process's;
//! - sums the shares' gradients, each weighted by its share of the batch, in one all-reduce per
//!   step, so every rank applies the gradient of the whole batch (the moving statistics of
//!   BatchNormalization are averaged the same way, and the batch's loss comes along);
//! - reduces the epoch's losses and metric counts, and shards validation and `evaluate` batch by
//!   batch over the ranks, so logs, `History` and callbacks see the global values;
//! - runs the callbacks on every rank (their decisions are the same, made from the same logs),
//!   while only rank 0 prints and writes files ([`CallbackContext::is_chief`](crate::callbacks::CallbackContext::is_chief));
//! - agrees after every step whether any rank failed or asked to stop: a rank's error (bad data,
//!   a lost device, a NaN, a callback's `Err`) ends `fit` on every rank with an error, never a
//!   hang.
//!
//! Random ops (dropout, augmentation) draw a different stream on each rank, so with them the
//! run is statistically, not bit for bit, a single process's; without them (model4, model5) the
//! weights match a single process's up to the rounding of the gradient sum.
//!
//! The gradients are exchanged in one fused buffer once the backward pass has produced them
//! all (Horovod's tensor fusion): the autodiff hands them over together, so there is no partial
//! result to overlap communication with.

mod exchange;
#[cfg(feature = "mpi")]
mod mpi;

use std::ops::Range;
use std::sync::Arc;

use crate::error::Result;

pub(crate) use exchange::LocalStep;
#[cfg(feature = "mpi")]
pub use mpi::Mpi;

/// What data-parallel training needs from the processes it runs on: their number, this one's
/// place among them, and sums and broadcasts of buffers over all of them. Every rank must make
/// the same calls in the same order (MPI's rule for collectives).
///
/// `Mpi` (feature `mpi`) implements it over MPI; an implementation over threads (for tests)
/// or another transport (NCCL, Gloo) plugs in the same way.
pub trait Communicator: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// This process's rank among those on the same machine: which of the machine's GPUs it
    /// opens.
    fn local_rank(&self) -> usize;
    /// Replaces `values` on every rank by their element-wise sum over the ranks.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;
    /// [`all_reduce_sum`](Self::all_reduce_sum) in double precision (counts, loss sums).
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()>;
    /// Replaces `values` on every rank by rank `root`'s.
    fn broadcast(&self, values: &mut [f32], root: usize) -> Result<()>;
    /// What the ranks run on, for the line `fit` prints at the start (`"MPI (Open MPI
    /// v4.1.4)"`).
    fn describe(&self) -> String;
}

/// A model's communicator and the rules of splitting work over its ranks.
#[derive(Clone)]
pub(crate) struct Cluster {
    comm: Arc<dyn Communicator>,
}

impl Cluster {
    pub fn new(comm: Arc<dyn Communicator>) -> Self {
        Cluster { comm }
    }

    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn size(&self) -> usize {
        self.comm.size()
    }

    pub fn communicator(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }

    /// This rank's contiguous share of a batch of `len` samples: `len * r / N .. len * (r + 1)
    /// / N`, so shares differ by at most one sample and a batch smaller than N leaves some
    /// ranks none.
    pub fn share(&self, len: usize) -> Range<usize> {
        let (r, n) = (self.rank(), self.size());
        len * r / n..len * (r + 1) / n
    }

    /// Whether batch `index` of an evaluation is this rank's (batches are dealt round-robin).
    pub fn owns_batch(&self, index: usize) -> bool {
        index % self.size() == self.rank()
    }

    /// A step's random seed on this rank: rank 0 keeps a single process's, the others draw
    /// their own streams, so their shares are not dropped or augmented alike.
    pub fn step_seed(&self, seed: u64) -> u64 {
        match self.rank() {
            0 => seed,
            r => seed ^ (tensor::random::hash32(r as u32) as u64).rotate_left(29),
        }
    }

    /// Agrees on the outcome of a stretch of work every rank did: an error anywhere becomes an
    /// error everywhere (this rank's own, or one naming the failed rank), and a stop asked by
    /// any rank stops them all. Returns whether to stop.
    pub fn agree(&self, local: Result<bool>) -> Result<bool> {
        let (failed, stop) = match &local {
            Ok(stop) => (false, *stop),
            Err(_) => (true, false),
        };
        let mut flags = exchange::failure_flags(failed, self.rank()).to_vec();
        flags.push(if stop { 1.0 } else { 0.0 });
        self.comm.all_reduce_sum(&mut flags)?;
        exchange::check_failures(local.map(|_| ()), &flags, "")?;
        Ok(flags[2] > 0.0)
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {} ({})", self.rank(), self.size(), self.comm.describe())
    }
}
