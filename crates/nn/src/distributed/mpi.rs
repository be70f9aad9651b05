//! [`Mpi`]: the [`Communicator`] over the system's MPI (Open MPI, MPICH), through the `mpi`
//! crate.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::point_to_point::Source as _;
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::Threading;

use super::{Communicator, PendingReduce};
use crate::error::{Error, Result};

/// The world of an MPI job (`mpirun -np N`, `srun`) as a [`Communicator`]. Created once per
/// process ([`Mpi::init`]); MPI is finalised when the last clone of it is dropped. A program
/// started without `mpirun` is a world of one rank.
///
/// ```no_run
/// # fn main() -> nn::Result<()> {
/// let mpi = nn::distributed::Mpi::init()?;
/// let mut model = nn::zoo::model4(&nn::device::cpu(), 1)?.into_model()?;
/// model.distribute(mpi.clone());
/// // compile and fit as in one process: every rank runs this same program.
/// # Ok(())
/// # }
/// ```
pub struct Mpi {
    world: Arc<Mutex<World>>,
    progress: Progress,
    rank: usize,
    size: usize,
    local_rank: usize,
    library: String,
}

struct World {
    comm: SimpleCommunicator,
    /// Finalises MPI when dropped, after `comm`.
    _universe: Universe,
}

// SAFETY: MPI is initialised with at least `Threading::Serialized` (checked in `Mpi::init`),
// under which any thread may call MPI as long as no two calls overlap; every call goes through
// the mutex around `World`.
unsafe impl Send for World {}

impl Mpi {
    /// Initialises MPI (once per process) and returns the world communicator.
    pub fn init() -> Result<Arc<Mpi>> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::Distributed("MPI is already initialised in this process".into()))?;
        if matches!(threading, Threading::Single | Threading::Funneled) {
            return Err(Error::Distributed(format!(
                "this MPI library offers only {threading:?} threading; training needs Serialized"
            )));
        }
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        // The ranks sharing this machine, in world order: which of its GPUs this one opens.
        let local_rank = comm.split_shared(comm.rank()).rank() as usize;
        let library = mpi::environment::library_version()
            // "Open MPI v4.1.4, package: ..., ident: ...": the name and version.
            .map(|v| v.split([',', '\n']).next().unwrap_or("").trim().to_string())
            .unwrap_or_else(|_| "unknown library".into());
        Ok(Arc::new(Mpi {
            world: Arc::new(Mutex::new(World { comm, _universe: universe })),
            progress: Progress::default(),
            rank,
            size,
            local_rank,
            library,
        }))
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Whether a helper thread drives the reductions in flight (on by default): Open MPI moves
    /// a non-blocking collective on only inside MPI calls, and between two gradients of the
    /// backward pass (a convolution's backward takes milliseconds) the training thread makes
    /// none. The thread wakes every 0.1 ms while a reduction is in flight (`MPI_Iprobe`, which
    /// runs the progress engine) and sleeps otherwise. Horovod's background thread does the
    /// same job.
    pub fn set_progress_thread(&self, on: bool) {
        self.progress.state.enabled.store(on, Ordering::Release);
    }

    /// Counts a reduction in flight and wakes the progress thread (started the first time).
    fn reduction_started(&self) {
        let state = &self.progress.state;
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        if !state.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut thread = lock(&self.progress.thread);
        let handle = thread.get_or_insert_with(|| {
            let (world, state) = (self.world.clone(), state.clone());
            std::thread::Builder::new()
                .name("mpi-progress".into())
                .spawn(move || drive_progress(&world, &state))
                .expect("start the MPI progress thread")
        });
        handle.thread().unpark();
    }

    /// Ends every rank of the job at once with exit status `code` (`MPI_Abort`): what a rank
    /// does after an error outside the collective steps of `fit`, where the other ranks may be
    /// waiting for it.
    pub fn abort(&self, code: i32) -> ! {
        self.world().comm.abort(code)
    }
}

impl Drop for Mpi {
    /// Stops the progress thread before MPI is finalised (when `world` goes, after this).
    fn drop(&mut self) {
        self.progress.state.stop.store(true, Ordering::Release);
        if let Some(thread) = lock(&self.progress.thread).take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often the progress thread drives the reductions in flight.
const PROGRESS_INTERVAL: Duration = Duration::from_micros(100);

#[derive(Default)]
struct Progress {
    state: Arc<ProgressState>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct ProgressState {
    in_flight: AtomicUsize,
    enabled: AtomicBool,
    stop: AtomicBool,
}

impl Default for ProgressState {
    fn default() -> Self {
        ProgressState {
            in_flight: AtomicUsize::new(0),
            enabled: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        }
    }
}

/// The progress thread's loop: while reductions are in flight, an `MPI_Iprobe` (which only
/// looks for a message, receiving none) every [`PROGRESS_INTERVAL`] under the world's lock;
/// parked otherwise.
fn drive_progress(world: &Mutex<World>, state: &ProgressState) {
    while !state.stop.load(Ordering::Acquire) {
        if state.in_flight.load(Ordering::Acquire) == 0 || !state.enabled.load(Ordering::Acquire) {
            std::thread::park();
            continue;
        }
        let _ = lock(world).comm.any_process().immediate_probe();
        std::thread::sleep(PROGRESS_INTERVAL);
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let send = values.to_vec();
        self.world().comm.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
    fn start_all_reduce_sum(&self, values: Vec<f32>) -> Result<Box<dyn PendingReduce + '_>> {
        // MPI writes into the buffers until the request completes, however the request's owner
        // moves: they are leaked here and taken back once it has (`Drop` waits if need be).
        let len = values.len();
        let send: *mut [f32] = Box::into_raw(values.into_boxed_slice());
        let recv: *mut [f32] = Box::into_raw(vec![0.0f32; len].into_boxed_slice());
        // SAFETY: `send` and `recv` are live, distinct allocations that nothing else touches
        // until `IallreduceSum` has completed the request and frees them.
        let request = unsafe {
            self.world().comm.immediate_all_reduce_into(
                StaticScope,
                &*send,
                &mut *recv,
                SystemOperation::sum(),
            )
        };
        self.reduction_started();
        Ok(Box::new(IallreduceSum { mpi: self, request: Some(request), buffers: Some((send, recv)) }))
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let send = values.to_vec();
        self.world().comm.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
    fn broadcast(&self, values: &mut [f32], root: usize) -> Result<()> {
        let world = self.world();
        world.comm.process_at_rank(root as i32).broadcast_into(values);
        Ok(())
    }
    fn describe(&self) -> String {
        format!("MPI ({})", self.library)
    }
}

/// An `MPI_Iallreduce` in flight, owning its buffers.
struct IallreduceSum<'a> {
    mpi: &'a Mpi,
    /// `None` once complete.
    request: Option<Request<'static, [f32]>>,
    /// The send and receive buffers (`Box<[f32]>`s' raw parts); `None` once handed back.
    buffers: Option<(*mut [f32], *mut [f32])>,
}

impl IallreduceSum<'_> {
    fn complete(&mut self) {
        if let Some(request) = self.request.take() {
            let _world = self.mpi.world();
            request.wait_without_status();
            self.completed();
        }
    }

    fn completed(&self) {
        self.mpi.progress.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PendingReduce for IallreduceSum<'_> {
    fn test(&mut self) -> Result<bool> {
        if let Some(request) = self.request.take() {
            let _world = self.mpi.world();
            match request.test() {
                Ok(_) => self.completed(),
                Err(request) => self.request = Some(request),
            }
        }
        Ok(self.request.is_none())
    }

    fn wait(mut self: Box<Self>) -> Result<Vec<f32>> {
        self.complete();
        let (send, recv) = self.buffers.take().expect("handed back once");
        // SAFETY: the request has completed, so MPI no longer reads `send` or writes `recv`;
        // both came from `Box::into_raw` in `start_all_reduce_sum`.
        unsafe {
            drop(Box::from_raw(send));
            Ok(Box::from_raw(recv).into_vec())
        }
    }
}

impl Drop for IallreduceSum<'_> {
    /// A reduction abandoned (an error in between) still completes before its buffers go.
    fn drop(&mut self) {
        self.complete();
        if let Some((send, recv)) = self.buffers.take() {
            // SAFETY: as in `wait`.
            unsafe {
                drop(Box::from_raw(send));
                drop(Box::from_raw(recv));
            }
        }
    }
}
