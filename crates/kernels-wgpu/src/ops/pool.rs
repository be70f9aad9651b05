//! Max / average / L2 pooling and their gradients (`shaders/pool.wgsl`).

use super::u32_param;
use crate::context::{wgpu_storage, Access};
use crate::params::PoolParams;
use crate::shaders::Shader;
use crate::WgpuBackend;
use tensor::shape::{Pool2dSpec, PoolKind};
use tensor::PoolOps;
use tensor::{Result, Storage};

fn input_len(spec: &Pool2dSpec) -> usize {
    spec.batch * spec.in_h * spec.in_w * spec.channels
}

fn params(op: &str, n: usize, kind: PoolKind, s: &Pool2dSpec) -> Result<PoolParams> {
    let p = |what, v| u32_param(op, what, v);
    let kind = match kind {
        PoolKind::Max => 0,
        PoolKind::Average => 1,
        PoolKind::L2 => 2,
    };
    Ok(PoolParams {
        n: p("elements", n)?,
        in_h: p("in_h", s.in_h)?,
        in_w: p("in_w", s.in_w)?,
        channels: p("channels", s.channels)?,
        out_h: p("out_h", s.out_h)?,
        out_w: p("out_w", s.out_w)?,
        pool_h: p("pool_h", s.pool_h)?,
        pool_w: p("pool_w", s.pool_w)?,
        stride_h: p("stride_h", s.stride_h)?,
        stride_w: p("stride_w", s.stride_w)?,
        pad_top: p("pad_top", s.pad_top)?,
        pad_left: p("pad_left", s.pad_left)?,
        kind,
        ..PoolParams::default()
    })
}

impl PoolOps for WgpuBackend {
    /// Pools NHWC `x`.
    fn pool2d(&self, kind: PoolKind, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        let ctx = &self.context;
        let op = "pool2d";
        let x = wgpu_storage(x, ctx, op)?;
        let n = spec.output_shape().numel();
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let p = params(op, n, kind, spec)?;
            let bindings = [(1, x.buffer(), Access::Read), (4, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Pool, "pool_forward", &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// Gradient of the pooling with respect to its input.
    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        spec: &Pool2dSpec,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "pool2d_backward";
        let n = input_len(spec);
        let x = wgpu_storage(x, ctx, op)?;
        let y = wgpu_storage(y, ctx, op)?;
        let dy = wgpu_storage(dy, ctx, op)?;
        let out = ctx.alloc(op, n)?;
        if n > 0 {
            let p = params(op, n, kind, spec)?;
            let bindings = [
                (1, x.buffer(), Access::Read),
                (2, y.buffer(), Access::Read),
                (3, dy.buffer(), Access::Read),
                (4, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Pool, "pool_backward", &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }
}
