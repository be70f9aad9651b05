//! kernels-wgpu (filled by its issue).
