//! Allocation (from the buffer pool), uploads, fills and read-back.

use super::pipelines::Access;
use super::Context;
use crate::buffers::{size_class, WgpuStorage, STORAGE_USAGE};
use crate::params::ElementwiseParams;
use crate::shaders::Shader;
use std::sync::Arc;
use tensor::{Result, Storage, TensorError};

impl Context {
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
        let storage = WgpuStorage::new(buffer, len, self.pool.clone());
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
            return Ok(WgpuStorage::new(buffer, data.len(), self.pool.clone()));
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
        Ok(WgpuStorage::new(buffer, data.len(), self.pool.clone()))
    }

    /// Wraps a finished output.
    pub(crate) fn store(&self, storage: WgpuStorage) -> Result<Storage> {
        self.check()?;
        Ok(Arc::new(storage))
    }

    /// Writes `value` into the first `len` elements of `buffer` (recorded, not run yet).
    pub(crate) fn fill_buffer(&self, buffer: &wgpu::Buffer, len: usize, value: f32) -> Result<()> {
        let n = u32::try_from(len)
            .map_err(|_| TensorError::Backend(format!("fill: {len} elements exceed 32-bit indices")))?;
        let params = ElementwiseParams { n, f0: value, ..ElementwiseParams::default() };
        self.dispatch(
            Shader::Elementwise,
            "fill",
            &params,
            &[(4, buffer, Access::Write)],
            self.grid_1d(len as u64),
        )
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

/// The GPU storage behind `storage`, or an error when it belongs to another backend (or another
/// `WgpuBackend`, whose device cannot read it).
pub(crate) fn wgpu_storage<'a>(
    storage: &'a Storage,
    context: &Arc<Context>,
    op: &str,
) -> Result<&'a WgpuStorage> {
    match storage.as_any().downcast_ref::<WgpuStorage>() {
        Some(s) if s.belongs_to(&context.pool) => Ok(s),
        Some(_) => Err(TensorError::Backend(format!("{op}: storage belongs to another wgpu device"))),
        None => Err(TensorError::Backend(format!(
            "{op}: storage is not a wgpu buffer (it belongs to another backend)"
        ))),
    }
}
