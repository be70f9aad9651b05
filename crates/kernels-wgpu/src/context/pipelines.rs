//! Shader modules and compute pipelines, compiled on first use and cached for the context's
//! life.

use super::lock;
use crate::shaders::Shader;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
pub(super) struct Kernel {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
}

/// The context's compiled modules and pipelines.
#[derive(Default)]
pub(super) struct Pipelines {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    kernels: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
}

impl Pipelines {
    fn module(&self, device: &wgpu::Device, shader: Shader) -> wgpu::ShaderModule {
        let mut modules = lock(&self.modules);
        modules
            .entry(shader)
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file_name()),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                })
            })
            .clone()
    }

    /// The pipeline of `entry` in `shader` with `constants`, compiled on first use with an
    /// explicit layout matching `bindings` (so an entry point need not use every binding it is
    /// given).
    pub(super) fn kernel(
        &self,
        device: &wgpu::Device,
        shader: Shader,
        entry: &'static str,
        constants: Constants<'_>,
        bindings: &[Binding<'_>],
    ) -> Arc<Kernel> {
        let key = (shader, entry, constants.to_vec());
        if let Some(k) = lock(&self.kernels).get(&key) {
            return k.clone();
        }
        let module = self.module(device, shader);
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
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(entry),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
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
}
