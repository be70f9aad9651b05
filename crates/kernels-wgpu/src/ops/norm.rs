//! Per-channel moments, sums and affine maps of `[outer, channels, inner]`, for normalization
//! layers (`shaders/norm.wgsl`).

use super::u32_param;
use crate::buffers::WgpuStorage;
use crate::context::{wgpu_storage, Access, Context, WORKGROUP};
use crate::params::NormParams;
use crate::shaders::Shader;
use crate::WgpuBackend;
use std::sync::Arc;
use tensor::shape::{ChannelSpec, Pool2dSpec};
use tensor::{ChannelCoefficients, ChannelGrad, NormOps, Result, Storage, TensorError};

/// Workgroups a statistic's first pass aims for, so that a few channels of many elements
/// (a batch normalization's statistics) still occupy the GPU.
const TARGET_GROUPS: usize = 1024;

/// Fewest elements of a channel one invocation takes in a first pass.
const MIN_PER_INVOCATION: usize = 8;

/// Most elements of a channel one invocation takes in a first pass: the chunks stay short, so
/// Welford's f32 counts stay exact.
const MAX_PER_INVOCATION: usize = 1024;

/// Channels side by side in one workgroup when `inner == 1` (channels last), so neighbouring
/// invocations read neighbouring values of a row.
const ROW_WIDTH: usize = 64;

/// Which statistic a pass computes: of its first input (`x`, `a`), and for sums of a second.
#[derive(Clone, Copy)]
enum Statistic<'a> {
    /// Mean and biased variance (`channel_moments`).
    Moments,
    /// `sum(g * (x - center))` and `sum(g)` (`channel_sums`), `g` the first input gated by
    /// `gate` (the fused ReLU's output) when given.
    Sums { x: &'a WgpuStorage, gate: Option<&'a WgpuStorage>, center: Option<&'a WgpuStorage> },
}

impl Statistic<'_> {
    fn op(self) -> &'static str {
        match self {
            Statistic::Moments => "channel_moments",
            Statistic::Sums { .. } => "channel_sums",
        }
    }

    /// Entry points of the first and the combining pass.
    fn entries(self) -> (&'static str, &'static str) {
        match self {
            Statistic::Moments => ("moments", "moments_combine"),
            Statistic::Sums { .. } => ("sums", "sums_combine"),
        }
    }
}

/// The first pass' uniform of a statistic over `spec` (`per_channel > 0`), and its channel
/// blocks: it runs `blocks * chunks` workgroups.
fn plan(op: &str, spec: &ChannelSpec) -> Result<(NormParams, usize)> {
    let width = if spec.inner == 1 { spec.channels.next_power_of_two().min(ROW_WIDTH) } else { 1 };
    let lanes = WORKGROUP as usize / width;
    let blocks = spec.channels.div_ceil(width);
    let per_channel = spec.per_channel();
    let chunk_len = per_channel
        .div_ceil(TARGET_GROUPS.div_ceil(blocks))
        .clamp(lanes * MIN_PER_INVOCATION, lanes * MAX_PER_INVOCATION);
    let chunks = per_channel.div_ceil(chunk_len);
    let params = NormParams {
        outer: u32_param(op, "outer", spec.outer)?,
        channels: u32_param(op, "channels", spec.channels)?,
        inner: u32_param(op, "inner", spec.inner)?,
        chunk_len: u32_param(op, "chunk", chunk_len)?,
        chunks: u32_param(op, "chunks", chunks)?,
        width: width as u32,
        ..NormParams::default()
    };
    Ok((params, blocks))
}

/// The combining pass' uniform after `first` (`chunks > 1`), and its channel blocks (one
/// workgroup each): channels side by side so that each has about one invocation per chunk, and
/// no invocation merges a long serial chain of chunks.
fn combine_plan(first: &NormParams) -> (NormParams, usize) {
    let lanes = (first.chunks as usize).next_power_of_two().min(WORKGROUP as usize);
    let width = (WORKGROUP as usize / lanes).min((first.channels as usize).next_power_of_two());
    (NormParams { width: width as u32, ..*first }, (first.channels as usize).div_ceil(width))
}

/// Runs `stat` over `x` into a new `[2, channels]` storage.
fn statistic(
    ctx: &Arc<Context>,
    stat: Statistic<'_>,
    x: &WgpuStorage,
    spec: &ChannelSpec,
) -> Result<WgpuStorage> {
    let op = stat.op();
    u32_param(op, "elements", spec.len())?;
    let out = ctx.alloc(op, 2 * spec.channels)?;
    if spec.channels == 0 {
        return Ok(out);
    }
    if spec.per_channel() == 0 {
        return match stat {
            Statistic::Moments => {
                Err(TensorError::InvalidArgument(format!("{op}: no elements per channel in {spec:?}")))
            }
            Statistic::Sums { .. } => {
                ctx.fill_buffer(out.buffer(), 2 * spec.channels, 0.0)?;
                Ok(out)
            }
        };
    }
    let (mut params, blocks) = plan(op, spec)?;
    if let Statistic::Sums { gate, center, .. } = stat {
        params.gated = gate.is_some() as u32;
        params.centered = center.is_some() as u32;
    }
    let (first, combine) = stat.entries();
    let chunks = params.chunks as usize;
    let partials = if chunks > 1 { Some(ctx.alloc(op, 2 * chunks * spec.channels)?) } else { None };
    let first_out = partials.as_ref().unwrap_or(&out);
    let mut bindings = vec![(1, x.buffer(), Access::Read)];
    if let Statistic::Sums { x: b, gate, center } = stat {
        // Unread stand-ins where there is no gate or center: a binding must be there.
        bindings.push((2, b.buffer(), Access::Read));
        bindings.push((5, gate.unwrap_or(x).buffer(), Access::Read));
        bindings.push((6, center.unwrap_or(b).buffer(), Access::Read));
    }
    bindings.push((4, first_out.buffer(), Access::Write));
    ctx.dispatch(Shader::Norm, first, &params, &bindings, ctx.grid_groups((blocks * chunks) as u64))?;
    if let Some(partials) = &partials {
        let mut bindings = vec![(1, partials.buffer(), Access::Read)];
        if let Statistic::Moments = stat {
            // The channels' pivots (their first elements), which the partial means are relative to.
            bindings.push((2, x.buffer(), Access::Read));
        }
        bindings.push((4, out.buffer(), Access::Write));
        let (params, blocks) = combine_plan(&params);
        ctx.dispatch(Shader::Norm, combine, &params, &bindings, ctx.grid_groups(blocks as u64))?;
    }
    Ok(out)
}

impl NormOps for WgpuBackend {
    fn channel_moments(&self, x: &Storage, spec: &ChannelSpec) -> Result<Storage> {
        let ctx = &self.context;
        let x = wgpu_storage(x, ctx, "channel_moments")?;
        ctx.store(statistic(ctx, Statistic::Moments, x, spec)?)
    }

    fn channel_affine(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        relu: bool,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "channel_affine";
        let x = wgpu_storage(x, ctx, op)?;
        let scale = wgpu_storage(scale, ctx, op)?;
        let shift = wgpu_storage(shift, ctx, op)?;
        let n = spec.len();
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let params = NormParams { relu: relu as u32, ..map_params(op, spec)? };
            let bindings = [
                (1, x.buffer(), Access::Read),
                (2, scale.buffer(), Access::Read),
                (3, shift.buffer(), Access::Read),
                (4, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Norm, "affine", &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    fn channel_sums(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        center: Option<&Storage>,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "channel_sums";
        let dy = wgpu_storage(grad.dy, ctx, op)?;
        let gate = relu_gate(grad, spec, ctx, op)?;
        let x = wgpu_storage(x, ctx, op)?;
        let center = center.map(|c| wgpu_storage(c, ctx, op)).transpose()?;
        ctx.store(statistic(ctx, Statistic::Sums { x, gate, center }, dy, spec)?)
    }

    fn channel_affine_pair(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        coefficients: ChannelCoefficients<'_>,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "channel_affine_pair";
        let dy = wgpu_storage(grad.dy, ctx, op)?;
        let gate = relu_gate(grad, spec, ctx, op)?;
        let x = wgpu_storage(x, ctx, op)?;
        let g_scale = wgpu_storage(coefficients.g_scale, ctx, op)?;
        let x_scale = wgpu_storage(coefficients.x_scale, ctx, op)?;
        let shift = wgpu_storage(coefficients.shift, ctx, op)?;
        let n = spec.len();
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let params = NormParams { gated: gate.is_some() as u32, ..map_params(op, spec)? };
            let bindings = [
                (1, dy.buffer(), Access::Read),
                (2, x.buffer(), Access::Read),
                (3, shift.buffer(), Access::Read),
                (4, out.buffer(), Access::Write),
                // Unread when there is no gate: a binding must be there.
                (5, gate.unwrap_or(dy).buffer(), Access::Read),
                (6, g_scale.buffer(), Access::Read),
                (7, x_scale.buffer(), Access::Read),
            ];
            ctx.dispatch(Shader::Norm, "affine_pair", &params, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    fn channel_affine_relu_max_pool(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        pool: &Pool2dSpec,
    ) -> Result<(Storage, Storage)> {
        // `fused_norm_pool` is false: the tensor op composes the map with its ReLU and the
        // pooling instead of asking for this.
        let _ = (x, scale, shift);
        Err(TensorError::Unsupported(format!("channel_affine_relu_max_pool {pool}: not fused on wgpu")))
    }
}

/// The fused ReLU's gate of `grad`, if any, checked to be `[2, channels]`; a pooled gradient
/// is refused (these kernels read a dense one).
fn relu_gate<'a>(
    grad: ChannelGrad<'a>,
    spec: &ChannelSpec,
    ctx: &Arc<Context>,
    op: &str,
) -> Result<Option<&'a WgpuStorage>> {
    grad.check_gate(spec, op)?;
    grad.refuse_pooled(op)?;
    grad.relu_gate.map(|gate| wgpu_storage(gate, ctx, op)).transpose()
}

/// The uniform of an element-wise map over `spec` (`channel_affine`, `channel_affine_pair`).
fn map_params(op: &str, spec: &ChannelSpec) -> Result<NormParams> {
    Ok(NormParams {
        n: u32_param(op, "elements", spec.len())?,
        channels: u32_param(op, "channels", spec.channels)?,
        inner: u32_param(op, "inner", spec.inner)?,
        outer: u32_param(op, "outer", spec.outer)?,
        ..NormParams::default()
    })
}
