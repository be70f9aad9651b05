//! Concatenation, slicing, row gathers and dropout masks (`shaders/layout.wgsl`).

use super::u32_param;
use crate::context::{wgpu_storage, Access};
use crate::params::{LayoutParams, PermuteParams};
use crate::shaders::Shader;
use crate::WgpuBackend;
use tensor::random::seed_keys;
use tensor::shape::{ConcatSpec, NarrowSpec, PermuteSpec};
use tensor::LayoutOps;
use tensor::{Result, Storage, TensorError};
use wgpu::util::DeviceExt;

impl LayoutOps for WgpuBackend {
    /// Concatenates parts `[outer, part_inner[i]]` into `[outer, sum]`: one dispatch per part.
    fn concat(&self, parts: &[&Storage], spec: &ConcatSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "concat";
        let parts = parts.iter().map(|part| wgpu_storage(part, ctx, op)).collect::<Result<Vec<_>>>()?;
        let width: usize = spec.part_inner.iter().sum();
        let out = ctx.alloc(op, spec.outer * width)?;
        let mut offset = 0;
        for (part, &inner) in parts.iter().zip(&spec.part_inner) {
            let n = spec.outer * inner;
            if n > 0 {
                let params = LayoutParams::concat_part(
                    u32_param(op, "elements", n)?,
                    inner as u32,
                    u32_param(op, "width", width)?,
                    offset as u32,
                );
                let bindings = [(1, part.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
                ctx.dispatch(Shader::Layout, "concat_part", &params, &bindings, ctx.grid_1d(n as u64))?;
            }
            offset += inner;
        }
        ctx.store(out)
    }

    /// Columns `offset..offset + len` of `[outer, inner]`.
    fn narrow(&self, x: &Storage, spec: &NarrowSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "narrow";
        let &NarrowSpec { outer, inner, offset, len } = spec;
        let x = wgpu_storage(x, ctx, op)?;
        if offset + len > inner {
            return Err(TensorError::Backend(format!(
                "narrow: columns {offset}..{} exceed the row length {inner}",
                offset + len
            )));
        }
        let n = outer * len;
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let params = LayoutParams::narrow(
                u32_param(op, "elements", n)?,
                u32_param(op, "inner", inner)?,
                offset as u32,
                len as u32,
            );
            let bindings = [(1, x.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Layout, op, &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// Rows `indices[i]` of `x` viewed as `[rows, row_len]`, stacked.
    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage> {
        let ctx = &self.context;
        let op = "gather_rows";
        let x = wgpu_storage(x, ctx, op)?;
        if row_len == 0 || x.len() % row_len != 0 {
            return Err(TensorError::Backend(format!(
                "gather_rows: {} elements are not whole rows of {row_len}",
                x.len()
            )));
        }
        let rows = x.len() / row_len;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= rows) {
            return Err(TensorError::Backend(format!("gather_rows: row {bad} of {rows} is out of range")));
        }
        let n = indices.len() * row_len;
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            ctx.checked_bytes(op, indices.len())?;
            // A fresh buffer: the indices must not change under commands still pending.
            let index_buffer = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("kernels-wgpu gather indices"),
                contents: bytemuck::cast_slice(indices),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let params = LayoutParams::gather_rows(u32_param(op, "elements", n)?, row_len as u32);
            let bindings = [
                (1, x.buffer(), Access::Read),
                (2, &index_buffer, Access::Read),
                (3, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Layout, op, &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// The input with its axes permuted (`shaders/permute.wgsl`).
    fn permute(&self, x: &Storage, spec: &PermuteSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "permute";
        let x = wgpu_storage(x, ctx, op)?;
        let n = spec.len();
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let mut params = PermuteParams {
                n: u32_param(op, "elements", n)?,
                rank: spec.out_dims.len() as u32,
                ..PermuteParams::default()
            };
            for (k, (&d, &s)) in spec.out_dims.iter().zip(&spec.in_strides).enumerate() {
                params.out_dims[k / 4][k % 4] = d as u32;
                params.in_strides[k / 4][k % 4] = u32_param(op, "stride", s)?;
            }
            let bindings = [(1, x.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Permute, op, &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// Dropout scaling mask, bit-identical to the CPU's (the shader ports `tensor::random`).
    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage> {
        let ctx = &self.context;
        let op = "dropout_mask";
        if !(0.0..1.0).contains(&rate) {
            return Err(TensorError::InvalidArgument(format!("dropout rate must be in [0, 1), got {rate}")));
        }
        let n = u32_param(op, "len", len)?;
        let out = ctx.alloc(op, len)?;
        if len > 0 {
            let (k0, k1) = seed_keys(seed);
            let keep = 1.0 / (1.0 - rate);
            let params = LayoutParams::dropout_mask(n, (k0, k1), rate, keep);
            let bindings = [(3, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Layout, op, &params, &bindings, ctx.grid_1d(len as u64))?;
        }
        ctx.store(out)
    }
}
