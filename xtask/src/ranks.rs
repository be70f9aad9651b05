//! `train-mnist --distributed`: the ranks of an MPI job (`mpirun -np N`, `srun`), or the one
//! process of a run without it.

use nn::callbacks::{Callback, CallbackContext};
#[cfg(feature = "mpi")]
use nn::distributed::Communicator;
use nn::Model;

/// The processes training together.
pub struct Ranks {
    #[cfg(feature = "mpi")]
    mpi: Option<std::sync::Arc<nn::distributed::Mpi>>,
}

impl Ranks {
    /// MPI's world with `distributed`, else a single process; an error when `distributed` is
    /// asked of a build without the `mpi` feature.
    pub fn new(distributed: bool) -> Result<Ranks, String> {
        #[cfg(feature = "mpi")]
        {
            let mpi = if distributed {
                Some(nn::distributed::Mpi::init().map_err(|e| format!("--distributed: {e}"))?)
            } else {
                None
            };
            Ok(Ranks { mpi })
        }
        #[cfg(not(feature = "mpi"))]
        if distributed {
            Err("--distributed: this xtask was built without MPI; build it with \
                 `cargo build --release -p xtask --features mpi` and start it with mpirun"
                .into())
        } else {
            Ok(Ranks {})
        }
    }

    /// This process's rank (0 without MPI).
    pub fn rank(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            return mpi.rank();
        }
        0
    }

    /// The number of ranks (1 without MPI).
    pub fn size(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            return mpi.size();
        }
        1
    }

    /// Whether this process prints and writes files.
    pub fn is_chief(&self) -> bool {
        self.rank() == 0
    }

    /// The device of `kind` this rank trains on: with wgpu and several ranks, its machine's
    /// `local rank`-th GPU (ranks beyond the GPUs share them round-robin), unless `adapter`
    /// names one.
    pub fn device(&self, kind: nn::DeviceKind, adapter: Option<usize>) -> nn::Result<nn::Device> {
        let local_rank = {
            #[cfg(feature = "mpi")]
            {
                self.mpi.as_ref().map(|m| m.local_rank())
            }
            #[cfg(not(feature = "mpi"))]
            {
                None::<usize>
            }
        };
        match (kind, adapter, local_rank) {
            (nn::DeviceKind::Wgpu, Some(index), _) => nn::device::wgpu_adapter(index),
            (nn::DeviceKind::Wgpu, None, Some(local)) => {
                let gpus = nn::device::wgpu_adapters().len().max(1);
                nn::device::wgpu_adapter(local % gpus)
            }
            (kind, _, _) => nn::device::select(kind),
        }
    }

    /// Makes `model` train on these ranks, with gradient buckets of `bucket_bytes` (`None`:
    /// the default).
    pub fn attach(&self, model: &mut Model, bucket_bytes: Option<usize>) {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            let bytes = bucket_bytes.unwrap_or(nn::distributed::DEFAULT_BUCKET_BYTES);
            model.distribute_with_buckets(mpi.clone(), bytes);
        }
        #[cfg(not(feature = "mpi"))]
        let _ = (model, bucket_bytes);
    }

    /// Ends the run after `error`: alone, by returning it; among several ranks, by printing it
    /// with this rank's number and aborting the whole job, since other ranks may be waiting for
    /// this one in a collective outside `fit` (which agrees on errors by itself).
    pub fn fail(&self, error: String) -> String {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|m| m.size() > 1) {
            eprintln!("error on rank {} of {}: {error}", mpi.rank(), mpi.size());
            mpi.abort(1);
        }
        error
    }
}

/// `--fail-at RANK:STEP`: the fault test's injected error, returned by rank `RANK` before its
/// `STEP`-th training step (counted from 1 over the whole run).
pub struct InjectedFault {
    pub rank: usize,
    pub step: usize,
    steps_begun: usize,
}

impl InjectedFault {
    pub fn parse(text: &str) -> Result<InjectedFault, String> {
        let parsed = text.split_once(':').and_then(|(r, s)| Some((r.parse().ok()?, s.parse().ok()?)));
        match parsed {
            Some((rank, step)) if step > 0 => Ok(InjectedFault { rank, step, steps_begun: 0 }),
            _ => Err(format!("--fail-at: expected RANK:STEP with STEP >= 1, got '{text}'")),
        }
    }
}

impl Callback for InjectedFault {
    fn on_train_batch_begin(&mut self, _batch: usize, ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        self.steps_begun += 1;
        if ctx.rank() == self.rank && self.steps_begun == self.step {
            return Err(nn::Error::Data(format!(
                "injected fault (--fail-at) on rank {} at step {}",
                self.rank, self.step
            )));
        }
        Ok(())
    }
}

/// `cargo xtask allreduce-bench` under `mpirun -np N`: milliseconds per all-reduce of a
/// training step's exchange for model4, model5 and model6 (their parameters plus the head),
/// the overhead data-parallel training adds to every step.
pub fn allreduce_bench(argv: &[String]) -> Result<(), String> {
    let args = crate::args::Args::parse(argv, &["repeats"], &[])?;
    let repeats: usize = args.get("repeats", 500usize)?;
    #[cfg(feature = "mpi")]
    {
        let mpi = nn::distributed::Mpi::init().map_err(|e| e.to_string())?;
        let cpu = nn::device::cpu();
        if mpi.rank() == 0 {
            println!(
                "| model | floats per step | ms per all-reduce ({} ranks, {}) |",
                mpi.size(),
                mpi.describe()
            );
            println!("|---|---:|---:|");
        }
        for name in ["model4", "model5", "model6"] {
            let model = nn::zoo::by_name(name, &cpu, 1).map_err(|e| e.to_string())?;
            let mut buffer = vec![1.0f32; model.count_params() + 3];
            // Warm-up: the first calls set up MPI's connections.
            for _ in 0..10 {
                mpi.all_reduce_sum(&mut buffer).map_err(|e| e.to_string())?;
            }
            let start = std::time::Instant::now();
            for _ in 0..repeats {
                mpi.all_reduce_sum(&mut buffer).map_err(|e| e.to_string())?;
            }
            let ms = start.elapsed().as_secs_f64() * 1e3 / repeats as f64;
            if mpi.rank() == 0 {
                println!("| {name} | {} | {ms:.3} |", buffer.len());
            }
        }
        Ok(())
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = repeats;
        Err("allreduce-bench needs MPI: build xtask with --features mpi and start it with mpirun".into())
    }
}
