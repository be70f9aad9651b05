//! (Log-)softmax, its gradient and the fused softmax cross-entropy
//! (`shaders/softmax_xent.wgsl`).

use super::u32_param;
use crate::buffers::input;
use crate::context::{Access, Context};
use crate::shaders::Shader;
use std::sync::Arc;
use tensor::{Result, Storage};

/// Softmax or log-softmax over the rows of `[rows, cols]`.
pub(crate) fn softmax(
    ctx: &Arc<Context>,
    x: &Storage,
    rows: usize,
    cols: usize,
    log: bool,
) -> Result<Storage> {
    let op = "softmax";
    let x = input(x, ctx, op, "x", rows * cols)?;
    let out = ctx.alloc(op, rows * cols)?;
    if rows * cols > 0 {
        let params = [u32_param(op, "rows", rows)?, u32_param(op, "cols", cols)?, u32::from(log), 0];
        let bindings = [(1, x.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
        ctx.dispatch(Shader::SoftmaxXent, "softmax", &params, &bindings, ctx.grid_groups(rows as u64))?;
    }
    ctx.store(out)
}

/// Gradient of [`softmax`] from its output and the incoming gradient.
pub(crate) fn softmax_backward(
    ctx: &Arc<Context>,
    y: &Storage,
    dy: &Storage,
    rows: usize,
    cols: usize,
    log: bool,
) -> Result<Storage> {
    let op = "softmax_backward";
    let y = input(y, ctx, op, "y", rows * cols)?;
    let dy = input(dy, ctx, op, "dy", rows * cols)?;
    let out = ctx.alloc(op, rows * cols)?;
    if rows * cols > 0 {
        let params = [u32_param(op, "rows", rows)?, u32_param(op, "cols", cols)?, u32::from(log), 0];
        let bindings =
            [(1, y.buffer(), Access::Read), (2, dy.buffer(), Access::Read), (3, out.buffer(), Access::Write)];
        ctx.dispatch(Shader::SoftmaxXent, op, &params, &bindings, ctx.grid_groups(rows as u64))?;
    }
    ctx.store(out)
}

/// Per-row loss `-sum(labels * log_softmax(logits))` and `softmax(logits)`.
pub(crate) fn softmax_cross_entropy(
    ctx: &Arc<Context>,
    logits: &Storage,
    labels: &Storage,
    rows: usize,
    cols: usize,
) -> Result<(Storage, Storage)> {
    let op = "softmax_cross_entropy";
    let logits = input(logits, ctx, op, "logits", rows * cols)?;
    let labels = input(labels, ctx, op, "labels", rows * cols)?;
    let probs = ctx.alloc(op, rows * cols)?;
    let loss = ctx.alloc(op, rows)?;
    if rows > 0 {
        if cols == 0 {
            // Empty rows: zero loss, like the CPU (the shader has nothing to reduce).
            ctx.fill_buffer(loss.buffer(), rows, 0.0)?;
        } else {
            let params = [u32_param(op, "rows", rows)?, u32_param(op, "cols", cols)?, 0, 0];
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
