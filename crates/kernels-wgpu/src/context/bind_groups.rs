//! The bind-group cache: a training step binds the same pooled buffers to the same kernels
//! step after step, so each group is created once rather than per dispatch.

use super::pipelines::{Binding, Kernel};
use super::Context;
use crate::buffers::STORAGE_USAGE;
use crate::params::PARAMS_SLOT;
use std::collections::HashMap;
use std::sync::Arc;

/// Cached bind groups beyond which the cache starts over (bounds what it keeps alive).
const MAX_BIND_GROUPS: usize = 4096;

/// A bind group's identity: the kernel (its address; kernels live as long as the context),
/// the params chunk, and the storage buffers by binding.
type BindKey = (usize, wgpu::Buffer, Vec<(u32, wgpu::Buffer)>);

/// Bind groups of pooled buffers; valid while the pool has released nothing since
/// `generation` (a cached group keeps its buffers alive).
#[derive(Default)]
pub(super) struct BindGroups {
    groups: HashMap<BindKey, wgpu::BindGroup>,
    generation: u64,
}

impl BindGroups {
    /// The bind group of `kernel` over `chunk` and `bindings`: cached when every buffer is a
    /// pooled storage buffer (those are released only through the pool, which the cache
    /// watches); one-off buffers (gather indices) get an uncached group.
    pub(super) fn get(
        &mut self,
        context: &Context,
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
            context.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &kernel.layout,
                entries: &entries,
            })
        };
        if !bindings.iter().all(|(_, buffer, _)| buffer.usage() == STORAGE_USAGE) {
            return create();
        }
        let generation = context.pool.generation();
        if self.generation != generation || self.groups.len() >= MAX_BIND_GROUPS {
            self.groups.clear();
            self.generation = generation;
        }
        let key = (
            Arc::as_ptr(kernel) as usize,
            chunk.clone(),
            bindings.iter().map(|&(binding, buffer, _)| (binding, buffer.clone())).collect(),
        );
        self.groups.entry(key).or_insert_with(create).clone()
    }
}
