//! Sum / max over the middle axis of `[outer, reduced, inner]`, and row argmax
//! (`shaders/reduce.wgsl`).

use super::u32_param;
use crate::buffers::WgpuStorage;
use crate::context::{wgpu_storage, Access, Context};
use crate::params::ReduceParams;
use crate::shaders::Shader;
use crate::WgpuBackend;
use std::sync::Arc;
use tensor::shape::ReduceSpec;
use tensor::ReduceOps;
use tensor::{ReduceOp, Result, Storage};

/// Invocations below which a column reduction splits its reduced axis into chunks, so a
/// reduction to few outputs (bias gradients) still occupies the GPU.
const COLUMN_THREADS: usize = 1 << 18;

/// Fewest reduced rows a column invocation takes per chunk.
const MIN_CHUNK: usize = 32;

/// Reduced rows a row-reduction workgroup takes per chunk when it splits a long row.
const ROW_CHUNK: usize = 4096;

/// `[outer, reduced, inner]` in `x` reduced to a new `[outer, inner]` storage.
pub(crate) fn reduce_buffer(
    ctx: &Arc<Context>,
    op: ReduceOp,
    x: &wgpu::Buffer,
    spec: &ReduceSpec,
) -> Result<WgpuStorage> {
    let name = "reduce";
    let &ReduceSpec { outer, reduced, inner } = spec;
    let out = ctx.alloc(name, outer * inner)?;
    if outer * inner == 0 {
        return Ok(out);
    }
    let op_code = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Max => 1,
    };
    // How many chunks a pass cuts its reduced axis into (1 = the last pass).
    let chunks_of = |len: usize| {
        if inner == 1 {
            if outer < 512 {
                len.div_ceil(ROW_CHUNK).max(1)
            } else {
                1
            }
        } else {
            (COLUMN_THREADS / (outer * inner)).clamp(1, len.div_ceil(MIN_CHUNK).max(1))
        }
    };
    let pass = |src: &wgpu::Buffer, dst: &wgpu::Buffer, reduced: usize, chunk_len: usize, chunks: usize| {
        let params = ReduceParams {
            outer: u32_param(name, "outer", outer)?,
            reduced: u32_param(name, "reduced", reduced)?,
            inner: u32_param(name, "inner", inner)?,
            op: op_code,
            chunk_len: u32_param(name, "chunk", chunk_len)?,
            chunks: u32_param(name, "chunks", chunks)?,
            ..ReduceParams::default()
        };
        let bindings = [(1, src, Access::Read), (2, dst, Access::Write)];
        if inner == 1 {
            let groups = ctx.grid_groups((outer * chunks) as u64);
            ctx.dispatch(Shader::Reduce, "reduce_rows", &params, &bindings, groups)
        } else {
            let groups = ctx.grid_1d((outer * chunks * inner) as u64);
            ctx.dispatch(Shader::Reduce, "reduce_cols", &params, &bindings, groups)
        }
    };
    // Passes until one chunk is left: each column invocation adds a chunk of at most a few
    // dozen rows, one dependent load after another, so a bias gradient over 600,000 rows
    // takes four short passes rather than a second pass of thousands of serial loads.
    let mut partials: Option<WgpuStorage> = None;
    let mut len = reduced;
    loop {
        let chunks = chunks_of(len);
        let chunk_len = len.div_ceil(chunks).max(1);
        let chunks = len.div_ceil(chunk_len).max(1);
        let src = partials.as_ref().map_or(x, |p| p.buffer());
        if chunks == 1 {
            pass(src, out.buffer(), len, len.max(1), 1)?;
            break;
        }
        let next = ctx.alloc(name, outer * chunks * inner)?;
        pass(src, next.buffer(), len, chunk_len, chunks)?;
        partials = Some(next);
        len = chunks;
    }
    Ok(out)
}

impl ReduceOps for WgpuBackend {
    /// Reduces `[outer, reduced, inner]` to `[outer, inner]`.
    fn reduce(&self, op: ReduceOp, x: &Storage, spec: &ReduceSpec) -> Result<Storage> {
        let ctx = &self.context;
        let x = wgpu_storage(x, ctx, "reduce")?;
        let out = reduce_buffer(ctx, op, x.buffer(), spec)?;
        ctx.store(out)
    }

    /// Index of the first largest value of each row of `[rows, cols]`, as f32.
    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        let ctx = &self.context;
        let name = "argmax";
        let x = wgpu_storage(x, ctx, name)?;
        let out = ctx.alloc(name, rows)?;
        if rows > 0 {
            let params = ReduceParams {
                outer: u32_param(name, "rows", rows)?,
                reduced: u32_param(name, "cols", cols)?,
                inner: 1,
                op: 1,
                chunks: 1,
                ..ReduceParams::default()
            };
            let bindings = [(1, x.buffer(), Access::Read), (2, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Reduce, name, &params, &bindings, ctx.grid_groups(rows as u64))?;
        }
        ctx.store(out)
    }
}
