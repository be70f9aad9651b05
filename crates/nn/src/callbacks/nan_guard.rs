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
