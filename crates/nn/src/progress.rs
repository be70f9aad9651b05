//! What `fit` prints while it trains, as Keras 3 prints it.
//!
//! - `verbose = 1` on a terminal: a live bar per epoch, redrawn in place with `\r` at most
//!   ten times a second,
//!   ` 120/469 ━━━━━─────────────── 1s 7ms/step - ETA: 3s - accuracy: 0.9012 - loss: 0.3310`,
//!   then the epoch's final line with a full bar.
//! - `verbose = 1` when the output is not a terminal (piped to a file or a CI log), and
//!   `verbose = 2`: only Keras' one line per epoch,
//!   `469/469 - 3s - 7ms/step - accuracy: 0.9486 - loss: 0.2010`, with no control codes at all.
//! - `verbose = 0`: nothing.
//!
//! The running loss and accuracy of the bar are read from the device only when the bar is
//! redrawn: on a GPU each read waits for the queued work, so reading every step would
//! serialise the pipeline.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::callbacks::{BatchLogs, Callback, CallbackContext};
use crate::error::Result;
use crate::training::Logs;

/// Cells of the progress bar, as in Keras.
const BAR_WIDTH: usize = 20;

/// Where `fit` writes its progress, and whether that is a terminal (which decides whether
/// the live bar, with its `\r` redraws, is shown). Cloning shares the writer.
#[derive(Clone)]
pub struct ProgressOutput {
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    is_tty: bool,
    redraw_interval: Duration,
}

impl ProgressOutput {
    /// Standard output; the live bar is shown only if it is a terminal.
    pub fn stdout() -> Self {
        let is_tty = std::io::stdout().is_terminal();
        Self::new(std::io::stdout(), is_tty)
    }

    /// Any writer (a file, a buffer in a test); `is_tty` says whether to draw the live bar.
    pub fn new(writer: impl Write + Send + 'static, is_tty: bool) -> Self {
        ProgressOutput {
            writer: Arc::new(Mutex::new(Box::new(writer))),
            is_tty,
            redraw_interval: Duration::from_millis(100),
        }
    }

    /// Sets the shortest time between two redraws of the bar (default 100 ms).
    pub fn redraw_interval(mut self, interval: Duration) -> Self {
        self.redraw_interval = interval;
        self
    }

    /// Whether the live bar is drawn.
    pub fn is_tty(&self) -> bool {
        self.is_tty
    }

    /// Writes `line` and a newline (what callbacks print).
    pub(crate) fn write_line(&self, line: &str) {
        self.write(&format!("{line}\n"));
    }

    fn write(&self, text: &str) {
        // Progress is a courtesy: a closed pipe or a full disk must not stop the training.
        let mut w = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = w.write_all(text.as_bytes());
        let _ = w.flush();
    }
}

impl fmt::Debug for ProgressOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressOutput")
            .field("is_tty", &self.is_tty)
            .field("redraw_interval", &self.redraw_interval)
            .finish_non_exhaustive()
    }
}

/// One `fit` call's progress printer: `Epoch k/N` headers, the live bar and the epoch lines.
pub(crate) struct Progress {
    output: ProgressOutput,
    verbose: u8,
    steps: usize,
    epoch_start: Instant,
    last_draw: Instant,
    /// Characters of the last bar drawn, so a shorter redraw can blank the rest.
    drawn_chars: usize,
}

impl Progress {
    pub(crate) fn new(output: ProgressOutput, verbose: u8, steps: usize) -> Self {
        let now = Instant::now();
        Progress { output, verbose, steps, epoch_start: now, last_draw: now, drawn_chars: 0 }
    }

    fn live(&self) -> bool {
        self.verbose == 1 && self.output.is_tty
    }

    /// Prints `Epoch k/N` and starts the epoch's clock.
    pub(crate) fn begin_epoch(&mut self, epoch: usize, epochs: usize) {
        if self.verbose > 0 {
            self.output.write(&format!("Epoch {epoch}/{epochs}\n"));
        }
        self.epoch_start = Instant::now();
        self.last_draw = self.epoch_start;
        self.drawn_chars = 0;
    }

    /// After step `done` (1-based): redraws the bar if it is shown and due, reading the running
    /// means through `running` only then.
    pub(crate) fn step(&mut self, done: usize, running: impl FnOnce() -> Result<Logs>) -> Result<()> {
        if !self.live() || done >= self.steps || self.last_draw.elapsed() < self.output.redraw_interval {
            return Ok(());
        }
        let metrics = running()?;
        let elapsed = self.epoch_start.elapsed().as_secs_f64();
        let eta = elapsed / done as f64 * (self.steps - done) as f64;
        let width = self.steps.to_string().len();
        let line = format!(
            "{done:>width$}/{} {} {elapsed:.0}s {} - ETA: {eta:.0}s{}",
            self.steps,
            bar(done, self.steps),
            step_time(elapsed / done as f64),
            metrics_text(&metrics),
        );
        self.redraw(&line);
        self.last_draw = Instant::now();
        Ok(())
    }

    /// Prints the epoch's final line: after the bar on a terminal, else Keras' `verbose=2` line.
    pub(crate) fn end_epoch(&mut self, seconds: f64, metrics: &Logs) {
        if self.verbose == 0 {
            return;
        }
        if self.live() {
            let line = format!(
                "{steps}/{steps} {} {seconds:.0}s {}{}",
                bar(self.steps, self.steps),
                step_time(seconds / self.steps.max(1) as f64),
                metrics_text(metrics),
                steps = self.steps
            );
            self.redraw(&line);
            self.output.write("\n");
        } else {
            self.output.write(&format!("{}\n", epoch_line(self.steps, seconds, metrics)));
        }
    }

    fn redraw(&mut self, line: &str) {
        let chars = line.chars().count();
        let blank = " ".repeat(self.drawn_chars.saturating_sub(chars));
        self.output.write(&format!("\r{line}{blank}"));
        self.drawn_chars = chars;
    }
}

/// `━━━━━───────────────`: `done` of `total` as [`BAR_WIDTH`] cells.
fn bar(done: usize, total: usize) -> String {
    let full = (done * BAR_WIDTH).checked_div(total).unwrap_or(BAR_WIDTH).min(BAR_WIDTH);
    "━".repeat(full) + &"─".repeat(BAR_WIDTH - full)
}

/// Keras' time per step: `2s/step`, `7ms/step` or `400us/step`.
fn step_time(per_step: f64) -> String {
    if per_step >= 1.0 {
        format!("{per_step:.0}s/step")
    } else if per_step >= 1e-3 {
        format!("{:.0}ms/step", per_step * 1e3)
    } else {
        format!("{:.0}us/step", per_step * 1e6)
    }
}

/// ` - accuracy: 0.9486 - loss: 0.2010`: metrics in alphabetical order, validation metrics last.
fn metrics_text(metrics: &Logs) -> String {
    let mut sorted: Vec<(&String, &f32)> = metrics.iter().collect();
    sorted.sort_by_key(|(k, _)| (k.starts_with("val_"), (*k).clone()));
    sorted.iter().map(|(k, v)| format!(" - {k}: {}", metric_value(**v))).collect()
}

/// A value as Keras' progress bar prints it: 4 decimals, or for magnitudes up to 1e-3 the
/// scientific `1.2346e-04`.
fn metric_value(v: f32) -> String {
    // Compared as Keras compares it: the f32 value as a Python (f64) float.
    if (v.abs() as f64) > 1e-3 || !v.is_finite() {
        return format!("{v:.4}");
    }
    // Rust writes `1.2346e-4`; Python (Keras) `1.2346e-04`.
    let text = format!("{v:.4e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("+", exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// Keras 3's `verbose=2` line: `469/469 - 3s - 7ms/step - accuracy: 0.9486 - loss: 0.2010`
/// (metrics in alphabetical order, validation metrics last).
pub fn epoch_line(steps: usize, seconds: f64, metrics: &Logs) -> String {
    let per_step = step_time(seconds / steps.max(1) as f64);
    format!("{steps}/{steps} - {seconds:.0}s - {per_step}{}", metrics_text(metrics))
}

/// Keras' `ProgbarLogger`: `fit` runs one last, after the user's callbacks and the `History`.
impl Callback for Progress {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.begin_epoch(epoch + 1, ctx.epochs());
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &BatchLogs<'_>,
        _ctx: &mut CallbackContext<'_>,
    ) -> Result<()> {
        self.step(batch + 1, || logs.running())
    }
    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.end_epoch(ctx.epoch_seconds(), logs);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
