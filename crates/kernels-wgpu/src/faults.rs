//! Device errors reported outside any error scope (validation, out of memory) and device loss,
//! turned into `Err`s of later operations instead of wgpu's default panic.

use std::sync::{Arc, Mutex, MutexGuard};

use tensor::{Result, TensorError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the device reported, shared with wgpu's callbacks.
#[derive(Default)]
pub(crate) struct DeviceFaults {
    /// The first error reported since the last check; returned once.
    error: Arc<Mutex<Option<String>>>,
    /// Why the device was lost, if it was: returned by every later check, since nothing can
    /// run on a lost device.
    lost: Arc<Mutex<Option<String>>>,
}

impl DeviceFaults {
    /// Starts recording `device`'s uncaptured errors and its loss.
    pub(crate) fn watch(device: &wgpu::Device) -> Self {
        let faults = DeviceFaults::default();
        let sink = faults.error.clone();
        // Without a handler wgpu panics on a validation error or out-of-memory.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = lock(&sink);
            if slot.is_none() {
                *slot = Some(describe(&e));
            }
        }));
        let lost = faults.lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = lock(&lost);
            if slot.is_none() {
                *slot = Some(lost_message(reason, &message));
            }
        });
        faults
    }

    /// The error the device reported since the last check, if any; once the device is lost,
    /// always that.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(lost) = lock(&self.lost).as_ref() {
            return Err(TensorError::Backend(format!("wgpu: {lost}")));
        }
        match lock(&self.error).take() {
            Some(e) => Err(TensorError::Backend(format!("wgpu: {e}"))),
            None => Ok(()),
        }
    }
}

/// A device error as the user should read it.
fn describe(e: &wgpu::Error) -> String {
    match e {
        wgpu::Error::OutOfMemory { .. } => format!("out of GPU memory ({e}); try a smaller batch size"),
        _ => e.to_string(),
    }
}

fn lost_message(reason: wgpu::DeviceLostReason, message: &str) -> String {
    format!(
        "the GPU device was lost ({reason:?}: {message}); its buffers are gone, so the model must \
         be rebuilt, e.g. from the last checkpoint"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_says_so_and_what_to_try() {
        let e = wgpu::Error::OutOfMemory { source: Box::new(std::io::Error::other("no memory left")) };
        let text = describe(&e);
        assert!(text.starts_with("out of GPU memory ("), "{text}");
        assert!(text.ends_with("); try a smaller batch size"), "{text}");
    }

    #[test]
    fn errors_are_returned_once_and_a_lost_device_forever() {
        let faults = DeviceFaults::default();
        assert!(faults.check().is_ok());
        *lock(&faults.error) = Some("validation failed".into());
        assert_eq!(faults.check().unwrap_err().to_string(), "backend error: wgpu: validation failed");
        assert!(faults.check().is_ok(), "a validation error is reported once");
        *lock(&faults.lost) = Some(lost_message(wgpu::DeviceLostReason::Destroyed, "gone"));
        for _ in 0..2 {
            let err = faults.check().unwrap_err().to_string();
            assert!(err.contains("the GPU device was lost (Destroyed: gone)"), "{err}");
        }
    }
}
