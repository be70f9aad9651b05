//! Fill, unary maps and their gradients, broadcast binary ops and expand
//! (`shaders/elementwise.wgsl`).

use super::u32_param;
use crate::context::{wgpu_storage, Access, Context};
use crate::params::{ElementwiseParams, MAX_RANK};
use crate::shaders::Shader;
use crate::WgpuBackend;
use std::sync::Arc;
use tensor::shape::BroadcastSpec;
use tensor::ElementwiseOps;
use tensor::{BinaryOp, Result, Storage, TensorError, UnaryOp};

/// The shader's code for `op` and its two constants.
fn unary_code(op: UnaryOp) -> (u32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Relu => (1, 0.0, 0.0),
        UnaryOp::Tanh => (2, 0.0, 0.0),
        UnaryOp::Sigmoid => (3, 0.0, 0.0),
        UnaryOp::Exp => (4, 0.0, 0.0),
        UnaryOp::Log => (5, 0.0, 0.0),
        UnaryOp::Sqrt => (6, 0.0, 0.0),
        UnaryOp::Square => (7, 0.0, 0.0),
        UnaryOp::Abs => (8, 0.0, 0.0),
        UnaryOp::Affine { scale, shift } => (9, scale, shift),
        UnaryOp::Clamp { min, max } => (10, min, max),
        UnaryOp::Softplus => (11, 0.0, 0.0),
        UnaryOp::LeakyRelu { negative_slope } => (12, negative_slope, 0.0),
        UnaryOp::Elu { alpha } => (13, alpha, 0.0),
        UnaryOp::Gelu => (14, 0.0, 0.0),
        UnaryOp::GeluTanh => (15, 0.0, 0.0),
        UnaryOp::Silu => (16, 0.0, 0.0),
    }
}

fn binary_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
        BinaryOp::Equal => 6,
        BinaryOp::GreaterEqual => 7,
    }
}

fn params(n: u32, op: u32, f0: f32, f1: f32) -> ElementwiseParams {
    ElementwiseParams { n, op, f0, f1, ..ElementwiseParams::default() }
}

/// New storage of `len` copies of `value`.
pub(crate) fn fill(ctx: &Arc<Context>, len: usize, value: f32) -> Result<Storage> {
    u32_param("fill", "len", len)?;
    let out = ctx.alloc("fill", len)?;
    if len > 0 {
        ctx.fill_buffer(out.buffer(), len, value)?;
    }
    ctx.store(out)
}

/// Writes the broadcast geometry into the uniform.
fn set_geometry(op: &str, p: &mut ElementwiseParams, spec: &BroadcastSpec) -> Result<()> {
    let rank = spec.dims.len();
    if rank > MAX_RANK {
        return Err(TensorError::Backend(format!(
            "{op}: {rank} broadcast dimensions after merging; the shader takes at most {MAX_RANK}"
        )));
    }
    p.rank = rank as u32;
    for d in 0..rank {
        let (vector, lane) = (d / 4, d % 4);
        p.dims[vector][lane] = u32_param(op, "dimension", spec.dims[d])?;
        p.a_strides[vector][lane] = u32_param(op, "stride", spec.a_strides[d])?;
        p.b_strides[vector][lane] = u32_param(op, "stride", *spec.b_strides.get(d).unwrap_or(&0))?;
    }
    Ok(())
}

impl ElementwiseOps for WgpuBackend {
    /// `op(x)` elementwise.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let ctx = &self.context;
        let x = wgpu_storage(x, ctx, "unary")?;
        let n = x.len();
        let out = ctx.alloc("unary", n)?;
        if n > 0 {
            let (code, f0, f1) = unary_code(op);
            let p = params(u32_param("unary", "len", n)?, code, f0, f1);
            let bindings = [(1, x.buffer(), Access::Read), (4, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Elementwise, "unary", &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// `dy * op'(x)` elementwise.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        let ctx = &self.context;
        let name = "unary_backward";
        let x = wgpu_storage(x, ctx, name)?;
        let n = x.len();
        let y = wgpu_storage(y, ctx, name)?;
        let dy = wgpu_storage(dy, ctx, name)?;
        let out = ctx.alloc(name, n)?;
        if n > 0 {
            let (code, f0, f1) = unary_code(op);
            let p = params(u32_param(name, "len", n)?, code, f0, f1);
            let bindings = [
                (1, x.buffer(), Access::Read),
                (2, y.buffer(), Access::Read),
                (3, dy.buffer(), Access::Read),
                (4, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Elementwise, name, &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// `a op b` with broadcasting.
    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let ctx = &self.context;
        let a = wgpu_storage(a, ctx, "binary")?;
        let b = wgpu_storage(b, ctx, "binary")?;
        let n = spec.numel();
        let out = ctx.alloc("binary", n)?;
        if n > 0 {
            let mut p = params(u32_param("binary", "len", n)?, binary_code(op), 0.0, 0.0);
            set_geometry("binary", &mut p, spec)?;
            let bindings = [
                (1, a.buffer(), Access::Read),
                (2, b.buffer(), Access::Read),
                (4, out.buffer(), Access::Write),
            ];
            ctx.dispatch(Shader::Elementwise, "binary", &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// Materialises `x` read with `spec.a_strides` into a contiguous output of `spec.dims`.
    fn expand(&self, x: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let ctx = &self.context;
        let x = wgpu_storage(x, ctx, "expand")?;
        let n = spec.numel();
        let out = ctx.alloc("expand", n)?;
        if n > 0 {
            let mut p = params(u32_param("expand", "len", n)?, 0, 0.0, 0.0);
            let spec = BroadcastSpec {
                dims: spec.dims.clone(),
                a_strides: spec.a_strides.clone(),
                b_strides: vec![0; spec.dims.len()],
            };
            set_geometry("expand", &mut p, &spec)?;
            let bindings = [(1, x.buffer(), Access::Read), (4, out.buffer(), Access::Write)];
            ctx.dispatch(Shader::Elementwise, "expand", &p, &bindings, ctx.grid_1d(n as u64))?;
        }
        ctx.store(out)
    }

    /// As the trait's contract says: rounds like `unary` (`Affine`) then `binary` (`Add`).
    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage> {
        let scaled = self.unary(UnaryOp::Affine { scale: alpha, shift: 0.0 }, b)?;
        let spec = BroadcastSpec { dims: vec![a.len()], a_strides: vec![1], b_strides: vec![1] };
        self.binary(BinaryOp::Add, a, &scaled, &spec)
    }
}
