//! Keras' `CSVLogger`: one row per epoch, written as training goes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use super::callback::{Callback, CallbackContext};
use crate::error::{Error, Result};
use crate::training::Logs;

/// Writes each epoch's logs to a CSV file as Keras' `CSVLogger` does: a header
/// `epoch,accuracy,loss,val_accuracy,val_loss` (the keys of the first epoch's logs, sorted),
/// then one row per epoch (epochs counted from 0), flushed after each row, so the file is
/// complete up to the last finished epoch even if training is killed. Values are written in
/// Rust's shortest exact form, so they read back bit for bit; a key an epoch lacks is `NA`.
///
/// With [`append`](Self::append) the rows go after the file's existing ones, and the header
/// only into an empty or new file: what a resumed run wants (`cargo xtask train-mnist --resume
/// ... --csv FILE` appends).
///
/// ```
/// use nn::callbacks::CSVLogger;
/// let options = nn::FitOptions::new().epochs(10).callback(CSVLogger::new("training.csv"));
/// ```
#[derive(Debug)]
pub struct CSVLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    keys: Option<Vec<String>>,
    write_header: bool,
}

impl CSVLogger {
    /// Writes to `path` (replacing it), separated by commas.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CSVLogger {
            path: path.into(),
            separator: ',',
            append: false,
            file: None,
            keys: None,
            write_header: true,
        }
    }
    /// The column separator (Keras' `separator`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }
    /// Appends to an existing file instead of replacing it.
    pub fn append(mut self, yes: bool) -> Self {
        self.append = yes;
        self
    }

    fn fail(&self, e: std::io::Error) -> Error {
        Error::Output { path: self.path.clone(), message: e.to_string() }
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.file = None;
        // In data-parallel training only rank 0 writes.
        if !ctx.is_chief() {
            return Ok(());
        }
        self.write_header = true;
        if self.append && self.path.exists() {
            let mut first = String::new();
            let file = File::open(&self.path).map_err(|e| self.fail(e))?;
            BufReader::new(file).read_line(&mut first).map_err(|e| self.fail(e))?;
            self.write_header = first.is_empty();
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.fail(e))?;
        self.file = Some(file);
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if !ctx.is_chief() {
            return Ok(());
        }
        let sep = self.separator.to_string();
        let mut text = String::new();
        if self.keys.is_none() {
            let mut keys: Vec<String> = logs.keys().cloned().collect();
            // As Keras: without validation in the first epoch, leave room for it.
            if !keys.is_empty() && !keys.iter().any(|k| k.starts_with("val_")) {
                let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(val);
            }
            if self.write_header {
                text += &(std::iter::once("epoch".to_string())
                    .chain(keys.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(&sep)
                    + "\n");
            }
            self.keys = Some(keys);
        }
        let keys = self.keys.as_ref().expect("set above");
        let mut row = vec![epoch.to_string()];
        row.extend(keys.iter().map(|k| logs.get(k).map_or("NA".to_string(), |v| v.to_string())));
        text += &(row.join(&sep) + "\n");
        let file = self.file.as_mut().expect("opened at train begin");
        let written = file.write_all(text.as_bytes()).and_then(|()| file.flush());
        written.map_err(|e| self.fail(e))
    }

    fn on_train_end(&mut self, _logs: Option<&Logs>, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.file = None;
        Ok(())
    }
}
