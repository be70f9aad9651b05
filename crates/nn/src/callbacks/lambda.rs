//! Keras' `LambdaCallback`: a callback made of closures, for the hooks one needs.

use std::fmt;

use super::callback::{BatchLogs, Callback, CallbackContext};
use crate::error::Result;
use crate::training::Logs;

type TrainHook = Box<dyn FnMut(&mut CallbackContext<'_>) -> Result<()> + Send>;
type TrainEndHook = Box<dyn FnMut(Option<&Logs>, &mut CallbackContext<'_>) -> Result<()> + Send>;
type EpochHook = Box<dyn FnMut(usize, &mut CallbackContext<'_>) -> Result<()> + Send>;
type EpochEndHook = Box<dyn FnMut(usize, &mut Logs, &mut CallbackContext<'_>) -> Result<()> + Send>;
type BatchEndHook = Box<dyn FnMut(usize, &BatchLogs<'_>, &mut CallbackContext<'_>) -> Result<()> + Send>;

/// A callback from closures, one per hook (Keras' `LambdaCallback`); hooks without one do
/// nothing.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use nn::callbacks::LambdaCallback;
///
/// let losses = Arc::new(Mutex::new(Vec::new()));
/// let seen = losses.clone();
/// let record = LambdaCallback::new().on_epoch_end(move |_epoch, logs, _ctx| {
///     seen.lock().unwrap().push(logs["loss"]);
///     Ok(())
/// });
/// let options = nn::FitOptions::new().epochs(5).callback(record);
/// ```
#[derive(Default)]
pub struct LambdaCallback {
    train_begin: Option<TrainHook>,
    train_end: Option<TrainEndHook>,
    epoch_begin: Option<EpochHook>,
    epoch_end: Option<EpochEndHook>,
    batch_begin: Option<EpochHook>,
    batch_end: Option<BatchEndHook>,
}

impl LambdaCallback {
    /// A callback with no hooks yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Called before training.
    pub fn on_train_begin(
        mut self,
        f: impl FnMut(&mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }
    /// Called after training with the last epoch's logs.
    pub fn on_train_end(
        mut self,
        f: impl FnMut(Option<&Logs>, &mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
    /// Called before each epoch (from 0).
    pub fn on_epoch_begin(
        mut self,
        f: impl FnMut(usize, &mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }
    /// Called after each epoch (from 0) with its logs.
    pub fn on_epoch_end(
        mut self,
        f: impl FnMut(usize, &mut Logs, &mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }
    /// Called before each batch (from 0 in its epoch).
    pub fn on_train_batch_begin(
        mut self,
        f: impl FnMut(usize, &mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }
    /// Called after each batch.
    pub fn on_train_batch_end(
        mut self,
        f: impl FnMut(usize, &BatchLogs<'_>, &mut CallbackContext<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
}

impl fmt::Debug for LambdaCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaCallback").finish_non_exhaustive()
    }
}

impl Callback for LambdaCallback {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.train_begin.as_mut().map_or(Ok(()), |f| f(ctx))
    }
    fn on_train_end(&mut self, logs: Option<&Logs>, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.train_end.as_mut().map_or(Ok(()), |f| f(logs, ctx))
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.epoch_begin.as_mut().map_or(Ok(()), |f| f(epoch, ctx))
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.epoch_end.as_mut().map_or(Ok(()), |f| f(epoch, logs, ctx))
    }
    fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.batch_begin.as_mut().map_or(Ok(()), |f| f(batch, ctx))
    }
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &BatchLogs<'_>,
        ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        self.batch_end.as_mut().map_or(Ok(()), |f| f(batch, logs, ctx))
    }
}
