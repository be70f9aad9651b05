//! The one ordered command stream: every kernel and copy is recorded, in call order, into
//! one encoder (consecutive dispatches in one compute pass), submitted in bounded batches,
//! each dispatch's uniform in its own slot of a params chunk.

use super::bind_groups::BindGroups;
use super::pipelines::{Binding, Constants};
use super::{lock, Context};
use crate::params::{ShaderParams, PARAMS_SLOT};
use crate::shaders::Shader;
use tensor::{Result, TensorError};

/// Recorded commands after which the pending ones are submitted without waiting, so a long
/// chain of kernels starts running (and a submission stays bounded) before the next download.
const MAX_PENDING: usize = 256;

/// Bytes of one params chunk: a slot for each of [`MAX_PENDING`] dispatches.
const CHUNK_BYTES: u64 = PARAMS_SLOT * MAX_PENDING as u64;

/// Commands recorded but not yet submitted, and the bind groups they tend to reuse.
///
/// Uniforms: every dispatch of one submission reads its params from its own 256-byte slot of
/// one `chunk`, bound with a dynamic offset. The slots are collected in `params` and written
/// with one `queue.write_buffer` just before the submit, which wgpu runs ahead of that
/// submission's commands. A chunk goes back to `Context::free_chunks` only once the device has
/// finished that submission, so no write can land under commands still reading a chunk.
#[derive(Default)]
pub(super) struct Pending {
    /// The open compute pass: consecutive dispatches share one (a copy or a submit ends it).
    /// Declared before `encoder` so that it is dropped first.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    commands: usize,
    chunk: Option<wgpu::Buffer>,
    params: Vec<u8>,
    /// The bind groups its dispatches reuse.
    bind_groups: BindGroups,
}

impl Context {
    /// Records one dispatch of `entry` with `params` (the uniform at binding 0, in a slot of
    /// the submission's params chunk) and `bindings`, over `groups` workgroups.
    pub(crate) fn dispatch<P: ShaderParams>(
        &self,
        shader: Shader,
        entry: &'static str,
        params: &P,
        bindings: &[Binding<'_>],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        self.dispatch_specialized(shader, entry, &[], params, bindings, groups)
    }

    /// [`Context::dispatch`] of the pipeline compiled with `constants` for the module's
    /// `override` declarations.
    pub(crate) fn dispatch_specialized<P: ShaderParams>(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: Constants<'_>,
        params: &P,
        bindings: &[Binding<'_>],
        groups: (u32, u32, u32),
    ) -> Result<()> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.0 > max || groups.1 > max || groups.2 > max {
            return Err(TensorError::Backend(format!(
                "{entry}: {groups:?} workgroups exceed max_compute_workgroups_per_dimension {max}"
            )));
        }
        // A uniform of another shader would be read field by field under the wrong names.
        assert!(P::SHADERS.contains(&shader), "{entry}: {shader:?} does not declare this uniform");
        let kernel = self.pipelines.kernel(&self.device, shader, entry, constants, bindings);
        let mut guard = lock(&self.pending);
        let pending = &mut *guard;
        let chunk = pending.chunk.get_or_insert_with(|| self.take_chunk()).clone();
        let offset = pending.params.len();
        pending.params.extend_from_slice(bytemuck::bytes_of(params));
        pending.params.resize(offset + PARAMS_SLOT as usize, 0);
        let bind_group = pending.bind_groups.get(self, &kernel, entry, &chunk, bindings);
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
}
