//! Keras' `TerminateOnNaN`: stop at the first training step whose loss is NaN or infinite.

use tensor::{Device, Tensor};

use crate::error::{Error, Result};

/// Steps between loss checks on a device whose values must be copied back (a GPU): reading the
/// loss makes the host wait until the device has finished every queued step, so checking each
/// step would stall the pipeline. Checks are also made at the end of each epoch.
pub const DEVICE_NAN_CHECK_INTERVAL: usize = 100;

/// Watches the loss of each step of an epoch. On the CPU the loss is read after every step (a
/// read costs nothing there); elsewhere the epoch's running loss sum is read every
/// [`DEVICE_NAN_CHECK_INTERVAL`] steps, and only when it is not finite are the losses of the
/// steps since the last check read one by one, so the error still names the first bad step.
pub(crate) struct NanGuard {
    every: usize,
    /// (1-based step, its loss) since the last check.
    pending: Vec<(usize, Tensor)>,
}

impl NanGuard {
    /// A guard checking every step on the CPU, every [`DEVICE_NAN_CHECK_INTERVAL`] steps
    /// elsewhere.
    pub(crate) fn for_device(device: &Device) -> Self {
        // The CPU backend's name is "cpu (N threads)"; its values live in host memory.
        let every = if device.name().starts_with("cpu") { 1 } else { DEVICE_NAN_CHECK_INTERVAL };
        NanGuard { every, pending: Vec::with_capacity(every) }
    }

    /// Notes step `step`'s (1-based) `loss`; `running_sum` is the epoch's loss sum so far,
    /// this step included. Fails with [`Error::NonFiniteLoss`] once a check finds a bad step.
    pub(crate) fn after_step(
        &mut self,
        epoch: usize,
        step: usize,
        loss: &Tensor,
        running_sum: Option<&Tensor>,
    ) -> Result<()> {
        self.pending.push((step, loss.clone()));
        if self.pending.len() >= self.every {
            self.check(epoch, running_sum)?;
        }
        Ok(())
    }

    /// Checks the steps not checked yet.
    pub(crate) fn check(&mut self, epoch: usize, running_sum: Option<&Tensor>) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let (Some(&(last_step, _)), Some(sum)) = (pending.last(), running_sum) else { return Ok(()) };
        // Earlier checks passed, so the sum covers only finite losses but these.
        let total = if pending.len() == 1 { pending[0].1.item()? } else { sum.item()? };
        if total.is_finite() {
            return Ok(());
        }
        for (step, loss) in &pending {
            let value = loss.item()?;
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss { epoch, step: *step, loss: value });
            }
        }
        // Every loss is finite but their (weighted) sum overflowed.
        Err(Error::NonFiniteLoss { epoch, step: last_step, loss: total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds per-step losses to a guard checking every `every` steps, keeping the running sum
    /// as `fit` does; returns the error, if any, and after how many steps it came.
    fn run(every: usize, losses: &[f32]) -> Option<(Error, usize)> {
        let device = crate::device::cpu();
        let mut guard = NanGuard { every, pending: Vec::new() };
        let mut sum: Option<Tensor> = None;
        for (i, &l) in losses.iter().enumerate() {
            let loss = Tensor::scalar(l, &device).unwrap();
            sum = Some(match sum {
                Some(s) => s.add(&loss).unwrap(),
                None => loss.clone(),
            });
            if let Err(e) = guard.after_step(3, i + 1, &loss, sum.as_ref()) {
                return Some((e, i + 1));
            }
        }
        guard.check(3, sum.as_ref()).err().map(|e| (e, losses.len()))
    }

    #[test]
    fn every_step_checks_stop_at_the_bad_step() {
        let (err, after) = run(1, &[1.0, 2.0, f32::NAN, 4.0]).unwrap();
        assert!(matches!(err, Error::NonFiniteLoss { epoch: 3, step: 3, loss } if loss.is_nan()), "{err:?}");
        assert_eq!(after, 3);
        assert_eq!(err.to_string(), "epoch 3, batch 3: invalid loss (NaN), terminating training");
    }

    #[test]
    fn sparse_checks_still_name_the_first_bad_step() {
        // Checked after step 4: steps 3 (inf) and 4 (NaN) are both bad, 3 is named.
        let (err, after) = run(4, &[1.0, 2.0, f32::INFINITY, f32::NAN, 5.0]).unwrap();
        assert!(
            matches!(err, Error::NonFiniteLoss { step: 3, loss, .. } if loss == f32::INFINITY),
            "{err:?}"
        );
        assert_eq!(after, 4);
        // The last, partial interval is checked at the end of the epoch.
        let (err, after) = run(4, &[1.0, 2.0, 3.0, 4.0, 5.0, f32::NAN]).unwrap();
        assert!(matches!(err, Error::NonFiniteLoss { step: 6, .. }), "{err:?}");
        assert_eq!(after, 6);
        assert!(run(4, &[1.0, 2.0, 3.0, 4.0, 5.0]).is_none());
    }

    #[test]
    fn an_overflowing_sum_of_finite_losses_is_reported_at_the_check() {
        let (err, _) = run(2, &[f32::MAX, f32::MAX]).unwrap();
        assert!(
            matches!(err, Error::NonFiniteLoss { step: 2, loss, .. } if loss == f32::INFINITY),
            "{err:?}"
        );
    }
}
