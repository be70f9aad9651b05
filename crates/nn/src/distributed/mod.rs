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
//! - sums the shares' gradients, each weighted by its share of the batch, in all-reduces over
//!   buckets of variables started as the backward pass produces them, so every rank applies the
//!   gradient of the whole batch (the moving statistics of BatchNormalization are averaged the
//!   same way, and the batch's loss comes along);
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
//! The gradients travel in buckets (PyTorch DDP's, Horovod's tensor fusion): the trainable
//! variables, last layer first (the order [`Tensor::backward_with`](tensor::Tensor::backward_with)
//! completes them in), are grouped from their shapes alone into buckets of at most
//! [`DEFAULT_BUCKET_BYTES`] (or [`Model::distribute_with_buckets`](crate::Model::distribute_with_buckets)'
//! size), and a bucket's all-reduce starts ([`Communicator::start_all_reduce_sum`]) the moment
//! its last gradient is ready, while the pass goes on with the earlier layers. Buckets start in
//! order and every rank makes the same ones, so the collectives match on every rank; a rank
//! that fails still starts every bucket (with zeros) and the final all-reduce, which carries
//! the last bucket (the first layers', ready only at the end) with the failure flags, the loss
//! and the moving statistics. The sums are element-wise, so the weights are the same, bit for
//! bit, as with one fused all-reduce after the pass (`usize::MAX` bytes), whatever the size.
//! How much communication hides behind the pass depends on the transport: Open MPI moves a
//! non-blocking collective on only inside MPI calls, so `Mpi` tests the buckets in flight each
//! time a gradient is ready (`MPI_Test`) and a helper thread drives them between (Horovod's
//! background thread; `Mpi::set_progress_thread`).

mod buckets;
mod exchange;
#[cfg(feature = "mpi")]
mod mpi;

use std::ops::Range;
use std::sync::Arc;

use crate::error::Result;

pub(crate) use buckets::StepExchange;
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
    /// Starts [`all_reduce_sum`](Self::all_reduce_sum) of `values` without waiting for it
    /// (`MPI_Iallreduce`; PyTorch's `all_reduce(..., async_op=True)`): the result comes from
    /// [`PendingReduce::wait`]. Every rank must start the same reductions in the same order.
    /// The default sums at once, blocking, and hands back the finished result; `Mpi`
    /// overrides it, so a step's gradient buckets travel while the backward pass goes on.
    fn start_all_reduce_sum(&self, mut values: Vec<f32>) -> Result<Box<dyn PendingReduce + '_>> {
        self.all_reduce_sum(&mut values)?;
        Ok(Box::new(values))
    }
    /// [`all_reduce_sum`](Self::all_reduce_sum) in double precision (counts, loss sums).
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()>;
    /// Replaces `values` on every rank by rank `root`'s.
    fn broadcast(&self, values: &mut [f32], root: usize) -> Result<()>;
    /// What the ranks run on, for the line `fit` prints at the start (`"MPI (Open MPI
    /// v4.1.4)"`).
    fn describe(&self) -> String;
}

/// A sum over the ranks started by [`Communicator::start_all_reduce_sum`] (an MPI request,
/// PyTorch's `Work`).
pub trait PendingReduce {
    /// Lets the reduction progress without blocking (`MPI_Test`: Open MPI moves non-blocking
    /// collectives on only inside MPI calls) and says whether it has finished.
    fn test(&mut self) -> Result<bool>;
    /// Waits for the reduction to finish and returns the sum.
    fn wait(self: Box<Self>) -> Result<Vec<f32>>;
}

/// A finished reduction: its result.
impl PendingReduce for Vec<f32> {
    fn test(&mut self) -> Result<bool> {
        Ok(true)
    }
    fn wait(self: Box<Self>) -> Result<Vec<f32>> {
        Ok(*self)
    }
}

/// The default size of a step's gradient buckets ([`Model::distribute_with_buckets`](crate::Model::distribute_with_buckets)).
/// PyTorch's DDP takes 25 MB and Horovod fuses up to 64 MB, sized for models of millions of
/// weights over a network; the lecture's models hold 0.1-0.3 M weights (0.4-1.2 MB), so that
/// would be one bucket started only when the backward pass has ended. 1 MiB gives model4's
/// 1.15 MB dense kernel a bucket of its own (3 all-reduces a step) and keeps model5's in one;
/// on 2 ranks smaller buckets (0-256 KiB) hid no more and cost more collectives (see
/// `docs/performance.md`, "Gradient buckets").
pub const DEFAULT_BUCKET_BYTES: usize = 1 << 20;

/// A model's communicator and the rules of splitting work over its ranks.
#[derive(Clone)]
pub(crate) struct Cluster {
    comm: Arc<dyn Communicator>,
    /// The gradient buckets' size cap, in bytes.
    bucket_bytes: usize,
}

impl Cluster {
    pub fn new(comm: Arc<dyn Communicator>, bucket_bytes: usize) -> Self {
        Cluster { comm, bucket_bytes }
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
