//! Convolution and its two gradients as implicit GEMMs (`shaders/conv2d.wgsl` +
//! `gemm_core.wgsl`): no im2col buffer is ever materialised. The fused conv-pool op
//! (convolution, 2x2 max pooling, ReLU) is the same GEMM with a pooling epilogue
//! (`conv2d_pool_store.wgsl`) and gradients that read dy through each window's winner.
//! Every pipeline is specialised to its layer's shape (`override` constants).

use super::reduce::reduce_buffer;
use super::u32_param;
use crate::context::{wgpu_storage, Access, Context};
use crate::params::GemmParams;
use crate::shaders::Shader;
use crate::tile::Tile;
use crate::WgpuBackend;
use std::sync::Arc;
use tensor::backend::{conv2d_max_pool_backward_unfused, conv2d_max_pool_unfused};
use tensor::shape::{Conv2dSpec, ConvPoolSpec, ReduceSpec};
use tensor::{ConvOps, ConvPoolSaved, ElementwiseOps};
use tensor::{ConvPoolBackward, ConvPoolGrads, ReduceOp, Result, Storage, UnaryOp};

/// A multiple of both GEMM tiles' contracted-axis step (`BK`, `BIG_K` in `gemm_core.wgsl`);
/// split-K chunks are multiples of it.
const TILE_K: usize = 16;

/// Workgroups the filter gradient aims for: its output is small (`kh*kw*in_c x out_c`) and
/// its contracted axis huge (`batch*out_h*out_w`), so it is split along the latter. Enough to
/// fill a large GPU several times over: each slice is a serial chain of loads and barriers,
/// and the partial products cost one cheap reduction.
const TARGET_GROUPS: usize = 2048;

#[derive(Clone, Copy)]
enum Mode {
    Forward = 0,
    BackwardInput = 1,
    BackwardFilter = 2,
}

/// One dispatch of the conv GEMM: `m x n` outputs from a `k`-long contraction, `splits`
/// slices of the contraction of `k_chunk` each, in workgroup tiles of `tile`.
struct Gemm {
    mode: Mode,
    m: usize,
    n: usize,
    k: usize,
    splits: usize,
    k_chunk: usize,
    tile: Tile,
}

impl Gemm {
    /// A whole contraction (no split) of `m x n` outputs, in the tile the context picks for it.
    fn unsplit(ctx: &Context, mode: Mode, m: usize, n: usize, k: usize) -> Gemm {
        Gemm { mode, m, n, k, splits: 1, k_chunk: 0, tile: ctx.gemm_tile(1, m, n) }
    }
}

/// The 2x2 max pooling a conv-pool dispatch runs through: the pooled output's height and
/// width, the ReLU, and the buffer of winners (written by the forward pass, read by the
/// gradients).
struct Pooling<'a> {
    out_h: usize,
    out_w: usize,
    relu: bool,
    winners: &'a wgpu::Buffer,
}

/// Buffers of one dispatch: the GEMM's A and B operands, the bias, the output.
struct Operands<'a> {
    a: &'a wgpu::Buffer,
    b: &'a wgpu::Buffer,
    bias: Option<&'a wgpu::Buffer>,
    out: &'a wgpu::Buffer,
}

fn run(
    ctx: &Arc<Context>,
    op: &str,
    g: &Gemm,
    spec: &Conv2dSpec,
    pooling: Option<&Pooling<'_>>,
    bufs: &Operands<'_>,
) -> Result<()> {
    let tile = g.tile;
    let (tiles_m, tiles_n) = tile.count(g.m, g.n);
    let (a_k_contig, b_n_contig) = match g.mode {
        Mode::Forward => (1, 1),
        Mode::BackwardInput => (1, 0),
        Mode::BackwardFilter => (0, 1),
    };
    let p = |what, v| u32_param(op, what, v);
    let params = GemmParams {
        m: p("m", g.m)?,
        n: p("n", g.n)?,
        k: p("k", g.k)?,
        products: p("splits", g.splits)?,
        tiles_m: p("tiles", tiles_m)?,
        tiles_n: p("tiles", tiles_n)?,
        a_k_contig,
        b_n_contig,
        has_bias: u32::from(bufs.bias.is_some()),
        k_chunk: p("k_chunk", g.k_chunk)?,
        ..GemmParams::default()
    };
    let (pool_h, pool_w) = pooling.map_or((1, 1), |q| (q.out_h, q.out_w));
    let [bm, bn] = tile.constants();
    let constants = [
        bm,
        bn,
        ("MODE", g.mode as u32),
        ("POOLED", u32::from(pooling.is_some())),
        ("RELU", u32::from(pooling.is_some_and(|q| q.relu))),
        ("IN_H", p("in_h", spec.in_h)?),
        ("IN_W", p("in_w", spec.in_w)?),
        ("IN_C", p("in_c", spec.in_c)?),
        ("OUT_H", p("out_h", spec.out_h)?),
        ("OUT_W", p("out_w", spec.out_w)?),
        ("OUT_C", p("out_c", spec.out_c)?),
        ("KERNEL_H", p("kernel_h", spec.kernel_h)?),
        ("KERNEL_W", p("kernel_w", spec.kernel_w)?),
        ("STRIDE_H", p("stride_h", spec.stride_h)?),
        ("STRIDE_W", p("stride_w", spec.stride_w)?),
        ("PAD_TOP", p("pad_top", spec.pad_top)?),
        ("PAD_LEFT", p("pad_left", spec.pad_left)?),
        ("POOL_OUT_H", p("pooled height", pool_h)?),
        ("POOL_OUT_W", p("pooled width", pool_w)?),
    ];
    // The fused forward writes the winners (binding 6); the gradients read them (binding 5).
    // Bindings a kernel declares but this dispatch does not read get a harmless stand-in.
    let pooled_forward = matches!(g.mode, Mode::Forward) && pooling.is_some();
    let winners = pooling.map_or(bufs.a, |q| q.winners);
    let mut bindings = vec![
        (1, bufs.a, Access::Read),
        (2, bufs.b, Access::Read),
        (3, bufs.bias.unwrap_or(bufs.a), Access::Read),
        (4, bufs.out, Access::Write),
        (5, if pooled_forward { bufs.a } else { winners }, Access::Read),
    ];
    if pooled_forward {
        bindings.push((6, winners, Access::Write));
    }
    let shader = if pooled_forward { Shader::Conv2dPool } else { Shader::Conv2d };
    let groups = ctx.grid_groups((g.splits * tiles_m * tiles_n) as u64);
    ctx.dispatch_specialized(shader, tile.entry(), &constants, &params, &bindings, groups)
}

fn input_gradient(
    ctx: &Arc<Context>,
    op: &str,
    dy: &wgpu::Buffer,
    filter: &Storage,
    spec: &Conv2dSpec,
    pooling: Option<&Pooling<'_>>,
) -> Result<Storage> {
    let f = wgpu_storage(filter, ctx, op)?;
    let m = spec.batch * spec.in_h * spec.in_w;
    let out = ctx.alloc(op, m * spec.in_c)?;
    if m * spec.in_c > 0 {
        let k = spec.kernel_h * spec.kernel_w * spec.out_c;
        let g = Gemm::unsplit(ctx, Mode::BackwardInput, m, spec.in_c, k);
        let bufs = Operands { a: dy, b: f.buffer(), bias: None, out: out.buffer() };
        run(ctx, op, &g, spec, pooling, &bufs)?;
    }
    ctx.store(out)
}

fn filter_gradient(
    ctx: &Arc<Context>,
    op: &str,
    x: &Storage,
    dy: &wgpu::Buffer,
    spec: &Conv2dSpec,
    pooling: Option<&Pooling<'_>>,
) -> Result<Storage> {
    let x = wgpu_storage(x, ctx, op)?;
    let (m, n) = (spec.patch_len(), spec.out_c);
    let k = spec.batch * spec.out_h * spec.out_w;
    // The tile for a product split many ways, and as many slices as fill TARGET_GROUPS
    // workgroups with that tile.
    let tile = ctx.gemm_tile(TARGET_GROUPS, m, n);
    let (tiles_m, tiles_n) = tile.count(m, n);
    let splits = (TARGET_GROUPS / (tiles_m * tiles_n).max(1)).clamp(1, k.div_ceil(8 * TILE_K).max(1));
    let k_chunk = k.div_ceil(splits).div_ceil(TILE_K).max(1) * TILE_K;
    let splits = k.div_ceil(k_chunk).max(1);
    let g = Gemm { mode: Mode::BackwardFilter, m, n, k, splits, k_chunk, tile };
    if m * n == 0 {
        return ctx.store(ctx.alloc(op, 0)?);
    }
    if splits == 1 {
        let out = ctx.alloc(op, m * n)?;
        run(ctx, op, &g, spec, pooling, &Operands { a: x.buffer(), b: dy, bias: None, out: out.buffer() })?;
        return ctx.store(out);
    }
    // Partial products of each slice, then their sum.
    let partials = ctx.alloc(op, splits * m * n)?;
    run(ctx, op, &g, spec, pooling, &Operands { a: x.buffer(), b: dy, bias: None, out: partials.buffer() })?;
    let sum = ReduceSpec { outer: 1, reduced: splits, inner: m * n };
    let out = reduce_buffer(ctx, ReduceOp::Sum, partials.buffer(), &sum)?;
    ctx.store(out)
}

/// Whether [`conv_pool_forward`] takes this conv-pool: disjoint 2x2 windows of stride 2 (Keras'
/// default `MaxPooling2D()`), whose four elements are one block row of the GEMM tile.
pub(crate) fn pools_in_registers(spec: &ConvPoolSpec) -> bool {
    let p = &spec.pool;
    spec.windows_disjoint() && (p.pool_h, p.pool_w) == (2, 2)
}

/// The conv-pool forward pass for a spec [`pools_in_registers`] takes: returns the pooled
/// output (after the ReLU where `spec.relu`) and each output's winner, its window position
/// 0..3 (what [`conv_pool_backward`] reads).
pub(crate) fn conv_pool_forward(
    ctx: &Arc<Context>,
    x: &Storage,
    filter: &Storage,
    bias: Option<&Storage>,
    spec: &ConvPoolSpec,
) -> Result<(Storage, Storage)> {
    let op = "conv2d_max_pool";
    let (conv, pool) = (&spec.conv, &spec.pool);
    let x = wgpu_storage(x, ctx, op)?;
    let f = wgpu_storage(filter, ctx, op)?;
    let bias = bias.map(|s| wgpu_storage(s, ctx, op)).transpose()?;
    let len = pool.output_shape().numel();
    let pooled = ctx.alloc(op, len)?;
    let winners = ctx.alloc(op, len)?;
    if len > 0 {
        let m = conv.batch * pool.out_h * pool.out_w * 4;
        let g = Gemm::unsplit(ctx, Mode::Forward, m, conv.out_c, conv.patch_len());
        let pooling =
            Pooling { out_h: pool.out_h, out_w: pool.out_w, relu: spec.relu, winners: winners.buffer() };
        let bufs =
            Operands { a: x.buffer(), b: f.buffer(), bias: bias.map(|b| b.buffer()), out: pooled.buffer() };
        run(ctx, op, &g, conv, Some(&pooling), &bufs)?;
    }
    Ok((ctx.store(pooled)?, ctx.store(winners)?))
}

/// Gradients of [`conv_pool_forward`]: dy is the pooled gradient at each window's winner
/// (and where the ReLU passed it), read so by the gradient GEMMs; the bias gradient is the
/// sum of those values.
fn conv_pool_backward(
    backend: &WgpuBackend,
    args: &ConvPoolBackward<'_>,
    winners: &Storage,
) -> Result<ConvPoolGrads> {
    let ctx = &backend.context;
    let op = "conv2d_max_pool_backward";
    let (conv, pool) = (&args.spec.conv, &args.spec.pool);
    let winners = wgpu_storage(winners, ctx, op)?;
    let masked;
    let mut dy = wgpu_storage(args.dpooled, ctx, op)?;
    if args.spec.relu {
        masked = backend.unary_backward(UnaryOp::Relu, args.pooled, args.pooled, args.dpooled)?;
        dy = wgpu_storage(&masked, ctx, op)?;
    }
    let pooling =
        Pooling { out_h: pool.out_h, out_w: pool.out_w, relu: args.spec.relu, winners: winners.buffer() };
    let [needs_input, needs_filter, needs_bias] = args.needs;
    let sum = ReduceSpec { outer: 1, reduced: conv.batch * pool.out_h * pool.out_w, inner: conv.out_c };
    Ok(ConvPoolGrads {
        input: needs_input
            .then(|| input_gradient(ctx, op, dy.buffer(), args.filter, conv, Some(&pooling)))
            .transpose()?,
        filter: needs_filter
            .then(|| filter_gradient(ctx, op, args.x, dy.buffer(), conv, Some(&pooling)))
            .transpose()?,
        bias: needs_bias
            .then(|| reduce_buffer(ctx, ReduceOp::Sum, dy.buffer(), &sum).and_then(|s| ctx.store(s)))
            .transpose()?,
    })
}

impl ConvOps for WgpuBackend {
    /// Forward convolution plus optional bias.
    fn conv2d(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &Conv2dSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "conv2d";
        let x = wgpu_storage(x, ctx, op)?;
        let f = wgpu_storage(filter, ctx, op)?;
        let bias = bias.map(|s| wgpu_storage(s, ctx, op)).transpose()?;
        let m = spec.batch * spec.out_h * spec.out_w;
        let out = ctx.alloc(op, m * spec.out_c)?;
        if m * spec.out_c > 0 {
            let g = Gemm::unsplit(ctx, Mode::Forward, m, spec.out_c, spec.patch_len());
            let bufs =
                Operands { a: x.buffer(), b: f.buffer(), bias: bias.map(|b| b.buffer()), out: out.buffer() };
            run(ctx, op, &g, spec, None, &bufs)?;
        }
        ctx.store(out)
    }

    /// Gradient with respect to the input.
    fn conv2d_backward_input(&self, dy: &Storage, filter: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "conv2d_backward_input";
        let dy = wgpu_storage(dy, ctx, op)?;
        input_gradient(ctx, op, dy.buffer(), filter, spec, None)
    }

    /// Gradient with respect to the filter (HWIO).
    fn conv2d_backward_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "conv2d_backward_filter";
        let dy = wgpu_storage(dy, ctx, op)?;
        filter_gradient(ctx, op, x, dy.buffer(), spec, None)
    }

    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &ConvPoolSpec,
    ) -> Result<(Storage, ConvPoolSaved)> {
        if !pools_in_registers(spec) {
            return conv2d_max_pool_unfused(self, x, filter, bias, spec);
        }
        let (pooled, winners) = conv_pool_forward(&self.context, x, filter, bias, spec)?;
        Ok((pooled, ConvPoolSaved::Winners(winners)))
    }

    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads> {
        match args.saved {
            ConvPoolSaved::ConvOutput(y) => conv2d_max_pool_backward_unfused(self, args, y),
            ConvPoolSaved::Winners(winners) => conv_pool_backward(self, args, winners),
        }
    }
}
