//! What `fit` does besides training, as Keras' callbacks: [`ModelCheckpoint`] saves the model
//! after every epoch (or only the best one), and the NaN guard behind
//! [`FitOptions::terminate_on_nan`](crate::FitOptions::terminate_on_nan) (Keras'
//! `TerminateOnNaN`) stops training at the first step whose loss is not finite.

mod checkpoint;
mod nan_guard;

pub use checkpoint::{ModelCheckpoint, MonitorMode};
pub(crate) use nan_guard::NanGuard;
pub use nan_guard::DEVICE_NAN_CHECK_INTERVAL;
