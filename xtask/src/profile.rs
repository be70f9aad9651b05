//! `cargo xtask profile-step`: where a CPU training step's time goes, kernel by kernel.
//!
//! The CPU backend is wrapped in a [`Timed`] backend that times every call and files it under
//! the op and its shape; a short training run then prints milliseconds per step for each, and
//! what is left of the step (autodiff bookkeeping, batch gathering, the optimizer's host work).
//! CPU kernels run synchronously, so the wall time of a call is the kernel's time; a GPU
//! backend queues work instead, which is why this command is CPU-only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nn::FitOptions;
use tensor::shape::{
    BroadcastSpec, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec, NarrowSpec, Pool2dSpec, PoolKind,
    ReduceSpec,
};
use tensor::{
    Backend, BinaryOp, ConvPoolBackward, ConvPoolGrads, Device, ReduceOp, Result, Storage, UnaryOp,
};

use crate::args::Args;
use crate::data;

/// Calls and total time of one op at one shape.
#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    time: Duration,
}

/// A backend that forwards to another and times each call. It forwards every method, the
/// fused ones with default bodies too: a default would run the unfused kernels instead.
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn Backend>,
    tallies: Mutex<HashMap<String, TallyDebug>>,
}

/// `Tally` with the `Debug` that `Backend` requires of its implementor's fields.
#[derive(Default, Clone, Copy)]
struct TallyDebug(Tally);

impl std::fmt::Debug for TallyDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} calls, {:?}", self.0.calls, self.0.time)
    }
}

impl Timed {
    fn time<T>(&self, key: impl FnOnce() -> String, run: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = run();
        let elapsed = start.elapsed();
        let mut tallies = self.tallies.lock().expect("profile tallies poisoned");
        let tally = &mut tallies.entry(key()).or_default().0;
        tally.calls += 1;
        tally.time += elapsed;
        out
    }

    fn take(&self) -> HashMap<String, Tally> {
        let mut tallies = self.tallies.lock().expect("profile tallies poisoned");
        std::mem::take(&mut *tallies).into_iter().map(|(k, v)| (k, v.0)).collect()
    }
}

fn conv_key(op: &str, s: &Conv2dSpec) -> String {
    format!("{op} {}x{}x{}x{} -> {}@{}x{}", s.batch, s.in_h, s.in_w, s.in_c, s.out_c, s.kernel_h, s.kernel_w)
}

fn pool_key(op: &str, kind: PoolKind, s: &Pool2dSpec) -> String {
    format!("{op} {kind:?} {}x{}x{}x{}", s.batch, s.in_h, s.in_w, s.channels)
}

impl Backend for Timed {
    fn name(&self) -> String {
        format!("{} (timed)", self.inner.name())
    }
    fn upload(&self, data: &[f32]) -> Result<Storage> {
        self.time(|| format!("upload {}", data.len()), || self.inner.upload(data))
    }
    fn download(&self, storage: &Storage) -> Result<Vec<f32>> {
        self.time(|| format!("download {}", storage.len()), || self.inner.download(storage))
    }
    fn fill(&self, len: usize, value: f32) -> Result<Storage> {
        self.time(|| format!("fill {len}"), || self.inner.fill(len, value))
    }
    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, s: &MatmulSpec) -> Result<Storage> {
        let key = || {
            let t = |on: bool| if on { "T" } else { "" };
            let b = if bias.is_some() { " +bias" } else { "" };
            format!("matmul {}x{}{}x{}{} (batch {}){b}", s.m, s.k, t(s.trans_a), s.n, t(s.trans_b), s.batch)
        };
        self.time(key, || self.inner.matmul(a, b, bias, s))
    }
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        self.time(|| format!("unary {op:?} {}", x.len()), || self.inner.unary(op, x))
    }
    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        self.time(|| format!("unary_backward {op:?} {}", x.len()), || self.inner.unary_backward(op, x, y, dy))
    }
    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, s: &BroadcastSpec) -> Result<Storage> {
        self.time(|| format!("binary {op:?} {:?}", s.dims), || self.inner.binary(op, a, b, s))
    }
    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage> {
        self.time(|| format!("scaled_add {}", a.len()), || self.inner.scaled_add(a, b, alpha))
    }
    fn expand(&self, x: &Storage, s: &BroadcastSpec) -> Result<Storage> {
        self.time(|| format!("expand {:?}", s.dims), || self.inner.expand(x, s))
    }
    fn reduce(&self, op: ReduceOp, x: &Storage, s: &ReduceSpec) -> Result<Storage> {
        let key = || format!("reduce {op:?} [{}, {}, {}]", s.outer, s.reduced, s.inner);
        self.time(key, || self.inner.reduce(op, x, s))
    }
    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        self.time(|| format!("argmax {rows}x{cols}"), || self.inner.argmax(x, rows, cols))
    }
    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage> {
        self.time(|| format!("softmax {rows}x{cols}"), || self.inner.softmax(x, rows, cols, log))
    }
    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Result<Storage> {
        let key = || format!("softmax_backward {rows}x{cols}");
        self.time(key, || self.inner.softmax_backward(y, dy, rows, cols, log))
    }
    fn softmax_cross_entropy(
        &self,
        logits: &Storage,
        labels: &Storage,
        rows: usize,
        cols: usize,
    ) -> Result<(Storage, Storage)> {
        let key = || format!("softmax_cross_entropy {rows}x{cols}");
        self.time(key, || self.inner.softmax_cross_entropy(logits, labels, rows, cols))
    }
    fn conv2d(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        s: &Conv2dSpec,
    ) -> Result<Storage> {
        self.time(|| conv_key("conv2d", s), || self.inner.conv2d(x, filter, bias, s))
    }
    fn conv2d_backward_input(&self, dy: &Storage, filter: &Storage, s: &Conv2dSpec) -> Result<Storage> {
        self.time(|| conv_key("conv2d_backward_input", s), || self.inner.conv2d_backward_input(dy, filter, s))
    }
    fn conv2d_backward_filter(&self, x: &Storage, dy: &Storage, s: &Conv2dSpec) -> Result<Storage> {
        self.time(|| conv_key("conv2d_backward_filter", s), || self.inner.conv2d_backward_filter(x, dy, s))
    }
    fn pool2d(&self, kind: PoolKind, x: &Storage, s: &Pool2dSpec) -> Result<Storage> {
        self.time(|| pool_key("pool2d", kind, s), || self.inner.pool2d(kind, x, s))
    }
    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        s: &Pool2dSpec,
    ) -> Result<Storage> {
        self.time(|| pool_key("pool2d_backward", kind, s), || self.inner.pool2d_backward(kind, x, y, dy, s))
    }
    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        s: &ConvPoolSpec,
    ) -> Result<(Storage, Storage)> {
        let op = if s.relu { "conv2d_relu_max_pool" } else { "conv2d_max_pool" };
        self.time(|| conv_key(op, &s.conv), || self.inner.conv2d_max_pool(x, filter, bias, s))
    }
    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads> {
        let op = if args.spec.relu { "conv2d_relu_max_pool_backward" } else { "conv2d_max_pool_backward" };
        let key = || conv_key(op, &args.spec.conv);
        self.time(key, || self.inner.conv2d_max_pool_backward(args))
    }
    fn concat(&self, parts: &[&Storage], s: &ConcatSpec) -> Result<Storage> {
        self.time(|| format!("concat {} parts", parts.len()), || self.inner.concat(parts, s))
    }
    fn narrow(&self, x: &Storage, s: &NarrowSpec) -> Result<Storage> {
        self.time(|| format!("narrow {}", x.len()), || self.inner.narrow(x, s))
    }
    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage> {
        let key = || format!("gather_rows {}x{row_len}", indices.len());
        self.time(key, || self.inner.gather_rows(x, row_len, indices))
    }
    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage> {
        self.time(|| format!("dropout_mask {len}"), || self.inner.dropout_mask(len, rate, seed))
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

    let inner: Arc<dyn Backend> = Arc::new(kernels_cpu::CpuBackend::new());
    let timed = Arc::new(Timed { inner, tallies: Mutex::new(HashMap::new()) });
    let device = Device::from_arc(timed.clone());
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
