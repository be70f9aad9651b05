//! Keras' `TerminateOnNaN`: stop at the first training step whose loss is NaN or infinite.

use tensor::{Device, Tensor};

use super::callback::{BatchLogs, Callback, CallbackContext};
use crate::error::{Error, Result};

/// Stops training at the first batch whose loss is NaN or infinite, as Keras'
/// `TerminateOnNaN`: by default it prints `Batch 16: Invalid loss, terminating training` and
/// stops training (`fit` returns its `History`); with [`raise_error`](Self::raise_error) `fit`
/// fails with [`Error::NonFiniteLoss`] naming the epoch and batch instead (what
/// [`FitOptions::terminate_on_nan`](crate::FitOptions::terminate_on_nan), on by default, adds).
///
/// On the CPU the loss is read after every step (a read costs nothing there); on a backend
/// whose reads wait for queued work, the epoch's running loss sum is read every
/// [`loss_check_interval`](tensor::Capabilities) steps the backend asks for (100 on wgpu) and
/// at the end of each epoch, and only when it is not finite are the losses of the steps since the last check
/// read one by one, so the first bad step is still the one named.
pub struct TerminateOnNaN {
    raise_error: bool,
    every: usize,
    /// (0-based batch, its loss) since the last check.
    pending: Vec<(usize, Tensor)>,
    epoch: usize,
}

impl TerminateOnNaN {
    /// Keras' default: stop training, without an error.
    pub fn new() -> Self {
        TerminateOnNaN { raise_error: false, every: 1, pending: Vec::new(), epoch: 0 }
    }

    /// Fail `fit` with [`Error::NonFiniteLoss`] instead of stopping quietly (Keras'
    /// `raise_error=True`).
    pub fn raise_error(mut self, yes: bool) -> Self {
        self.raise_error = yes;
        self
    }

    /// Checks the steps not checked yet; `running_sum` is the epoch's loss sum so far. Returns
    /// the first bad (0-based batch, loss).
    fn check(&mut self, running_sum: Option<&Tensor>) -> Result<Option<(usize, f32)>> {
        let pending = std::mem::take(&mut self.pending);
        let (Some(&(last_batch, _)), Some(sum)) = (pending.last(), running_sum) else { return Ok(None) };
        // Earlier checks passed, so the sum covers only finite losses but these.
        let total = if pending.len() == 1 { pending[0].1.item()? } else { sum.item()? };
        if total.is_finite() {
            return Ok(None);
        }
        for (batch, loss) in &pending {
            let value = loss.item()?;
            if !value.is_finite() {
                return Ok(Some((*batch, value)));
            }
        }
        // Every loss is finite but their (weighted) sum overflowed.
        Ok(Some((last_batch, total)))
    }
}

impl Default for TerminateOnNaN {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.every = check_interval(ctx.model().device());
        self.pending.clear();
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.epoch = epoch;
        self.pending.clear();
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &BatchLogs<'_>,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        self.pending.push((batch, logs.loss().clone()));
        let last_of_epoch = batch + 1 == ctx.steps();
        if self.pending.len() < self.every && !last_of_epoch {
            return Ok(());
        }
        let Some((bad, loss)) = self.check(logs.running_loss_sum)? else { return Ok(()) };
        if self.raise_error {
            return Err(Error::NonFiniteLoss { epoch: self.epoch + 1, step: bad + 1, loss });
        }
        ctx.print(&format!("Batch {bad}: Invalid loss, terminating training"));
        ctx.stop_training();
        Ok(())
    }
}

/// What the backend asks for: every step where reads are free (the CPU), every 100 steps on the
/// wgpu backend, where each read drains the GPU's queue.
fn check_interval(device: &Device) -> usize {
    device.capabilities().loss_check_interval.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds per-step losses to a guard checking every `every` steps, keeping the running sum
    /// as `fit` does; returns the first bad (batch, loss), if any, and after how many steps it
    /// was found.
    fn run(every: usize, losses: &[f32]) -> Option<((usize, f32), usize)> {
        let device = crate::device::cpu();
        let mut guard = TerminateOnNaN { every, ..TerminateOnNaN::new() };
        let mut sum: Option<Tensor> = None;
        for (i, &l) in losses.iter().enumerate() {
            let loss = Tensor::scalar(l, &device).unwrap();
            sum = Some(match sum {
                Some(s) => s.add(&loss).unwrap(),
                None => loss.clone(),
            });
            guard.pending.push((i, loss));
            if guard.pending.len() >= every {
                if let Some(bad) = guard.check(sum.as_ref()).unwrap() {
                    return Some((bad, i + 1));
                }
            }
        }
        guard.check(sum.as_ref()).unwrap().map(|bad| (bad, losses.len()))
    }

    #[test]
    fn every_step_checks_stop_at_the_bad_step() {
        let ((batch, loss), after) = run(1, &[1.0, 2.0, f32::NAN, 4.0]).unwrap();
        assert!(batch == 2 && loss.is_nan());
        assert_eq!(after, 3);
    }

    #[test]
    fn sparse_checks_still_name_the_first_bad_step() {
        // Checked after step 4: steps 3 (inf) and 4 (NaN) are both bad, 3 is named.
        let ((batch, loss), after) = run(4, &[1.0, 2.0, f32::INFINITY, f32::NAN, 5.0]).unwrap();
        assert_eq!((batch, loss), (2, f32::INFINITY));
        assert_eq!(after, 4);
        // The last, partial interval is checked at the end of the epoch.
        let ((batch, _), after) = run(4, &[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN]).unwrap();
        assert_eq!((batch, after), (5, 6));
        assert!(run(4, &[1.0, 2.0, 3.0, 4.0, 5.0]).is_none());
    }

    #[test]
    fn an_overflowing_sum_of_finite_losses_is_reported_at_the_check() {
        let ((batch, loss), _) = run(2, &[f32::MAX, f32::MAX]).unwrap();
        assert_eq!((batch, loss), (1, f32::INFINITY));
    }

    #[test]
    fn the_error_names_epoch_and_batch_from_one() {
        let err = Error::NonFiniteLoss { epoch: 3, step: 3, loss: f32::NAN };
        assert_eq!(err.to_string(), "epoch 3, batch 3: invalid loss (NaN), terminating training");
    }
}
