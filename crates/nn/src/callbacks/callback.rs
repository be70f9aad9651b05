//! The [`Callback`] trait, what its hooks see ([`CallbackContext`], [`BatchLogs`]), and the
//! list `fit` calls them through.

use std::sync::{Arc, Mutex};

use tensor::Tensor;

use crate::error::Result;
use crate::model::Model;
use crate::progress::ProgressOutput;
use crate::training::Logs;

/// Something `fit` calls at Keras' hooks, in Keras' order:
///
/// ```text
/// on_train_begin
///   on_epoch_begin(epoch)                      epoch counts from 0, as in Keras
///     on_train_batch_begin(batch)              batch counts from 0 in the epoch
///     on_train_batch_end(batch, batch logs)
///     ... (every batch)
///   on_epoch_end(epoch, epoch logs)            after validation: `val_` keys included
///   ... (every epoch, until the last or until a callback stops training)
/// on_train_end(last epoch's logs)
/// ```
///
/// Every hook may read and change the model through the [`CallbackContext`] (save it, set its
/// weights, read or set the optimizer's learning rate) and stop training
/// ([`CallbackContext::stop_training`]: the current batch finishes, the epoch ends with its
/// validation and `on_epoch_end`, then `on_train_end` runs). An `Err` from a hook ends `fit`
/// with that error at once. Every method has an empty default, so a callback implements only
/// the hooks it needs.
///
/// ```
/// use nn::callbacks::{Callback, CallbackContext};
/// use nn::training::Logs;
///
/// /// Stops training once the training accuracy reaches a target.
/// struct StopAt(f32);
///
/// impl Callback for StopAt {
///     fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
///         if logs.get("accuracy").is_some_and(|&a| a >= self.0) {
///             ctx.stop_training();
///         }
///         Ok(())
///     }
/// }
/// let options = nn::FitOptions::new().epochs(50).callback(StopAt(0.99));
/// ```
pub trait Callback: Send {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After the last epoch, with its logs (`None` when no epoch ran).
    fn on_train_end(&mut self, _logs: Option<&Logs>, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// Before epoch `epoch` (from 0).
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After epoch `epoch` (from 0) and its validation. `logs` holds the epoch's means (and
    /// `val_` values); a callback may add to them (Keras' `ReduceLROnPlateau` adds
    /// `learning_rate`), and callbacks after it, the `History` among them, see the addition.
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        _ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        Ok(())
    }
    /// Before batch `batch` (from 0 in the epoch).
    fn on_train_batch_begin(&mut self, _batch: usize, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        Ok(())
    }
    /// After batch `batch`'s gradient step.
    fn on_train_batch_end(
        &mut self,
        _batch: usize,
        _logs: &BatchLogs<'_>,
        _ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        Ok(())
    }
}

/// A callback shared between `FitOptions` and its owner (see
/// [`FitOptions::shared_callback`](crate::FitOptions::shared_callback)).
pub type SharedCallback = Arc<Mutex<dyn Callback>>;

/// What a batch's end tells a callback. The values live on the model's device: reading them
/// (`item`, [`running`](Self::running)) makes the host wait for the device, which a GPU pays
/// for, so read them only as often as needed.
pub struct BatchLogs<'a> {
    pub(crate) loss: &'a Tensor,
    pub(crate) size: usize,
    pub(crate) running: &'a dyn Fn() -> Result<Logs>,
    pub(crate) running_loss_sum: Option<&'a Tensor>,
}

impl BatchLogs<'_> {
    /// The batch's (weighted total) loss, a scalar on the device.
    pub fn loss(&self) -> &Tensor {
        self.loss
    }
    /// Samples in the batch.
    pub fn size(&self) -> usize {
        self.size
    }
    /// The epoch's means so far (`loss`, `accuracy`, ...), as Keras passes them to
    /// `on_train_batch_end`.
    pub fn running(&self) -> Result<Logs> {
        (self.running)()
    }
}

/// The run of `fit` a hook is called in, and the model it trains.
pub struct CallbackContext<'a> {
    pub(crate) model: &'a mut Model,
    pub(crate) state: &'a mut FitState,
}

/// What `fit` tells its callbacks about the run (Keras' `callback.params`) and what they tell
/// it back.
pub(crate) struct FitState {
    pub stop_training: bool,
    pub epochs: usize,
    pub initial_epoch: usize,
    pub steps: usize,
    pub verbose: u8,
    pub log_keys: Vec<String>,
    pub output: ProgressOutput,
    pub epoch_seconds: f64,
    /// This process's rank and the number of ranks (0 and 1 unless distributed).
    pub rank: usize,
    pub ranks: usize,
}

impl CallbackContext<'_> {
    /// The model being trained.
    pub fn model(&self) -> &Model {
        self.model
    }
    /// The model being trained, to change (e.g. [`Model::set_weights`]).
    pub fn model_mut(&mut self) -> &mut Model {
        self.model
    }
    /// Ends training after the current batch (Keras' `model.stop_training = True`).
    pub fn stop_training(&mut self) {
        self.state.stop_training = true;
    }
    /// Whether a callback has asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.state.stop_training
    }
    /// The optimizer's learning rate for the next step (a schedule's value at the current
    /// step).
    pub fn learning_rate(&self) -> f32 {
        self.model.compiled.as_ref().expect("fit runs compiled models").optimizer.learning_rate()
    }
    /// Sets the optimizer's learning rate (Keras' `optimizer.learning_rate = lr`); an error if
    /// the optimizer follows a schedule, as in Keras.
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()> {
        self.model
            .compiled
            .as_mut()
            .expect("fit runs compiled models")
            .optimizer
            .set_learning_rate(learning_rate)
    }
    /// The `epochs` `fit` was given (the last epoch, counted from 1).
    pub fn epochs(&self) -> usize {
        self.state.epochs
    }
    /// The epoch training resumed after (`initial_epoch`).
    pub fn initial_epoch(&self) -> usize {
        self.state.initial_epoch
    }
    /// Batches per epoch.
    pub fn steps(&self) -> usize {
        self.state.steps
    }
    /// `fit`'s verbosity.
    pub fn verbose(&self) -> u8 {
        self.state.verbose
    }
    /// The keys every epoch's logs will have before callbacks add to them (`loss`, `accuracy`,
    /// `val_loss`, ...), known at `on_train_begin`, so a callback can check what it monitors.
    pub fn log_keys(&self) -> &[String] {
        &self.state.log_keys
    }
    /// Seconds the epoch that just ended trained for (validation excluded); 0 before.
    pub fn epoch_seconds(&self) -> f64 {
        self.state.epoch_seconds
    }
    /// Prints a line where `fit` prints its progress (standard output unless
    /// [`FitOptions::output`](crate::FitOptions::output) says otherwise); on rank 0 only in
    /// data-parallel training.
    pub fn print(&self, line: &str) {
        if self.is_chief() {
            self.state.output.write_line(line);
        }
    }
    /// Where `fit` prints its progress.
    pub fn output(&self) -> &ProgressOutput {
        &self.state.output
    }
    /// This process's rank in data-parallel training (0 in a single process; see
    /// [`distributed`](crate::distributed)).
    pub fn rank(&self) -> usize {
        self.state.rank
    }
    /// The number of ranks training together (1 in a single process).
    pub fn ranks(&self) -> usize {
        self.state.ranks
    }
    /// Whether this rank is the one that prints and writes files (rank 0, Keras' "chief"):
    /// every rank runs the callbacks, so that their decisions agree, but a callback that
    /// writes (a checkpoint, a CSV log) does so only here.
    pub fn is_chief(&self) -> bool {
        self.state.rank == 0
    }
}

/// The callbacks of one `fit`, in the order they are called.
pub(crate) struct CallbackList<'c> {
    pub callbacks: Vec<&'c mut dyn Callback>,
}

impl CallbackList<'_> {
    fn each(
        &mut self,
        model: &mut Model,
        state: &mut FitState,
        mut hook: impl FnMut(&mut dyn Callback, &mut CallbackContext<'_>) -> Result<()>,
    ) -> Result<()> {
        for callback in &mut self.callbacks {
            let mut ctx = CallbackContext { model: &mut *model, state: &mut *state };
            hook(&mut **callback, &mut ctx)?;
        }
        Ok(())
    }
    pub fn train_begin(&mut self, model: &mut Model, state: &mut FitState) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_train_begin(ctx))
    }
    pub fn train_end(&mut self, logs: Option<&Logs>, model: &mut Model, state: &mut FitState) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_train_end(logs, ctx))
    }
    pub fn epoch_begin(&mut self, epoch: usize, model: &mut Model, state: &mut FitState) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_epoch_begin(epoch, ctx))
    }
    pub fn epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut Model,
        state: &mut FitState,
    ) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_epoch_end(epoch, logs, ctx))
    }
    pub fn batch_begin(&mut self, batch: usize, model: &mut Model, state: &mut FitState) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_train_batch_begin(batch, ctx))
    }
    pub fn batch_end(
        &mut self,
        batch: usize,
        logs: &BatchLogs<'_>,
        model: &mut Model,
        state: &mut FitState,
    ) -> Result<()> {
        self.each(model, state, |c, ctx| c.on_train_batch_end(batch, logs, ctx))
    }
}

/// For the callbacks' own tests: a compiled one-layer model and a context of a `fit` that logs
/// `log_keys` and prints into `output`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A compiled `Dense(2)` model on 3 inputs (SGD, learning rate `lr`).
    pub fn model(lr: f32) -> Model {
        let mut model = crate::Sequential::with_device(&crate::device::cpu());
        model.add(crate::layers::Dense::new(2).input_shape([3])).unwrap();
        model.compile(crate::Loss::MeanSquaredError, crate::Sgd::new(lr), &[]).unwrap();
        model.into_model().unwrap()
    }

    /// The state of a `fit` logging `log_keys`, with its output captured in `printed`.
    pub fn state(log_keys: &[&str], printed: &std::sync::Arc<Mutex<Vec<u8>>>) -> FitState {
        struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        FitState {
            stop_training: false,
            epochs: 100,
            initial_epoch: 0,
            steps: 1,
            verbose: 0,
            log_keys: log_keys.iter().map(|k| k.to_string()).collect(),
            output: ProgressOutput::new(Sink(printed.clone()), false),
            epoch_seconds: 0.0,
            rank: 0,
            ranks: 1,
        }
    }

    /// Runs `callback` through `on_train_begin`, then one `on_epoch_end` per value of `key`,
    /// until it stops training; returns the epochs run and the learning rate after each.
    pub fn run_epochs(
        callback: &mut dyn Callback,
        model: &mut Model,
        key: &str,
        values: &[f32],
    ) -> (usize, Vec<f32>) {
        let printed = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut state = state(&[key], &printed);
        callback.on_train_begin(&mut CallbackContext { model, state: &mut state }).unwrap();
        let mut rates = Vec::new();
        let mut epochs = 0;
        for (epoch, &value) in values.iter().enumerate() {
            let mut logs = Logs::from([(key.to_string(), value)]);
            callback
                .on_epoch_end(epoch, &mut logs, &mut CallbackContext { model, state: &mut state })
                .unwrap();
            epochs += 1;
            rates.push(model.compiled.as_ref().unwrap().optimizer.learning_rate());
            if state.stop_training {
                break;
            }
        }
        callback.on_train_end(None, &mut CallbackContext { model, state: &mut state }).unwrap();
        (epochs, rates)
    }
}
