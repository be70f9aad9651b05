//! What `fit` does besides the gradient steps, as Keras' callbacks: a [`Callback`] is called at
//! the start and end of training, of each epoch and of each batch, may read and change the
//! model and its learning rate, and may stop training.
//!
//! Built in, as Keras has them: [`ModelCheckpoint`], [`EarlyStopping`],
//! [`ReduceLROnPlateau`], [`LearningRateScheduler`], [`CSVLogger`], [`TerminateOnNaN`] and
//! [`LambdaCallback`] (closures). [`History`](crate::History) (what `fit` returns) and the
//! progress output are callbacks of the same loop, run after the user's, as in Keras.

mod callback;
mod checkpoint;
mod csv_logger;
mod early_stopping;
mod lambda;
mod learning_rate;
mod monitor;
mod terminate_on_nan;

pub use callback::{BatchLogs, Callback, CallbackContext, SharedCallback};
pub(crate) use callback::{CallbackList, FitState};
pub use checkpoint::ModelCheckpoint;
pub use csv_logger::CSVLogger;
pub use early_stopping::EarlyStopping;
pub use lambda::LambdaCallback;
pub use learning_rate::{LearningRateScheduler, ReduceLROnPlateau};
pub use monitor::MonitorMode;
pub use terminate_on_nan::TerminateOnNaN;
