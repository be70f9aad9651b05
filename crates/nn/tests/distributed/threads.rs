//! Ranks as threads of this process: a `Communicator` for the tests, which also counts the
//! reductions a rank starts and can inject a fault into one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use nn::distributed::{Communicator, PendingReduce};

/// Ranks as threads: sums in rank order, so every rank gets the same bits.
pub struct ThreadGroup {
    size: usize,
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
    /// Whether started reductions sum only when waited for (as a slow network would deliver
    /// them), rather than at once.
    deferred: bool,
}

pub struct ThreadRank {
    rank: usize,
    group: Arc<ThreadGroup>,
    /// The lengths of the reductions this rank started, in order.
    pub started: Mutex<Vec<usize>>,
    /// The blocking `all_reduce_sum` calls (the agreements after each hook and step).
    pub blocking: AtomicUsize,
    /// Makes the n-th started reduction (from 1) return an error after taking part in it, as a
    /// rank failing halfway through its backward pass.
    pub fail_at_start: Option<usize>,
}

impl ThreadGroup {
    pub fn ranks(size: usize) -> Vec<Arc<dyn Communicator>> {
        Self::counted(size, false, |_| None).into_iter().map(|r| r as Arc<dyn Communicator>).collect()
    }

    /// `size` ranks whose reductions are deferred to `wait` if `deferred`; `fail_at_start(r)`
    /// is rank r's [`ThreadRank::fail_at_start`].
    pub fn counted(
        size: usize,
        deferred: bool,
        fail_at_start: impl Fn(usize) -> Option<usize>,
    ) -> Vec<Arc<ThreadRank>> {
        let group = Arc::new(ThreadGroup {
            size,
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
            deferred,
        });
        (0..size)
            .map(|rank| {
                Arc::new(ThreadRank {
                    rank,
                    group: group.clone(),
                    started: Mutex::new(Vec::new()),
                    blocking: AtomicUsize::new(0),
                    fail_at_start: fail_at_start(rank),
                })
            })
            .collect()
    }
}

impl ThreadRank {
    /// Every rank's `values`, then `combine` of them on every rank.
    fn exchange(&self, values: &[f64], combine: impl FnOnce(&[Vec<f64>]) -> Vec<f64>) -> Vec<f64> {
        self.group.slots.lock().unwrap()[self.rank] = values.to_vec();
        self.group.barrier.wait();
        let out = combine(&self.group.slots.lock().unwrap());
        self.group.barrier.wait();
        out
    }

    fn sum(&self, values: &[f64]) -> Vec<f64> {
        self.exchange(values, |all| {
            let mut sum = all[0].clone();
            for other in &all[1..] {
                sum.iter_mut().zip(other).for_each(|(s, o)| *s += o);
            }
            sum
        })
    }

    fn sum_f32(&self, values: &mut [f32]) {
        // Summed in f32, in rank order, as an MPI reduction of f32 does.
        let sum = self.exchange(&values.iter().map(|&v| v as f64).collect::<Vec<_>>(), |all| {
            let mut sum: Vec<f32> = all[0].iter().map(|&v| v as f32).collect();
            for other in &all[1..] {
                sum.iter_mut().zip(other).for_each(|(s, &o)| *s += o as f32);
            }
            sum.into_iter().map(f64::from).collect()
        });
        values.iter_mut().zip(sum).for_each(|(v, s)| *v = s as f32);
    }
}

/// A reduction a deferred group sums when waited for.
struct Deferred<'a> {
    rank: &'a ThreadRank,
    values: Vec<f32>,
}

impl PendingReduce for Deferred<'_> {
    fn test(&mut self) -> nn::Result<bool> {
        Ok(false)
    }
    fn wait(mut self: Box<Self>) -> nn::Result<Vec<f32>> {
        self.rank.sum_f32(&mut self.values);
        Ok(self.values)
    }
}

impl Communicator for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.group.size
    }
    fn local_rank(&self) -> usize {
        self.rank
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> nn::Result<()> {
        self.blocking.fetch_add(1, Ordering::Relaxed);
        self.sum_f32(values);
        Ok(())
    }
    fn start_all_reduce_sum(&self, mut values: Vec<f32>) -> nn::Result<Box<dyn PendingReduce + '_>> {
        let count = {
            let mut started = self.started.lock().unwrap();
            started.push(values.len());
            started.len()
        };
        let pending: Box<dyn PendingReduce> = if self.group.deferred {
            Box::new(Deferred { rank: self, values })
        } else {
            self.sum_f32(&mut values);
            Box::new(values)
        };
        if self.fail_at_start == Some(count) {
            // Still in the sum (dropped pending ones are waited for by MPI, here summed).
            pending.wait()?;
            return Err(nn::Error::Distributed(format!("injected fault at reduction {count}")));
        }
        Ok(pending)
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> nn::Result<()> {
        let sum = self.sum(values);
        values.copy_from_slice(&sum);
        Ok(())
    }
    fn broadcast(&self, values: &mut [f32], root: usize) -> nn::Result<()> {
        let own: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let rooted = self.exchange(&own, |all| all[root].clone());
        values.iter_mut().zip(rooted).for_each(|(v, r)| *v = r as f32);
        Ok(())
    }
    fn describe(&self) -> String {
        "threads".into()
    }
}
