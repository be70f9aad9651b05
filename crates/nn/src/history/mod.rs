//! Saving a [`History`] (what `fit` returns) as JSON or CSV, reading the JSON back, and
//! drawing it ([`History::plot`]).

pub(crate) mod plot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::callbacks::{Callback, CallbackContext};
use crate::error::{Error, Result};
use crate::training::{History, Logs};

/// Writes `text` to `path`, naming the file in the error.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::Output { path: path.to_path_buf(), message: e.to_string() })
}

impl History {
    /// Number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.history.values().map(Vec::len).chain([self.epoch_seconds.len()]).max().unwrap_or(0)
    }

    /// `{"history": {"accuracy": [...], "loss": [...], ...}, "epoch_seconds": [...]}`: Keras'
    /// `history.history` plus the epoch times. A NaN or infinite value is written as `null`
    /// (JSON has no NaN) and read back as NaN.
    pub fn to_json(&self) -> String {
        let metrics: Map<String, Value> = self
            .history
            .iter()
            .map(|(k, v)| {
                (k.clone(), Value::from(v.iter().map(|&x| finite_or_null(x.into())).collect::<Vec<_>>()))
            })
            .collect();
        let seconds: Vec<Value> = self.epoch_seconds.iter().map(|&s| finite_or_null(s)).collect();
        let value = json!({ "history": metrics, "epoch_seconds": seconds });
        serde_json::to_string_pretty(&value).expect("a JSON value always serialises")
    }

    /// Reads what [`History::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<History> {
        let bad = |what: &str| Error::Data(format!("history JSON: {what}"));
        let value: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let numbers = |v: &Value, key: &str| -> Result<Vec<f64>> {
            v.as_array()
                .ok_or_else(|| bad(&format!("'{key}' is not a list")))?
                .iter()
                .map(|x| match x {
                    Value::Null => Ok(f64::NAN),
                    x => x.as_f64().ok_or_else(|| bad(&format!("'{key}' holds {x}, not a number"))),
                })
                .collect()
        };
        let metrics =
            value.get("history").and_then(Value::as_object).ok_or_else(|| bad("no 'history' object"))?;
        let mut history = BTreeMap::new();
        for (key, values) in metrics {
            history.insert(key.clone(), numbers(values, key)?.into_iter().map(|x| x as f32).collect());
        }
        let epoch_seconds = match value.get("epoch_seconds") {
            Some(v) => numbers(v, "epoch_seconds")?,
            None => Vec::new(),
        };
        Ok(History { history, epoch_seconds })
    }

    /// Writes [`History::to_json`] to `path`.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), self.to_json().as_bytes())
    }

    /// Keras' `CSVLogger` table: a header `epoch,accuracy,loss,...,seconds`, then one row per
    /// epoch (epochs counted from 0, as Keras does; metrics in alphabetical order; values in
    /// Rust's shortest exact form, so they read back bit for bit; a missing value is empty).
    pub fn to_csv(&self) -> String {
        let mut header = vec!["epoch".to_string()];
        header.extend(self.history.keys().cloned());
        header.push("seconds".into());
        let mut text = header.join(",") + "\n";
        for epoch in 0..self.epochs() {
            let mut row = vec![epoch.to_string()];
            row.extend(
                self.history.values().map(|v| v.get(epoch).map(|x| x.to_string()).unwrap_or_default()),
            );
            row.push(self.epoch_seconds.get(epoch).map(|s| s.to_string()).unwrap_or_default());
            text += &(row.join(",") + "\n");
        }
        text
    }

    /// Writes [`History::to_csv`] to `path`.
    pub fn save_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), self.to_csv().as_bytes())
    }
}

/// Keras' `History` callback: `fit` runs one after the user's callbacks (so it sees what they
/// add to the logs, such as `learning_rate`) and returns it.
impl Callback for History {
    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        for (k, v) in logs.iter() {
            self.history.entry(k.clone()).or_default().push(*v);
        }
        self.epoch_seconds.push(ctx.epoch_seconds());
        Ok(())
    }
}

fn finite_or_null(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}
