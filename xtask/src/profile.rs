//! `cargo xtask profile-step`: where a CPU training step's time goes, kernel by kernel.
//!
//! A [`DispatchHook`] on the CPU device times every backend call the tensor ops make and files
//! it under the op and its shape; a short training run then prints milliseconds per step for
//! each, and what is left of the step (autodiff bookkeeping, batch gathering, the optimizer's
//! host work). CPU kernels run synchronously, so the wall time of a call is the kernel's time;
//! a GPU backend queues work instead, which is why this command is CPU-only.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nn::FitOptions;
use tensor::DispatchHook;

use crate::args::Args;
use crate::data;

/// Calls and total time of one op at one shape.
#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    time: Duration,
}

/// Tallies backend calls by `op shape`.
#[derive(Default)]
struct Tallies(Mutex<HashMap<String, Tally>>);

impl DispatchHook for Tallies {
    fn observe(&self, op: &'static str, detail: &dyn fmt::Display, elapsed: Duration) {
        let mut tallies = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tally = tallies.entry(format!("{op} {detail}")).or_default();
        tally.calls += 1;
        tally.time += elapsed;
    }
}

impl Tallies {
    fn take(&self) -> HashMap<String, Tally> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

pub fn profile_step(argv: &[String]) -> std::result::Result<(), String> {
    let args = Args::parse(argv, &["model", "steps", "batch-size", "data", "seed"], &[])?;
    let name = args.value("model").unwrap_or("model5").to_string();
    let steps = args.get("steps", 100usize)?;
    let batch_size = args.get("batch-size", 128usize)?;
    let seed = args.get("seed", 1u64)?;
    if steps == 0 {
        return Err("--steps must be at least 1".into());
    }

    let timed = Arc::new(Tallies::default());
    let device = kernels_cpu::cpu_device().with_hook(timed.clone());
    let mut model = data::lecture_model(&name, &device, seed)?;
    let shape = nn::zoo::input_shape(&name);
    let prepared = data::load(args.value("data"), nn::datasets::DatasetKind::Mnist, shape, false)?;
    let images = (steps * batch_size).min(prepared.x_train.len());
    let x = prepared.x_train.slice(0, images);
    let y = prepared.y_train.slice(0, images);
    let steps = images.div_ceil(batch_size);
    let fit = FitOptions::new().epochs(1).batch_size(batch_size).verbose(0).seed(seed);
    // A first epoch warms the buffer pool and the caches; the second is the one reported.
    model.fit(&x, &y, &fit).map_err(|e| e.to_string())?;
    timed.take();
    let start = Instant::now();
    model.fit(&x, &y, &fit).map_err(|e| e.to_string())?;
    let total = start.elapsed();
    print_table(&name, batch_size, steps, total, timed.take());
    Ok(())
}

fn print_table(
    name: &str,
    batch_size: usize,
    steps: usize,
    total: Duration,
    tallies: HashMap<String, Tally>,
) {
    let per_step = |d: Duration| d.as_secs_f64() * 1e3 / steps as f64;
    let step_ms = per_step(total);
    let mut rows: Vec<(String, Tally)> = tallies.into_iter().collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1.time));
    println!(
        "{name}, batch {batch_size}, {steps} steps on {} rayon threads: {step_ms:.2} ms per step",
        rayon::current_num_threads()
    );
    println!("| op | calls/step | ms/step | % of step |");
    println!("|---|---:|---:|---:|");
    let mut kernels = 0.0;
    for (key, tally) in &rows {
        let ms = per_step(tally.time);
        kernels += ms;
        if ms >= 0.005 {
            let calls = tally.calls as f64 / steps as f64;
            println!("| {key} | {calls:.1} | {ms:.3} | {:.1} |", 100.0 * ms / step_ms);
        }
    }
    let rest = step_ms - kernels;
    println!("| (outside kernels) | | {rest:.3} | {:.1} |", 100.0 * rest / step_ms);
}
