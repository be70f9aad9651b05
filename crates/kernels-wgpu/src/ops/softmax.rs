//! (Log-)softmax, its gradient and the fused softmax cross-entropy
//! (`shaders/softmax_xent.wgsl`).

use super::u32_param;
use crate::context::{wgpu_storage, Access};
use crate::params::SoftmaxParams;
use crate::shaders::Shader;
use crate::WgpuBackend;
use tensor::SoftmaxOps;
use tensor::{Result, Storage};

/// The uniform for `rows` rows of `cols` values, softmax or (with `log`) log-softmax.
fn params(op: &str, rows: usize, cols: usize, log: bool) -> Result<SoftmaxParams> {
    let (rows, cols) = (u32_param(op, "rows", rows)?, u32_param(op, "cols", cols)?);
    Ok(SoftmaxParams { rows, cols, log: u32::from(log), ..SoftmaxParams::default() })
}

impl SoftmaxOps for WgpuBackend {
    /// Softmax or log-softmax over the rows of `[rows, cols]`.
    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage> {
        let ctx = &self.context;
        let op = "softmax";
        let x = wgpu_storage(x, ctx, op)?;
        let out = ctx.alloc(op, rows * cols)?;
        if rows * cols > 0 {
            let params = params(op, rows, cols, log)?;
            let bindings = [(1, x.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::SoftmaxXent, "softmax", &params, &bindings, ctx.grid_groups(rows as u64))?;
        }
        ctx.store(out)
    }

    /// Gradient of `softmax` from its output and the incoming gradient.
    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Result<Storage> {
        let ctx = &self.context;
        let op = "softmax_backward";
        let y = wgpu_storage(y, ctx, op)?;
        let dy = wgpu_storage(dy, ctx, op)?;
        let out = ctx.alloc(op, rows * cols)?;
        if rows * cols > 0 {
            let params = params(op, rows, cols, log)?;
            let bindings = [
                (1, y.buffer(), Access::Read),
                (2, dy.buffer(), Access::Read),
                (3, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::SoftmaxXent, op, &params, &bindings, ctx.grid_groups(rows as u64))?;
        }
        ctx.store(out)
    }

    /// Per-row loss `-sum(labels * log_softmax(logits))` and `softmax(logits)`.
    fn softmax_cross_entropy(
        &self,
        logits: &Storage,
        labels: &Storage,
        rows: usize,
        cols: usize,
    ) -> Result<(Storage, Storage)> {
        let ctx = &self.context;
        let op = "softmax_cross_entropy";
        let logits = wgpu_storage(logits, ctx, op)?;
        let labels = wgpu_storage(labels, ctx, op)?;
        let probs = ctx.alloc(op, rows * cols)?;
        let loss = ctx.alloc(op, rows)?;
        if rows > 0 {
            if cols == 0 {
                // Empty rows: zero loss, like the CPU (the shader has nothing to reduce).
                ctx.fill_buffer(loss.buffer(), rows, 0.0)?;
            } else {
                let params = params(op, rows, cols, false)?;
                let bindings = [
                    (1, logits.buffer(), Access::Read),
                    (2, labels.buffer(), Access::Read),
                    (3, probs.buffer(), Access::Write),
                    (4, loss.buffer(), Access::Write),
                ];
                ctx.dispatch(Shader::SoftmaxXent, op, &params, &bindings, ctx.grid_groups(rows as u64))?;
            }
        }
        Ok((ctx.store(loss)?, ctx.store(probs)?))
    }
}
