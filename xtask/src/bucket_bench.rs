//! `cargo xtask bucket-bench` under `mpirun -np N`: a training step's time with the gradients
//! summed in one fused all-reduce after the backward pass against buckets of several sizes
//! started during it, alternated round by round, and how long each step waited on the
//! exchange (time inside the step's reductions: starting, testing and waiting for them), so
//! the share of the all-reduce hidden behind the backward pass shows.

#[cfg(feature = "mpi")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "mpi")]
use std::sync::Arc;
#[cfg(feature = "mpi")]
use std::time::Instant;

#[cfg(feature = "mpi")]
use nn::distributed::{Communicator, Mpi, PendingReduce};

use crate::args::Args;

pub fn bucket_bench(argv: &[String]) -> Result<(), String> {
    let args =
        Args::parse(argv, &["models", "buckets", "rounds", "steps", "batch-size", "data", "seed"], &[])?;
    let models: Vec<String> = args.list("models", "model4,model5")?;
    let buckets: Vec<String> = args.list("buckets", "fused,0,64,256,1024")?;
    let rounds: usize = args.get("rounds", 5)?;
    let steps: usize = args.get("steps", 100)?;
    let batch_size: usize = args.get("batch-size", 128)?;
    let seed: u64 = args.get("seed", 1)?;
    #[cfg(feature = "mpi")]
    {
        let mpi = Mpi::init().map_err(|e| e.to_string())?;
        let timed = Arc::new(Timed { inner: mpi.clone(), step_ns: AtomicU64::new(0) });
        let chief = mpi.rank() == 0;
        // "256-nothread": 256 KiB buckets without Mpi's progress thread.
        let caps: Vec<(String, usize, bool)> = buckets
            .iter()
            .map(|b| {
                let (kb, thread) = match b.strip_suffix("-nothread") {
                    Some(kb) => (kb, false),
                    None => (b.as_str(), true),
                };
                Ok((b.clone(), crate::train::parse_bucket_kb(kb)?, thread))
            })
            .collect::<Result<_, String>>()?;
        let cpu = nn::device::cpu();
        overlap_probe(&mpi, rounds)?;
        for name in &models {
            let probe = crate::data::lecture_model(name, &cpu, seed)?;
            let shape = probe.input_shapes().remove(0);
            let data = crate::data::load(args.value("data"), nn::datasets::DatasetKind::Mnist, &shape, true)?;
            let n = (steps * batch_size).min(data.x_train.len());
            let (x, y) = (data.x_train.slice(0, n), data.y_train.slice(0, n));
            // Per configuration: each round's ms per step and ms per step inside the exchange.
            let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); caps.len()];
            // Round 0 warms up (MPI's connections, the allocator) and is not counted.
            for round in 0..=rounds {
                for (k, (_, cap, thread)) in caps.iter().enumerate() {
                    mpi.set_progress_thread(*thread);
                    let mut model = crate::data::lecture_model(name, &cpu, seed)?;
                    model.distribute_with_buckets(timed.clone(), *cap);
                    let options =
                        nn::FitOptions::new().epochs(1).batch_size(batch_size).seed(seed).verbose(0);
                    timed.step_ns.store(0, Ordering::Relaxed);
                    let start = Instant::now();
                    model.fit(&x, &y, &options).map_err(|e| e.to_string())?;
                    let ms = start.elapsed().as_secs_f64() * 1e3 / n.div_ceil(batch_size) as f64;
                    let exchange =
                        timed.step_ns.load(Ordering::Relaxed) as f64 / 1e6 / n.div_ceil(batch_size) as f64;
                    // The slowest rank's step time (the step's true length) and the ranks'
                    // mean time in the exchange.
                    let mut max = [ms];
                    max_over_ranks(&mpi, &mut max)?;
                    let mut mean = [exchange / mpi.size() as f64];
                    mpi.all_reduce_sum_f64(&mut mean).map_err(|e| e.to_string())?;
                    if round > 0 {
                        results[k].push((max[0], mean[0]));
                    }
                }
            }
            if chief {
                println!(
                    "{name}: {} steps of {batch_size} on {} ranks ({}), {rounds} rounds alternated, medians",
                    n.div_ceil(batch_size),
                    mpi.size(),
                    mpi.describe()
                );
                println!(
                    "| buckets (KiB) | ms per step | ms per step in the exchange | rounds (ms per step) |"
                );
                println!("|---|---:|---:|---|");
                for ((label, _, _), runs) in caps.iter().zip(&results) {
                    let step: Vec<f64> = runs.iter().map(|r| r.0).collect();
                    let exchange: Vec<f64> = runs.iter().map(|r| r.1).collect();
                    let all: Vec<String> = step.iter().map(|s| format!("{s:.2}")).collect();
                    println!(
                        "| {label} | {:.3} | {:.3} | {} |",
                        median(&step),
                        median(&exchange),
                        all.join(" ")
                    );
                }
            }
        }
        Ok(())
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = (models, buckets, rounds, steps, batch_size, seed);
        Err("bucket-bench needs MPI: build xtask with --features mpi and start it with mpirun".into())
    }
}

/// What the transport does with a reduction in flight while the rank computes: model4's
/// 1.16 MB gradient summed blocking, then started before 3 ms of work (a busy loop standing for
/// the backward pass) with no MPI call in between, with an `MPI_Test` every 0.25 ms, or with
/// `Mpi`'s progress thread; the time left to wait for afterwards is what the work did not hide.
#[cfg(feature = "mpi")]
fn overlap_probe(mpi: &Arc<Mpi>, rounds: usize) -> Result<(), String> {
    let floats = 289_633;
    let work = |tests: Option<&mut Box<dyn PendingReduce + '_>>| -> Result<(), String> {
        let start = Instant::now();
        let mut next_test = 0.25;
        let mut pending = tests;
        while start.elapsed().as_secs_f64() < 3e-3 {
            if start.elapsed().as_secs_f64() * 1e3 >= next_test {
                next_test += 0.25;
                if let Some(p) = pending.as_mut() {
                    p.test().map_err(|e| e.to_string())?;
                }
            }
            std::hint::spin_loop();
        }
        Ok(())
    };
    let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds.max(1) * 10 {
        let mut buffer = vec![1.0f32; floats];
        let start = Instant::now();
        mpi.all_reduce_sum(&mut buffer).map_err(|e| e.to_string())?;
        times[0].push(start.elapsed().as_secs_f64() * 1e3);
        for (k, with_tests) in [(1, false), (2, true), (3, false)] {
            mpi.set_progress_thread(k == 3);
            let mut pending = mpi.start_all_reduce_sum(vec![1.0f32; floats]).map_err(|e| e.to_string())?;
            work(with_tests.then_some(&mut pending))?;
            let start = Instant::now();
            pending.wait().map_err(|e| e.to_string())?;
            times[k].push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    if mpi.rank() == 0 {
        println!(
            "all-reduce of {floats} floats, rank 0, medians: blocking {:.3} ms; left to wait after 3 ms of \
             work: {:.3} ms without MPI calls, {:.3} ms with MPI_Test every 0.25 ms, {:.3} ms with \
             the progress thread",
            median(&times[0]),
            median(&times[1]),
            median(&times[2]),
            median(&times[3])
        );
    }
    Ok(())
}

#[cfg(feature = "mpi")]
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The largest of `values` over the ranks (a sum of one-hot slots: the communicator sums only).
#[cfg(feature = "mpi")]
fn max_over_ranks(mpi: &Mpi, values: &mut [f64]) -> Result<(), String> {
    let mut slots = vec![0.0; values.len() * mpi.size()];
    for (i, v) in values.iter().enumerate() {
        slots[i * mpi.size() + mpi.rank()] = *v;
    }
    mpi.all_reduce_sum_f64(&mut slots).map_err(|e| e.to_string())?;
    for (i, v) in values.iter_mut().enumerate() {
        *v = slots[i * mpi.size()..(i + 1) * mpi.size()].iter().copied().fold(f64::MIN, f64::max);
    }
    Ok(())
}

/// MPI, timing the step's exchange: every call on a started reduction (the gradient buckets
/// and the head). The blocking calls (the agreements after the callbacks) are not counted.
#[cfg(feature = "mpi")]
struct Timed {
    inner: Arc<Mpi>,
    step_ns: AtomicU64,
}

#[cfg(feature = "mpi")]
impl Timed {
    fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let out = f();
        self.step_ns.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }
}

#[cfg(feature = "mpi")]
struct TimedPending<'a> {
    timed: &'a Timed,
    pending: Box<dyn PendingReduce + 'a>,
}

#[cfg(feature = "mpi")]
impl PendingReduce for TimedPending<'_> {
    fn test(&mut self) -> nn::Result<bool> {
        self.timed.time(|| self.pending.test())
    }
    fn wait(self: Box<Self>) -> nn::Result<Vec<f32>> {
        let TimedPending { timed, pending } = *self;
        timed.time(|| pending.wait())
    }
}

#[cfg(feature = "mpi")]
impl Communicator for Timed {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn local_rank(&self) -> usize {
        self.inner.local_rank()
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> nn::Result<()> {
        self.inner.all_reduce_sum(values)
    }
    fn start_all_reduce_sum(&self, values: Vec<f32>) -> nn::Result<Box<dyn PendingReduce + '_>> {
        let pending = self.time(|| self.inner.start_all_reduce_sum(values))?;
        Ok(Box::new(TimedPending { timed: self, pending }))
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> nn::Result<()> {
        self.inner.all_reduce_sum_f64(values)
    }
    fn broadcast(&self, values: &mut [f32], root: usize) -> nn::Result<()> {
        self.inner.broadcast(values, root)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}
