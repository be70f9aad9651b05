//! The device, its queue, the one ordered command stream every kernel is recorded into, the
//! compiled pipelines, and how errors from the driver become `Err` values.

use crate::buffers::{size_class, BufferPool, WgpuStorage, STORAGE_USAGE};
use crate::faults::DeviceFaults;
use crate::shaders::Shader;
use crate::tile::Tile;
use crate::{GemmTile, WgpuOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tensor::{Result, Storage, TensorError};

/// Threads per workgroup of the one-dimensional kernels (elementwise, layout, pooling);
/// `shaders/*.wgsl` use the same number.
pub(crate) const WORKGROUP: u32 = 256;

/// Recorded commands after which the pending ones are submitted without waiting, so a long
/// chain of kernels starts running (and a submission stays bounded) before the next download.
const MAX_PENDING: usize = 256;

/// Bytes of one dispatch's slot in the params chunk: the uniform-offset alignment WebGPU
/// guarantees, and more than the largest `Params` struct of `shaders/*.wgsl` (224 bytes).
const PARAMS_SLOT: u64 = 256;

/// Bytes of one params chunk: a slot for each of [`MAX_PENDING`] dispatches.
const CHUNK_BYTES: u64 = PARAMS_SLOT * MAX_PENDING as u64;

/// Cached bind groups beyond which the cache starts over (bounds what it keeps alive).
const MAX_BIND_GROUPS: usize = 4096;

/// Values of a module's `override` constants for one pipeline: shape-specialised kernels
/// (the convolution's image and filter sizes), so that the driver sees constant divisors
/// and trip counts instead of uniforms. Each distinct set compiles its own pipeline, once.
pub(crate) type Constants<'a> = &'a [(&'static str, u32)];

/// A compiled pipeline's identity: module, entry point and override constants.
type KernelKey = (Shader, &'static str, Vec<(&'static str, u32)>);

/// How a kernel binds one buffer.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    Write,
}

/// One binding of a dispatch: the binding number in group 0, the buffer and its access.
pub(crate) type Binding<'a> = (u32, &'a wgpu::Buffer, Access);

/// A compiled kernel and the layout of its bind group.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// A bind group's identity: the kernel (its address; kernels live as long as the context),
/// the params chunk, and the storage buffers by binding.
type BindKey = (usize, wgpu::Buffer, Vec<(u32, wgpu::Buffer)>);

/// Commands recorded but not yet submitted, and the bind groups they tend to reuse.
///
/// Uniforms: every dispatch of one submission reads its params from its own 256-byte slot of
/// one `chunk`, bound with a dynamic offset. The slots are collected in `params` and written
/// with one `queue.write_buffer` just before the submit, which wgpu runs ahead of that
/// submission's commands. A chunk goes back to `Context::free_chunks` only once the device has
/// finished that submission, so no write can land under commands still reading a chunk.
#[derive(Default)]
struct Pending {
    /// The open compute pass: consecutive dispatches share one (a copy or a submit ends it).
    /// Declared before `encoder` so that it is dropped first.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    commands: usize,
    chunk: Option<wgpu::Buffer>,
    params: Vec<u8>,
    /// Bind groups of pooled buffers; valid while the pool has released nothing since
    /// `bind_generation` (a cached group keeps its buffers alive).
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    bind_generation: u64,
}

/// Everything a [`crate::WgpuBackend`] and its storages share.
pub(crate) struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) pool: BufferPool,
    /// Fill every new output with NaN before its kernel runs (tests: an element a kernel
    /// forgets to write then shows up).
    pub(crate) poison: bool,
    /// The GEMM tile policy.
    pub(crate) gemm_tile: GemmTile,
    pending: Mutex<Pending>,
    /// Params chunks whose last submission has completed.
    free_chunks: Arc<Mutex<Vec<wgpu::Buffer>>>,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    kernels: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
    /// Errors the device reported outside an error scope, and its loss; returned by the next
    /// operation (a loss by every later one).
    faults: DeviceFaults,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        options: WgpuOptions,
    ) -> Arc<Self> {
        let faults = DeviceFaults::watch(&device);
        let limits = device.limits();
        Arc::new(Context {
            device,
            queue,
            info,
            limits,
            pool: BufferPool::default(),
            poison: options.poison_outputs,
            gemm_tile: options.gemm_tile,
            pending: Mutex::new(Pending::default()),
            free_chunks: Arc::new(Mutex::new(Vec::new())),
            modules: Mutex::new(HashMap::new()),
            kernels: Mutex::new(HashMap::new()),
            faults,
        })
    }

    /// The error the device reported since the last check, if any; once the device is lost,
    /// always that.
    pub(crate) fn check(&self) -> Result<()> {
        self.faults.check()
    }

    /// Destroys the device, as a driver reset or a removed GPU would: every later operation
    /// fails with the device-lost error.
    pub(crate) fn destroy(&self) {
        // Nothing recorded may be submitted to a destroyed device.
        *lock(&self.pending) = Pending::default();
        self.device.destroy();
        // wgpu reports the loss when it next looks at the device.
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// Bytes a storage binding of `len` f32 values needs, or an error naming the limit it
    /// would exceed.
    pub(crate) fn checked_bytes(&self, op: &str, len: usize) -> Result<u64> {
        let bytes = (len as u64).saturating_mul(4);
        let class = size_class(bytes);
        let binding = self.limits.max_storage_buffer_binding_size;
        if class > binding {
            return Err(TensorError::Backend(format!(
                "{op}: a buffer of {len} f32 values ({class} bytes) exceeds the adapter's \
                 max_storage_buffer_binding_size of {binding} bytes"
            )));
        }
        if class > self.limits.max_buffer_size {
            return Err(TensorError::Backend(format!(
                "{op}: a buffer of {len} f32 values ({class} bytes) exceeds the adapter's \
                 max_buffer_size of {} bytes",
                self.limits.max_buffer_size
            )));
        }
        Ok(class)
    }

    /// A buffer for `len` f32 values (from the pool when one of its size class is free). Its
    /// contents are undefined (NaN when poisoning).
    pub(crate) fn alloc(self: &Arc<Self>, op: &str, len: usize) -> Result<WgpuStorage> {
        let class = self.checked_bytes(op, len)?;
        let buffer = match self.pool.take(class) {
            Some(b) => b,
            None => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernels-wgpu storage"),
                size: class,
                usage: STORAGE_USAGE,
                mapped_at_creation: false,
            }),
        };
        let storage = WgpuStorage::new(buffer, len, self.clone());
        if self.poison && len > 0 {
            self.fill_buffer(storage.buffer(), len, f32::NAN)?;
        }
        Ok(storage)
    }

    /// A new storage holding `data`. The buffer is created mapped and written directly, so the
    /// copy does not depend on (and cannot race with) commands still pending.
    pub(crate) fn upload(self: &Arc<Self>, data: &[f32]) -> Result<WgpuStorage> {
        let class = self.checked_bytes("upload", data.len())?;
        // A lost device cannot map a new buffer.
        self.check()?;
        if let Some(buffer) = self.pool.take(class) {
            // Reusing a pooled buffer keeps the pool (and the bind groups cached for its
            // buffers) stable. Commands already recorded may still read its old contents:
            // submitting them first puts the write after them, since `write_buffer` lands at
            // the start of the next submission.
            self.flush();
            if !data.is_empty() {
                self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(data));
            }
            self.check()?;
            return Ok(WgpuStorage::new(buffer, data.len(), self.clone()));
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernels-wgpu storage"),
            size: class,
            usage: STORAGE_USAGE,
            mapped_at_creation: true,
        });
        if !data.is_empty() {
            let bytes: &[u8] = bytemuck::cast_slice(data);
            let mut view = buffer
                .slice(..bytes.len() as u64)
                .get_mapped_range_mut()
                .map_err(|e| TensorError::Backend(format!("upload: cannot map the new buffer: {e}")))?;
            view.copy_from_slice(bytes);
        }
        buffer.unmap();
        self.check()?;
        Ok(WgpuStorage::new(buffer, data.len(), self.clone()))
    }

    /// Wraps a finished output.
    pub(crate) fn store(&self, storage: WgpuStorage) -> Result<Storage> {
        self.check()?;
        Ok(Arc::new(storage))
    }

    /// Writes `value` into the first `len` elements of `buffer` (recorded, not run yet).
    pub(crate) fn fill_buffer(&self, buffer: &wgpu::Buffer, len: usize, value: f32) -> Result<()> {
        // The elementwise uniform: 8 scalars and three arrays of 16 broadcast dimensions.
        let mut params = [0u32; 56];
        params[0] = u32::try_from(len)
            .map_err(|_| TensorError::Backend(format!("fill: {len} elements exceed 32-bit indices")))?;
        params[4] = value.to_bits();
        self.dispatch(
            Shader::Elementwise,
            "fill",
            &params,
            &[(4, buffer, Access::Write)],
            self.grid_1d(len as u64),
        )
    }

    /// The GEMM tile for `products` independent products (or split-K slices) of `m x n`,
    /// under this context's policy and the adapter's workgroup memory.
    pub(crate) fn gemm_tile(&self, products: usize, m: usize, n: usize) -> Tile {
        Tile::choose(self.gemm_tile, self.limits.max_compute_workgroup_storage_size, products, m, n)
    }

    /// Workgroup counts covering `threads` invocations of a [`WORKGROUP`]-wide kernel, folded
    /// into two dimensions when they exceed the per-dimension limit. The shaders rebuild the
    /// linear index from `workgroup_id` and `num_workgroups`.
    pub(crate) fn grid_1d(&self, threads: u64) -> (u32, u32, u32) {
        self.grid_groups(threads.div_ceil(WORKGROUP as u64))
    }

    /// `groups` workgroups as an `(x, y, 1)` grid within the per-dimension limit.
    pub(crate) fn grid_groups(&self, groups: u64) -> (u32, u32, u32) {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let groups = groups.max(1);
        if groups <= max {
            return (groups as u32, 1, 1);
        }
        let y = groups.div_ceil(max);
        let x = groups.div_ceil(y);
        (x as u32, y.min(max) as u32, 1)
    }

    fn module(&self, shader: Shader) -> wgpu::ShaderModule {
        let mut modules = lock(&self.modules);
        modules
            .entry(shader)
            .or_insert_with(|| {
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file_name()),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                })
            })
            .clone()
    }

    /// The pipeline of `entry` in `shader` with `constants`, compiled on first use with an
    /// explicit layout matching `bindings` (so an entry point need not use every binding it is
    /// given).
    fn kernel(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: Constants<'_>,
        bindings: &[Binding<'_>],
    ) -> Arc<Kernel> {
        let key = (shader, entry, constants.to_vec());
        if let Some(k) = lock(&self.kernels).get(&key) {
            return k.clone();
        }
        let module = self.module(shader);
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for &(binding, _, access) in bindings {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: matches!(access, Access::Read) },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(entry),
            entries: &entries,
        });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants.iter().map(|&(name, v)| (name, f64::from(v))).collect::<Vec<_>>(),
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let kernel = Arc::new(Kernel { pipeline, layout });
        lock(&self.kernels).insert(key, kernel.clone());
        kernel
    }

    /// Records one dispatch of `entry` with `params` (the uniform at binding 0, in a slot of
    /// the submission's params chunk) and `bindings`, over `groups` workgroups.
    pub(crate) fn dispatch(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &[u32],
        bindings: &[Binding<'_>],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        self.dispatch_specialized(shader, entry, &[], params, bindings, groups)
    }

    /// [`Context::dispatch`] of the pipeline compiled with `constants` for the module's
    /// `override` declarations.
    pub(crate) fn dispatch_specialized(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: Constants<'_>,
        params: &[u32],
        bindings: &[Binding<'_>],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.0 > max || groups.1 > max || groups.2 > max {
            return Err(TensorError::Backend(format!(
                "{entry}: {groups:?} workgroups exceed max_compute_workgroups_per_dimension {max}"
            )));
        }
        if params.len() as u64 * 4 > PARAMS_SLOT {
            return Err(TensorError::Backend(format!("{entry}: {} param words exceed a slot", params.len())));
        }
        let kernel = self.kernel(shader, entry, constants, bindings);
        let mut guard = lock(&self.pending);
        let pending = &mut *guard;
        let chunk = pending.chunk.get_or_insert_with(|| self.take_chunk()).clone();
        let offset = pending.params.len();
        pending.params.extend_from_slice(bytemuck::cast_slice(params));
        pending.params.resize(offset + PARAMS_SLOT as usize, 0);
        let bind_group = self.bind_group(pending, &kernel, entry, &chunk, bindings);
        let pass = match &mut pending.pass {
            Some(pass) => pass,
            None => {
                let encoder = pending.encoder.get_or_insert_with(|| self.new_encoder());
                let pass = encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("kernels-wgpu"),
                        timestamp_writes: None,
                    })
                    .forget_lifetime();
                pending.pass.insert(pass)
            }
        };
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[offset as u32]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        pending.commands += 1;
        if pending.commands >= MAX_PENDING || pending.params.len() as u64 + PARAMS_SLOT > CHUNK_BYTES {
            self.submit_locked(pending);
        }
        Ok(())
    }

    fn new_encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("kernels-wgpu") })
    }

    /// A params chunk the device no longer reads, or a new one.
    fn take_chunk(&self) -> wgpu::Buffer {
        if let Some(chunk) = lock(&self.free_chunks).pop() {
            return chunk;
        }
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernels-wgpu params"),
            size: CHUNK_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The bind group of `kernel` over `chunk` and `bindings`: cached when every buffer is a
    /// pooled storage buffer (those are released only through the pool, which the cache
    /// watches); one-off buffers (gather indices) get an uncached group.
    fn bind_group(
        &self,
        pending: &mut Pending,
        kernel: &Arc<Kernel>,
        entry: &'static str,
        chunk: &wgpu::Buffer,
        bindings: &[Binding<'_>],
    ) -> wgpu::BindGroup {
        let create = || {
            let mut entries = Vec::with_capacity(bindings.len() + 1);
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: chunk,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_SLOT),
                }),
            });
            for &(binding, buffer, _) in bindings {
                entries.push(wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() });
            }
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &kernel.layout,
                entries: &entries,
            })
        };
        if !bindings.iter().all(|(_, buffer, _)| buffer.usage() == STORAGE_USAGE) {
            return create();
        }
        let generation = self.pool.generation();
        if pending.bind_generation != generation || pending.bind_groups.len() >= MAX_BIND_GROUPS {
            pending.bind_groups.clear();
            pending.bind_generation = generation;
        }
        let key = (
            Arc::as_ptr(kernel) as usize,
            chunk.clone(),
            bindings.iter().map(|&(binding, buffer, _)| (binding, buffer.clone())).collect(),
        );
        pending.bind_groups.entry(key).or_insert_with(create).clone()
    }

    /// Records a buffer-to-buffer copy into the stream.
    pub(crate) fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        if bytes == 0 {
            return;
        }
        let mut guard = lock(&self.pending);
        let pending = &mut *guard;
        // A copy cannot be recorded inside a compute pass.
        pending.pass = None;
        let encoder = pending.encoder.get_or_insert_with(|| self.new_encoder());
        encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
        pending.commands += 1;
        if pending.commands >= MAX_PENDING {
            self.submit_locked(pending);
        }
    }

    fn submit_locked(&self, pending: &mut Pending) {
        // Dropping the pass ends it, which `finish` requires.
        pending.pass = None;
        let Some(encoder) = pending.encoder.take() else { return };
        pending.commands = 0;
        let chunk = pending.chunk.take();
        if let Some(chunk) = &chunk {
            // Lands before this submission's commands; the chunk was idle (see `Pending`).
            self.queue.write_buffer(chunk, 0, &pending.params);
            pending.params.clear();
        }
        self.queue.submit([encoder.finish()]);
        if let Some(chunk) = chunk {
            let free = self.free_chunks.clone();
            self.queue.on_submitted_work_done(move || lock(&free).push(chunk));
            // Non-blocking: runs the callbacks of submissions already finished, so chunks
            // come back without a wait even when nothing downloads for a long time.
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
    }

    /// Submits the pending commands (without waiting).
    pub(crate) fn flush(&self) {
        self.submit_locked(&mut lock(&self.pending));
    }

    /// Submits the pending commands and waits until the device has run them.
    pub(crate) fn sync(&self) -> Result<()> {
        self.flush();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| TensorError::Backend(format!("wgpu: waiting for the device failed: {e}")))?;
        self.check()
    }

    /// Copies the first `len` values of `buffer` to the host: submits everything pending,
    /// waits, and reads a staging copy.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            self.check()?;
            return Ok(Vec::new());
        }
        let bytes = len as u64 * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernels-wgpu readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.copy(buffer, 0, &staging, 0, bytes);
        self.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| TensorError::Backend(format!("wgpu: waiting for the device failed: {e}")))?;
        self.check()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(TensorError::Backend(format!("wgpu: mapping the readback buffer failed: {e}")))
            }
            Err(_) => return Err(TensorError::Backend("wgpu: the readback was never completed".into())),
        }
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| TensorError::Backend(format!("wgpu: reading the readback buffer failed: {e}")))?;
        let values = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(values)
    }
}
