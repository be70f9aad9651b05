//! One training step's exchange in buckets (PyTorch DDP's gradient buckets, Horovod's tensor
//! fusion): the trainable variables are grouped, in the order the backward pass finishes them,
//! into buckets of about [`Cluster::bucket_bytes`]; a bucket's all-reduce starts as soon as its
//! last gradient is ready, while the backward pass goes on with earlier layers. The last bucket
//! (the first layers' variables, ready only when the pass ends) travels with the head: the
//! failure flags, the loss and the moving statistics.

use std::collections::HashMap;

use tensor::{Device, Gradients, Tensor, TensorId};

use super::exchange::{check_failures, failure_flags, StepOutcome};
use super::{Cluster, PendingReduce};
use crate::error::{Error, Result};

/// The head's values before the last bucket's gradients: two failure flags and the loss.
const HEAD: usize = 3;

/// The variables' grouping: indices into the optimizer's order, bucket by bucket. Made from the
/// shapes alone, so every rank makes the same buckets and starts the same collectives in the
/// same order (MPI's rule), whatever the timing.
pub(crate) fn plan_buckets(variables: &[Tensor], bucket_bytes: usize) -> Vec<Vec<usize>> {
    let mut buckets: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0usize;
    // Backward finishes the last layer's variables first.
    for (i, v) in variables.iter().enumerate().rev() {
        let size = v.numel() * std::mem::size_of::<f32>();
        match buckets.last_mut() {
            Some(bucket) if bytes.saturating_add(size) <= bucket_bytes => {
                bucket.push(i);
                bytes += size;
            }
            _ => {
                buckets.push(vec![i]);
                bytes = size;
            }
        }
    }
    if buckets.is_empty() {
        buckets.push(Vec::new());
    }
    buckets
}

struct Bucket<'c> {
    /// Their weighted gradients, packed; zeros until each is ready. The last bucket's start
    /// with the head.
    values: Vec<f32>,
    /// Variables whose gradient has not come yet.
    missing: usize,
    pending: Option<Box<dyn PendingReduce + 'c>>,
}

/// A step's exchange while the backward pass runs: fed each gradient as it is ready
/// ([`gradient_ready`](Self::gradient_ready)), then [`finish`](Self::finish)ed with the step's
/// loss (or error) and moving statistics.
pub(crate) struct StepExchange<'c> {
    cluster: &'c Cluster,
    variables: Vec<Tensor>,
    /// Per variable (by id): its index, bucket, and offset in the bucket's values.
    places: HashMap<TensorId, (usize, usize, usize)>,
    /// Whether each variable's gradient came.
    ready: Vec<bool>,
    buckets: Vec<Bucket<'c>>,
    /// The next bucket to start: buckets start in order, so the collectives are the same on
    /// every rank even when a later bucket fills first.
    next: usize,
    /// Whether a bucket failed to start (its hook's error fails the step).
    failed_start: bool,
    weight: f32,
    samples: usize,
}

impl Cluster {
    /// Starts a step's exchange: `variables` are the model's trainable variables in the
    /// optimizer's order, `samples` this rank's share of the global `batch`.
    pub fn begin_step(&self, variables: Vec<Tensor>, samples: usize, batch: usize) -> StepExchange<'_> {
        let plan = plan_buckets(&variables, self.bucket_bytes);
        let last = plan.len() - 1;
        let mut places = HashMap::new();
        let buckets = plan
            .into_iter()
            .enumerate()
            .map(|(b, members)| {
                let mut offset = if b == last { HEAD } else { 0 };
                for &i in &members {
                    places.insert(variables[i].id(), (i, b, offset));
                    offset += variables[i].numel();
                }
                Bucket { missing: members.len(), values: vec![0.0; offset], pending: None }
            })
            .collect();
        StepExchange {
            cluster: self,
            ready: vec![false; variables.len()],
            variables,
            places,
            buckets,
            next: 0,
            failed_start: false,
            weight: samples as f32 / batch as f32,
            samples,
        }
    }
}

impl<'c> StepExchange<'c> {
    /// Takes `variable`'s gradient (the backward pass's hook): weighted by the rank's share of
    /// the batch into its bucket, whose all-reduce starts if it was the bucket's last.
    /// Variables that are not the model's trainable ones are ignored.
    pub fn gradient_ready(&mut self, variable: &Tensor, grad: &Tensor) -> Result<()> {
        let Some(&(i, b, offset)) = self.places.get(&variable.id()) else { return Ok(()) };
        if std::mem::replace(&mut self.ready[i], true) {
            return Err(Error::Build(format!("variable {i} got two gradients in one step (internal error)")));
        }
        let weight = self.weight;
        let bucket = &mut self.buckets[b];
        let slot = &mut bucket.values[offset..offset + variable.numel()];
        // As the fused exchange did: each gradient times the share's weight, then summed.
        slot.iter_mut().zip(grad.to_vec()?).for_each(|(s, g)| *s = g * weight);
        bucket.missing -= 1;
        while self.next + 1 < self.buckets.len() && self.buckets[self.next].missing == 0 {
            self.start(self.next)?;
        }
        // Let the buckets in flight progress while the pass goes on.
        for bucket in &mut self.buckets[..self.next] {
            if let Some(pending) = &mut bucket.pending {
                pending.test()?;
            }
        }
        Ok(())
    }

    /// Starts bucket `b`, the next one. A start that fails is not tried again: the error
    /// fails the step, and the bucket is left out of the unpacking.
    fn start(&mut self, b: usize) -> Result<()> {
        debug_assert_eq!(b, self.next);
        self.next += 1;
        let values = std::mem::take(&mut self.buckets[b].values);
        let pending = self.cluster.comm.start_all_reduce_sum(values);
        self.failed_start |= pending.is_err();
        self.buckets[b].pending = Some(pending?);
        Ok(())
    }

    /// Ends the exchange: `loss` is this rank's loss (0 for an empty share) or its error,
    /// `stats` the moving statistics the step updated. A rank that failed still starts every
    /// bucket (zeros) and the head that tells the others; a gradient that never came counts as
    /// zeros in the sum and, for a rank with samples, as an error, as the optimizer of a single
    /// process would raise. Every rank then gets the whole batch's gradients, loss and
    /// statistics, or an error.
    pub fn finish(
        mut self,
        loss: Result<f32>,
        stats: &[&Tensor],
        device: &Device,
        while_doing: &str,
    ) -> Result<StepOutcome> {
        let last = self.buckets.len() - 1;
        let head_len = self.buckets[last].values.len();
        let stats_len: usize = stats.iter().map(|s| s.numel()).sum();
        let packed = loss.and_then(|loss| {
            if self.failed_start {
                return Err(Error::Distributed("a gradient bucket's all-reduce failed to start".into()));
            }
            if self.samples > 0 {
                if let Some(i) = self.ready.iter().position(|r| !r) {
                    let v = &self.variables[i];
                    return Err(Error::Build(format!("variable {i} of shape {} has no gradient", v.shape())));
                }
            }
            let head = &mut self.buckets[last].values;
            head[..HEAD].copy_from_slice(&[0.0, 0.0, loss * self.weight]);
            head.reserve(stats_len);
            for s in stats {
                head.extend(s.to_vec()?.into_iter().map(|x| x * self.weight));
            }
            Ok(())
        });
        if packed.is_err() {
            // This rank still joins every sum, so that the others learn of its failure.
            for bucket in &mut self.buckets[self.next..] {
                bucket.values.fill(0.0);
            }
            let head = &mut self.buckets[last].values;
            head.resize(head_len + stats_len, 0.0);
            head[..2].copy_from_slice(&failure_flags(true, self.cluster.rank()));
        }
        while self.next < self.buckets.len() {
            self.start(self.next)?;
        }
        let mut sums = Vec::with_capacity(self.buckets.len());
        for bucket in &mut self.buckets {
            // A bucket whose start failed has none; that failure is this rank's error.
            sums.push(match bucket.pending.take() {
                Some(pending) => pending.wait()?,
                None => Vec::new(),
            });
        }
        check_failures(packed, &sums[last], while_doing)?;

        let mut grads = Gradients::default();
        for v in &self.variables {
            let (_, b, offset) = self.places[&v.id()];
            let sum = &sums[b][offset..offset + v.numel()];
            grads.accumulate(v, Tensor::from_slice(sum, v.shape().clone(), device)?)?;
        }
        let mut rest = &sums[last][head_len..];
        let stats = stats
            .iter()
            .map(|s| {
                let (head, tail) = rest.split_at(s.numel());
                rest = tail;
                Ok(Tensor::from_slice(head, s.shape().clone(), device)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StepOutcome { grads, loss: sums[last][2], stats })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(sizes: &[usize]) -> Vec<Tensor> {
        let cpu = crate::device::cpu();
        sizes.iter().map(|&n| Tensor::from_slice(&vec![0.0; n], [n], &cpu).unwrap().to_variable()).collect()
    }

    #[test]
    fn buckets_fill_up_to_the_cap_from_the_last_variable() {
        // Bytes: 400, 40, 4000, 80.
        let v = variables(&[100, 10, 1000, 20]);
        assert_eq!(plan_buckets(&v, usize::MAX), vec![vec![3, 2, 1, 0]]);
        assert_eq!(plan_buckets(&v, 0), vec![vec![3], vec![2], vec![1], vec![0]]);
        assert_eq!(plan_buckets(&v, 4080), vec![vec![3, 2], vec![1, 0]]);
        assert_eq!(plan_buckets(&v, 1000), vec![vec![3], vec![2], vec![1, 0]]);
        assert_eq!(plan_buckets(&[], 1000), vec![Vec::<usize>::new()]);
    }
}
