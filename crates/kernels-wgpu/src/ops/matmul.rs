//! Batched matrix products with optional bias (`shaders/matmul.wgsl` + `gemm_core.wgsl`).

use super::u32_param;
use crate::buffers::input;
use crate::context::{Access, Context};
use crate::shaders::Shader;
use std::sync::Arc;
use tensor::shape::MatmulSpec;
use tensor::{Result, Storage};

/// `C = op(A) op(B) (+ bias)`.
pub(crate) fn matmul(
    ctx: &Arc<Context>,
    a: &Storage,
    b: &Storage,
    bias: Option<&Storage>,
    spec: &MatmulSpec,
) -> Result<Storage> {
    let op = "matmul";
    let &MatmulSpec { batch, m, k, n, trans_a, trans_b } = spec;
    let a = input(a, ctx, op, "lhs", batch * m * k)?;
    let b = input(b, ctx, op, "rhs", batch * k * n)?;
    let bias = bias.map(|s| input(s, ctx, op, "bias", n)).transpose()?;
    let out = ctx.alloc(op, batch * m * n)?;
    if batch * m * n == 0 {
        return ctx.store(out);
    }
    let tile = ctx.gemm_tile(batch * m.div_ceil(128) * n.div_ceil(128), m.min(n));
    let (tiles_m, tiles_n) = (m.div_ceil(tile), n.div_ceil(tile));
    let params = [
        u32_param(op, "m", m)?,
        u32_param(op, "n", n)?,
        u32_param(op, "k", k)?,
        u32_param(op, "batch", batch)?,
        tiles_m as u32,
        tiles_n as u32,
        u32::from(!trans_a),
        u32::from(!trans_b),
        u32::from(trans_a),
        u32::from(trans_b),
        u32::from(bias.is_some()),
        0,
    ];
    let bindings = [
        (1, a.buffer(), Access::Read),
        (2, b.buffer(), Access::Read),
        // Without a bias the shader never reads binding 3, but it must be bound.
        (3, bias.unwrap_or(a).buffer(), Access::Read),
        (4, out.buffer(), Access::Write),
    ];
    let groups = ctx.grid_groups((batch * tiles_m * tiles_n) as u64);
    let entry = if tile == 128 { "matmul_big" } else { "matmul" };
    ctx.dispatch(Shader::Matmul, entry, &params, &bindings, groups)?;
    ctx.store(out)
}
