//! [`FitOptions`]: the arguments of Keras' `fit`, with its defaults.

use std::fmt;
use std::sync::{Arc, Mutex};

use super::data::OwnedArrays;
use crate::array::Array;
use crate::callbacks::{Callback, ModelCheckpoint, SharedCallback};
use crate::error::{Error, Result};
use crate::progress::ProgressOutput;

/// Options of [`Model::fit`](crate::Model::fit) (and `Sequential::fit`), with Keras'
/// defaults. Every field has its effect on every model, or `fit` refuses it with an error that
/// says why.
#[derive(Clone)]
pub struct FitOptions {
    /// Passes over the training data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32).
    pub batch_size: usize,
    /// 0 silent, 1 a live progress bar (on a terminal; else as 2), 2 one line per epoch
    /// (default 1).
    pub verbose: u8,
    /// Reshuffle the samples before each epoch (default true).
    pub shuffle: bool,
    /// Fraction of the data (taken from the end, before shuffling) held out for validation,
    /// in `[0, 1)`.
    pub validation_split: f32,
    /// Data evaluated after each epoch (in batches of `batch_size`, or 256 if larger): one
    /// array per input, and one per output. Keras lets it override `validation_split`; here
    /// giving both is an error, so neither is silently dropped.
    pub validation_data: Option<(Vec<Array>, Vec<Array>)>,
    /// Seed for shuffling and dropout (default: the model's seed).
    pub seed: Option<u64>,
    /// Epochs already done (default 0): training runs epochs `initial_epoch + 1 ..= epochs`,
    /// with the shuffles and dropout masks an uninterrupted run would use for them.
    pub initial_epoch: usize,
    /// Stop with [`Error::NonFiniteLoss`] at the first step whose loss is NaN or infinite
    /// (Keras' [`TerminateOnNaN`](crate::callbacks::TerminateOnNaN) with `raise_error`; default
    /// on). The loss is read after every step on the CPU, and every
    /// [`loss_check_interval`](tensor::Capabilities) steps (100) and at the end of each epoch on
    /// a GPU (a read waits for the GPU), the error still naming the
    /// first bad step. Off, an epoch whose mean loss is not finite still ends training, naming
    /// its last step.
    pub terminate_on_nan: bool,
    /// Where progress goes (default: standard output; the live bar only on a terminal).
    /// Callbacks that print (`verbose` ones) print there too.
    pub output: Option<ProgressOutput>,
    /// Keras' `callbacks=[...]`, called in this order, before the `History` and the progress
    /// output.
    pub callbacks: Vec<SharedCallback>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            verbose: 1,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            seed: None,
            initial_epoch: 0,
            terminate_on_nan: true,
            output: None,
            callbacks: Vec::new(),
        }
    }
}

impl FitOptions {
    /// Keras' defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Holds out the last `fraction` of the samples for validation.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }
    /// Evaluates on `(x, y)` after each epoch: an array each for a model of one input and one
    /// output, `vec![..]` of one per input and per output otherwise.
    pub fn validation_data(mut self, x: impl Into<OwnedArrays>, y: impl Into<OwnedArrays>) -> Self {
        self.validation_data = Some((x.into().0, y.into().0));
        self
    }
    /// Seeds shuffling and dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Resumes after `epochs_done` epochs (Keras' `initial_epoch`), e.g. a loaded checkpoint's
    /// [`Model::epochs_done`](crate::Model::epochs_done); `epochs` stays the total.
    pub fn initial_epoch(mut self, epochs_done: usize) -> Self {
        self.initial_epoch = epochs_done;
        self
    }
    /// Adds a [`ModelCheckpoint`] callback.
    pub fn checkpoint(self, checkpoint: ModelCheckpoint) -> Self {
        self.callback(checkpoint)
    }
    /// Turns the per-step NaN check on or off.
    pub fn terminate_on_nan(mut self, on: bool) -> Self {
        self.terminate_on_nan = on;
        self
    }
    /// Sends progress to `output` instead of standard output.
    pub fn output(mut self, output: ProgressOutput) -> Self {
        self.output = Some(output);
        self
    }
    /// Adds a callback (Keras' `callbacks=[...]`).
    pub fn callback(self, callback: impl Callback + 'static) -> Self {
        self.shared_callback(Arc::new(Mutex::new(callback)))
    }
    /// Adds a callback the caller keeps a handle to, to read its state after `fit`:
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use nn::callbacks::EarlyStopping;
    ///
    /// let stopper = Arc::new(Mutex::new(EarlyStopping::new().monitor("loss").patience(2)));
    /// let options = nn::FitOptions::new().shared_callback(stopper.clone());
    /// // after model.fit(.., &options): stopper.lock().unwrap().stopped_epoch()
    /// ```
    pub fn shared_callback(mut self, callback: SharedCallback) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Refuses options no `fit` can honour, before any work.
    pub(crate) fn check(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Data("batch_size must be at least 1".into()));
        }
        if self.verbose > 2 {
            return Err(Error::Options(format!("verbose is 0, 1 or 2, not {}", self.verbose)));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(Error::Options(format!(
                "validation_split {} is not in [0, 1)",
                self.validation_split
            )));
        }
        if self.validation_split > 0.0 && self.validation_data.is_some() {
            return Err(Error::Options(format!(
                "validation_split {} and validation_data both given: give one (Keras would ignore the split)",
                self.validation_split
            )));
        }
        if self.initial_epoch > self.epochs {
            return Err(Error::Options(format!(
                "initial_epoch {} is after the last epoch ({})",
                self.initial_epoch, self.epochs
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for FitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FitOptions")
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .field("verbose", &self.verbose)
            .field("shuffle", &self.shuffle)
            .field("validation_split", &self.validation_split)
            .field("validation_data", &self.validation_data)
            .field("seed", &self.seed)
            .field("initial_epoch", &self.initial_epoch)
            .field("terminate_on_nan", &self.terminate_on_nan)
            .field("output", &self.output)
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}
