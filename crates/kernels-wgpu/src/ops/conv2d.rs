//! Convolution and its two gradients as implicit GEMMs (`shaders/conv2d.wgsl` +
//! `gemm_core.wgsl`): no im2col buffer is ever materialised.

use super::reduce::reduce_buffer;
use super::u32_param;
use crate::buffers::input;
use crate::context::{Access, Context};
use crate::shaders::{gemm_entry, Shader};
use std::sync::Arc;
use tensor::shape::{Conv2dSpec, ReduceSpec};
use tensor::{ReduceOp, Result, Storage};

/// A multiple of both GEMM tiles' contracted-axis step (`BK`, `BIG_K` in `gemm_core.wgsl`);
/// split-K chunks are multiples of it.
const TILE_K: usize = 16;

/// Workgroups the filter gradient aims for: its output is small (`kh*kw*in_c x out_c`) and
/// its contracted axis huge (`batch*out_h*out_w`), so it is split along the latter.
const TARGET_GROUPS: usize = 512;

#[derive(Clone, Copy)]
enum Mode {
    Forward = 0,
    BackwardInput = 1,
    BackwardFilter = 2,
}

/// One dispatch of the conv GEMM: `m x n` outputs from a `k`-long contraction, `splits`
/// slices of the contraction of `k_chunk` each.
struct Gemm {
    mode: Mode,
    m: usize,
    n: usize,
    k: usize,
    splits: usize,
    k_chunk: usize,
}

fn run(
    ctx: &Arc<Context>,
    op: &str,
    g: &Gemm,
    spec: &Conv2dSpec,
    bufs: (&wgpu::Buffer, &wgpu::Buffer, Option<&wgpu::Buffer>, &wgpu::Buffer),
) -> Result<()> {
    let tile = ctx.gemm_tile(g.splits * g.m.div_ceil(128) * g.n.div_ceil(128), g.m.min(g.n));
    let (tiles_m, tiles_n) = (g.m.div_ceil(tile), g.n.div_ceil(tile));
    let (a_k_contig, b_n_contig) = match g.mode {
        Mode::Forward => (1, 1),
        Mode::BackwardInput => (1, 0),
        Mode::BackwardFilter => (0, 1),
    };
    let p = |what, v| u32_param(op, what, v);
    let params = [
        p("m", g.m)?,
        p("n", g.n)?,
        p("k", g.k)?,
        p("splits", g.splits)?,
        p("tiles", tiles_m)?,
        p("tiles", tiles_n)?,
        a_k_contig,
        b_n_contig,
        g.mode as u32,
        u32::from(bufs.2.is_some()),
        p("k_chunk", g.k_chunk)?,
        0,
        p("in_h", spec.in_h)?,
        p("in_w", spec.in_w)?,
        p("in_c", spec.in_c)?,
        p("out_h", spec.out_h)?,
        p("out_w", spec.out_w)?,
        p("out_c", spec.out_c)?,
        p("kernel_h", spec.kernel_h)?,
        p("kernel_w", spec.kernel_w)?,
        p("stride_h", spec.stride_h)?,
        p("stride_w", spec.stride_w)?,
        p("pad_top", spec.pad_top)?,
        p("pad_left", spec.pad_left)?,
    ];
    let bindings = [
        (1, bufs.0, Access::Read),
        (2, bufs.1, Access::Read),
        (3, bufs.2.unwrap_or(bufs.0), Access::Read),
        (4, bufs.3, Access::Write),
    ];
    let groups = ctx.grid_groups((g.splits * tiles_m * tiles_n) as u64);
    let entry = gemm_entry(tile);
    ctx.dispatch(Shader::Conv2d, entry, &params, &bindings, groups)
}

/// Forward convolution plus optional bias.
pub(crate) fn forward(
    ctx: &Arc<Context>,
    x: &Storage,
    filter: &Storage,
    bias: Option<&Storage>,
    spec: &Conv2dSpec,
) -> Result<Storage> {
    let op = "conv2d";
    let x = input(x, ctx, op, "input", spec.input_shape().numel())?;
    let f = input(filter, ctx, op, "filter", spec.filter_shape().numel())?;
    let bias = bias.map(|s| input(s, ctx, op, "bias", spec.out_c)).transpose()?;
    let m = spec.batch * spec.out_h * spec.out_w;
    let out = ctx.alloc(op, m * spec.out_c)?;
    if m * spec.out_c > 0 {
        let g = Gemm { mode: Mode::Forward, m, n: spec.out_c, k: spec.patch_len(), splits: 1, k_chunk: 0 };
        let bufs = (x.buffer(), f.buffer(), bias.map(|b| b.buffer()), out.buffer());
        run(ctx, op, &g, spec, bufs)?;
    }
    ctx.store(out)
}

/// Gradient with respect to the input.
pub(crate) fn backward_input(
    ctx: &Arc<Context>,
    dy: &Storage,
    filter: &Storage,
    spec: &Conv2dSpec,
) -> Result<Storage> {
    let op = "conv2d_backward_input";
    let dy = input(dy, ctx, op, "dy", spec.output_shape().numel())?;
    let f = input(filter, ctx, op, "filter", spec.filter_shape().numel())?;
    let m = spec.batch * spec.in_h * spec.in_w;
    let out = ctx.alloc(op, m * spec.in_c)?;
    if m * spec.in_c > 0 {
        let k = spec.kernel_h * spec.kernel_w * spec.out_c;
        let g = Gemm { mode: Mode::BackwardInput, m, n: spec.in_c, k, splits: 1, k_chunk: 0 };
        run(ctx, op, &g, spec, (dy.buffer(), f.buffer(), None, out.buffer()))?;
    }
    ctx.store(out)
}

/// Gradient with respect to the filter (HWIO).
pub(crate) fn backward_filter(
    ctx: &Arc<Context>,
    x: &Storage,
    dy: &Storage,
    spec: &Conv2dSpec,
) -> Result<Storage> {
    let op = "conv2d_backward_filter";
    let x = input(x, ctx, op, "input", spec.input_shape().numel())?;
    let dy = input(dy, ctx, op, "dy", spec.output_shape().numel())?;
    let (m, n) = (spec.patch_len(), spec.out_c);
    let k = spec.batch * spec.out_h * spec.out_w;
    let tiles = m.div_ceil(64) * n.div_ceil(64);
    let splits = (TARGET_GROUPS / tiles.max(1)).clamp(1, k.div_ceil(8 * TILE_K).max(1));
    let k_chunk = k.div_ceil(splits).div_ceil(TILE_K).max(1) * TILE_K;
    let splits = k.div_ceil(k_chunk).max(1);
    let g = Gemm { mode: Mode::BackwardFilter, m, n, k, splits, k_chunk };
    if m * n == 0 {
        return ctx.store(ctx.alloc(op, 0)?);
    }
    if splits == 1 {
        let out = ctx.alloc(op, m * n)?;
        run(ctx, op, &g, spec, (x.buffer(), dy.buffer(), None, out.buffer()))?;
        return ctx.store(out);
    }
    // Partial products of each slice, then their sum.
    let partials = ctx.alloc(op, splits * m * n)?;
    run(ctx, op, &g, spec, (x.buffer(), dy.buffer(), None, partials.buffer()))?;
    let sum = ReduceSpec { outer: 1, reduced: splits, inner: m * n };
    let out = reduce_buffer(ctx, ReduceOp::Sum, partials.buffer(), &sum)?;
    ctx.store(out)
}
