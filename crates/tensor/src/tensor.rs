//! The [`Tensor`] type and the [`Device`] it lives on.

use crate::autodiff::{self, Node, Track};
use crate::backend::{Backend, Storage};
use crate::error::{Result, TensorError};
use crate::shape::Shape;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A compute device: a shared handle to a [`Backend`]. Cloning is cheap; two handles are the
/// same device when they share the backend instance.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    hook: Option<Arc<dyn DispatchHook>>,
}

/// Sees every backend call that tensor ops make on a device (see [`Device::with_hook`]): the
/// op's name (`"conv2d"`, `"unary_backward"`, ...), its shape or arguments as text, and how long
/// the call took on the host. On a backend that queues work (a GPU) that is the time to record
/// the call, not to run it. `cargo xtask profile-step` times the CPU's kernels this way.
pub trait DispatchHook: Send + Sync {
    /// One call has returned.
    fn observe(&self, op: &'static str, detail: &dyn fmt::Display, elapsed: Duration);
}

impl Device {
    /// Wraps a backend.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Self::from_arc(Arc::new(backend))
    }
    /// Wraps an already shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Device { backend, hook: None }
    }
    /// The same device, with every backend call that tensors on it make reported to `hook`
    /// (tensors made on the returned handle carry it into the results of their ops).
    pub fn with_hook(&self, hook: Arc<dyn DispatchHook>) -> Self {
        Device { backend: self.backend.clone(), hook: Some(hook) }
    }
    /// The backend, to call kernels directly.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }
    /// The backend's name.
    pub fn name(&self) -> String {
        self.backend.name()
    }
    /// What the backend can do (see [`crate::backend::Capabilities`]).
    pub fn capabilities(&self) -> crate::backend::Capabilities {
        self.backend.capabilities()
    }
    /// Runs `work`, a loop that calls many kernels one after another (a training or
    /// evaluation run), where the backend launches them at least cost, and returns its
    /// result. On the CPU that is one of the backend's worker threads: a kernel started there
    /// shares its work with the other workers while they are still awake from the last one,
    /// where a call from outside the pool hands each kernel over and sleeps until it is done.
    /// `work` runs in its caller's graph-recording mode ([`crate::no_grad`]); it should not
    /// wait for another thread's work (it holds a worker meanwhile: data-parallel ranks that
    /// are threads of one process would wait for each other forever).
    ///
    /// ```
    /// let device = kernels_cpu::cpu_device();
    /// let sum = device.run_host_loop(|| -> tensor::Result<f32> {
    ///     let x = tensor::Tensor::from_vec(vec![1.0, 2.0, 3.0], [3], &device)?;
    ///     x.sum_all()?.item()
    /// })?;
    /// assert_eq!(sum, 6.0);
    /// # Ok::<(), tensor::TensorError>(())
    /// ```
    pub fn run_host_loop<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        let (mut work, mut result) = (Some(work), None);
        let grad_enabled = crate::autodiff::is_grad_enabled();
        self.backend.run_host_loop(&mut || {
            if let Some(work) = work.take() {
                result = Some(crate::autodiff::with_grad_mode(grad_enabled, work));
            }
        });
        result.expect("Backend::run_host_loop must run its work once")
    }
    /// Whether both handles refer to the same backend instance.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.backend, &other.backend)
    }
    /// Runs one backend call for op `op` (`detail` describes its shape), through the hook
    /// when the device has one: the one place tensor ops reach a backend.
    pub(crate) fn call<R>(
        &self,
        op: &'static str,
        detail: &dyn fmt::Display,
        run: impl FnOnce(&dyn Backend) -> Result<R>,
    ) -> Result<R> {
        match &self.hook {
            None => run(&*self.backend),
            Some(hook) => {
                let start = Instant::now();
                let out = run(&*self.backend);
                hook.observe(op, detail, start.elapsed());
                out
            }
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({})", self.backend.name())
    }
}

/// Identity of a tensor, used to key gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An immutable n-dimensional f32 array on a [`Device`], with an optional record of how it was
/// computed (for [`Tensor::backward`]). Cloning is cheap and shares the data.
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: TensorId,
    storage: Storage,
    shape: Shape,
    device: Device,
    track: Track,
}

impl Tensor {
    pub(crate) fn build(storage: Storage, shape: Shape, device: Device, track: Track) -> Tensor {
        debug_assert_eq!(storage.len(), shape.numel());
        Tensor(Arc::new(Inner { id: TensorId::fresh(), storage, shape, device, track }))
    }

    /// Result of an op: records `backward` (with the op's inputs) only when gradients are
    /// being recorded and some input needs them.
    pub(crate) fn from_op(
        storage: Storage,
        shape: impl Into<Shape>,
        device: &Device,
        inputs: &[&Tensor],
        name: &'static str,
        backward: impl autodiff::BackwardFn + 'static,
    ) -> Tensor {
        let track = if autodiff::is_grad_enabled() && inputs.iter().any(|t| t.tracks_grad()) {
            Track::Op(Node {
                name,
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
                backward: Box::new(backward),
            })
        } else {
            Track::None
        };
        Tensor::build(storage, shape.into(), device.clone(), track)
    }

    /// A constant tensor from host data (row-major).
    pub fn from_vec(data: Vec<f32>, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Self::from_slice(&data, shape, device)
    }

    /// A constant tensor from a host slice (row-major).
    pub fn from_slice(data: &[f32], shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(TensorError::DataLength { expected: shape.numel(), got: data.len(), shape });
        }
        let storage = device.call("upload", &data.len(), |b| b.upload(data))?;
        Ok(Tensor::build(storage, shape, device.clone(), Track::None))
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(value: f32, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let storage = device.call("fill", &shape.numel(), |b| b.fill(shape.numel(), value))?;
        Ok(Tensor::build(storage, shape, device.clone(), Track::None))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Self::full(0.0, shape, device)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Self::full(1.0, shape, device)
    }

    /// A one-element tensor of shape `[]`.
    pub fn scalar(value: f32, device: &Device) -> Result<Tensor> {
        Self::full(value, Shape::new([]), device)
    }

    /// Wraps backend storage that a kernel produced (for backends and fused ops).
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if storage.len() != shape.numel() {
            return Err(TensorError::DataLength { expected: shape.numel(), got: storage.len(), shape });
        }
        Ok(Tensor::build(storage, shape, device.clone(), Track::None))
    }

    /// A trainable leaf sharing this tensor's data: gradients flow to it in [`Tensor::backward`].
    pub fn to_variable(&self) -> Tensor {
        Tensor::build(self.0.storage.clone(), self.0.shape.clone(), self.0.device.clone(), Track::Leaf)
    }

    /// The same data with no gradient record: gradients stop here.
    pub fn detach(&self) -> Tensor {
        Tensor::build(self.0.storage.clone(), self.0.shape.clone(), self.0.device.clone(), Track::None)
    }

    /// Whether gradients flow to or through this tensor.
    pub fn tracks_grad(&self) -> bool {
        !matches!(self.0.track, Track::None)
    }

    /// Whether this is a trainable leaf (made by [`Tensor::to_variable`]).
    pub fn is_variable(&self) -> bool {
        matches!(self.0.track, Track::Leaf)
    }

    pub(crate) fn track(&self) -> &Track {
        &self.0.track
    }

    /// This tensor's identity.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }
    /// The device holding the data.
    pub fn device(&self) -> &Device {
        &self.0.device
    }
    /// The backend storage.
    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    /// Copies the data to the host, row-major.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.device().call("download", &self.numel(), |b| b.download(&self.0.storage))
    }

    /// The value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(TensorError::NotScalar(self.shape().clone()));
        }
        Ok(self.to_vec()?[0])
    }

    /// Checks that `other` is on the same device, for binary ops.
    pub(crate) fn same_device(&self, other: &Tensor, op: &'static str) -> Result<()> {
        if self.device().same(other.device()) {
            Ok(())
        } else {
            Err(TensorError::DeviceMismatch { op, lhs: self.device().name(), rhs: other.device().name() })
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.0.track {
            Track::None => "constant",
            Track::Leaf => "variable",
            Track::Op(node) => node.name,
        };
        write!(f, "Tensor{}({}, {:?})", self.0.shape, origin, self.0.device)
    }
}
