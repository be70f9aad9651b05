//! Batched matrix products with optional bias (`shaders/matmul_common.wgsl` with
//! `matmul.wgsl` or `matmul_vec4.wgsl`, tiled by `gemm_core.wgsl`).

use super::reduce::reduce_buffer;
use super::u32_param;
use crate::context::{wgpu_storage, Access};
use crate::params::GemmParams;
use crate::shaders::Shader;
use crate::tile;
use crate::WgpuBackend;
use tensor::shape::{MatmulSpec, ReduceSpec};
use tensor::MatmulOps;
use tensor::{ReduceOp, Result, Storage};

/// Below this many output tiles a product with a long contraction is split along k, so that
/// a few tiles do not leave most of the GPU idle (a 128x2880x100 dense layer has 4; a 1024^3
/// product has 64 tiles of 128x128 for the H100's 132 multiprocessors).
const SPLIT_BELOW_TILES: usize = 128;

/// Workgroups a split product aims for.
const SPLIT_TARGET: usize = 128;

/// Shortest contraction slice worth its own workgroup (a multiple of both tiles' k step).
const MIN_SLICE: usize = 256;

impl MatmulOps for WgpuBackend {
    /// `C = op(A) op(B) (+ bias)`.
    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, spec: &MatmulSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "matmul";
        let &MatmulSpec { batch, m, k, n, trans_a, trans_b } = spec;
        let a = wgpu_storage(a, ctx, op)?;
        let b = wgpu_storage(b, ctx, op)?;
        let bias = bias.map(|s| wgpu_storage(s, ctx, op)).transpose()?;
        if batch * m * n == 0 {
            return ctx.store(ctx.alloc(op, 0)?);
        }
        let tile = ctx.gemm_tile(batch, m, n);
        let (tiles_m, tiles_n) = tile.count(m, n);
        let tiles = batch * tiles_m * tiles_n;
        let splits = if tiles < SPLIT_BELOW_TILES {
            SPLIT_TARGET.div_ceil(tiles).min(k / MIN_SLICE).max(1)
        } else {
            1
        };
        let k_chunk = k.div_ceil(splits).div_ceil(16).max(1) * 16;
        let splits = k.div_ceil(k_chunk).max(1);
        let params = GemmParams {
            m: u32_param(op, "m", m)?,
            n: u32_param(op, "n", n)?,
            k: u32_param(op, "k", k)?,
            products: u32_param(op, "products", batch * splits)?,
            tiles_m: tiles_m as u32,
            tiles_n: tiles_n as u32,
            a_k_contig: u32::from(!trans_a),
            b_n_contig: u32::from(!trans_b),
            has_bias: u32::from(bias.is_some()),
            k_chunk: u32_param(op, "k", k_chunk)?,
            ..GemmParams::default()
        };
        // Split products write their slices' partial sums, reduced into the output afterwards.
        let target = ctx.alloc(op, batch * splits * m * n)?;
        let bindings = [
            (1, a.buffer(), Access::Read),
            (2, b.buffer(), Access::Read),
            // Without a bias the shader never reads binding 3, but it must be bound.
            (3, bias.unwrap_or(a).buffer(), Access::Read),
            (4, target.buffer(), Access::Write),
        ];
        let groups = ctx.grid_groups((splits * tiles) as u64);
        // vec4 reads pay off in the large-tile kernel, whose speed is bound by its loads.
        let vec4 = tile == tile::BIG
            && (if trans_a { m } else { k }) % 4 == 0
            && (if trans_b { k } else { n }) % 4 == 0;
        let shader = if vec4 { Shader::MatmulVec4 } else { Shader::Matmul };
        let [bm, bn] = tile.constants();
        let constants = [
            bm,
            bn,
            ("TRANS_A", u32::from(trans_a)),
            ("TRANS_B", u32::from(trans_b)),
            ("SPLITS", splits as u32),
        ];
        ctx.dispatch_specialized(shader, tile.entry(), &constants, &params, &bindings, groups)?;
        if splits == 1 {
            return ctx.store(target);
        }
        let sum = ReduceSpec { outer: batch, reduced: splits, inner: m * n };
        ctx.store(reduce_buffer(ctx, ReduceOp::Sum, target.buffer(), &sum)?)
    }
}
