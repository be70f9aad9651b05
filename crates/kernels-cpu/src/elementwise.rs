//! Elementwise kernels: unary maps and their gradients, broadcast binary maps, `expand` and
//! `fill`.
//!
//! Every op is a monomorphised closure applied over contiguous runs, so LLVM vectorises the
//! loops. Broadcast inputs are walked run by run along the innermost dimension (an odometer
//! over the outer ones, no per-element division); the run's strides pick a specialised loop
//! (both contiguous, one side a broadcast scalar, ...). Large outputs are split into fixed
//! chunks across rayon's threads.

use crate::fast_math;
use crate::{cpu_slice, store, CpuBackend};
use std::f32::consts::FRAC_1_SQRT_2;
use std::mem::MaybeUninit;
use tensor::shape::BroadcastSpec;
use tensor::{BinaryOp, UnaryOp};
use tensor::{ElementwiseOps, Result, Storage};

/// Builds a vector of `len` elements by letting `body(offset, chunk)` initialise every
/// element of each chunk (the chunk starting at element `offset`), never zeroing it first.
/// Large outputs are built in fixed chunks in parallel.
///
/// # Safety
/// `body` must write every element of its chunk. The kernels do so with loops zipped over
/// inputs sliced to the chunk's length (which panic rather than fall short), or by walking
/// runs that tile the chunk.
pub(crate) unsafe fn build(
    len: usize,
    body: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let chunk = crate::PARALLEL_CHUNK;
    let parallel = len >= crate::PARALLEL_MIN_ELEMENTS;
    let init = |index: usize, piece: &mut [MaybeUninit<f32>]| body(index * chunk, piece);
    // SAFETY: `body` initialises every element (the caller's promise).
    unsafe { crate::buffers::build_chunks(len, chunk, parallel, init) }
}

/// `len` copies of `value`.
pub fn fill(len: usize, value: f32) -> Vec<f32> {
    let mut out = crate::buffers::take(len);
    out.resize(len, value);
    out
}

/// Applies `f` to every element of `x`.
fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    // SAFETY: the zipped loop writes every element of the chunk.
    unsafe {
        build(x.len(), |offset, out| {
            let x = &x[offset..offset + out.len()];
            for (o, &x) in out.iter_mut().zip(x) {
                o.write(f(x));
            }
        })
    }
}

/// Applies `f(x, y, dy)` elementwise.
fn map3(x: &[f32], y: &[f32], dy: &[f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) -> Vec<f32> {
    // SAFETY: the zipped loop writes every element of the chunk.
    unsafe {
        build(x.len(), |offset, out| {
            let range = offset..offset + out.len();
            let (x, y, dy) = (&x[range.clone()], &y[range.clone()], &dy[range]);
            for (((o, &x), &y), &dy) in out.iter_mut().zip(x).zip(y).zip(dy) {
                o.write(f(x, y, dy));
            }
        })
    }
}

/// `a + alpha * b` elementwise (`a` and `b` of equal length), rounded as the product and then
/// the sum: no fused multiply-add, so the result equals `Affine` then `Add` bit for bit.
pub fn scaled_add(a: &[f32], b: &[f32], alpha: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "scaled_add: lengths differ");
    // SAFETY: the zipped loop writes every element of the chunk.
    unsafe {
        build(a.len(), |offset, out| {
            let range = offset..offset + out.len();
            for ((o, &a), &b) in out.iter_mut().zip(&a[range.clone()]).zip(&b[range]) {
                o.write(a + alpha * b);
            }
        })
    }
}

/// `sqrt(2 / pi)`, the scale of the tanh form of gelu.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic term's weight in the tanh form of gelu.
const GELU_CUBIC: f32 = 0.044_715;
/// `1 / sqrt(2 pi)`, the standard normal density at 0.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// The tanh form of gelu's argument to tanh.
#[inline(always)]
fn gelu_tanh_inner(x: f32) -> f32 {
    SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)
}

/// `op(x)` elementwise.
pub fn unary(op: UnaryOp, x: &[f32]) -> Vec<f32> {
    match op {
        UnaryOp::Neg => map(x, |x| -x),
        UnaryOp::Relu => map(x, |x| if x > 0.0 { x } else { 0.0 }),
        UnaryOp::Tanh => map(x, fast_math::tanh),
        UnaryOp::Sigmoid => map(x, fast_math::sigmoid),
        UnaryOp::Exp => map(x, fast_math::exp),
        UnaryOp::Log => map(x, f32::ln),
        UnaryOp::Sqrt => map(x, f32::sqrt),
        UnaryOp::Square => map(x, |x| x * x),
        UnaryOp::Abs => map(x, f32::abs),
        UnaryOp::Affine { scale, shift } => map(x, |x| x * scale + shift),
        UnaryOp::Softplus => map(x, |x| x.max(0.0) + fast_math::exp(-x.abs()).ln_1p()),
        UnaryOp::LeakyRelu { negative_slope } => map(x, |x| if x >= 0.0 { x } else { negative_slope * x }),
        // `exp_m1`, as JAX's elu: `exp(x) - 1` loses the small negative values.
        UnaryOp::Elu { alpha } => map(x, |x| if x > 0.0 { x } else { alpha * x.exp_m1() }),
        UnaryOp::Gelu => map(x, |x| 0.5 * x * (1.0 + fast_math::erf(x * FRAC_1_SQRT_2))),
        UnaryOp::GeluTanh => map(x, |x| 0.5 * x * (1.0 + fast_math::tanh(gelu_tanh_inner(x)))),
        UnaryOp::Silu => map(x, |x| x * fast_math::sigmoid(x)),
        // Not `f32::clamp`, which panics when min > max.
        UnaryOp::Clamp { min, max } => map(x, |x| x.max(min).min(max)),
    }
}

/// `dy * op'(x)` elementwise, where `y = op(x)`; derivatives that are cheaper from the output
/// use `y` (tanh: `1 - y^2`, sigmoid: `y (1 - y)`, exp: `y`, sqrt: `0.5 / y`).
pub fn unary_backward(op: UnaryOp, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    match op {
        UnaryOp::Neg => map3(x, y, dy, |_, _, g| -g),
        UnaryOp::Relu => map3(x, y, dy, |x, _, g| if x > 0.0 { g } else { 0.0 }),
        UnaryOp::Tanh => map3(x, y, dy, |_, y, g| g * (1.0 - y * y)),
        UnaryOp::Sigmoid => map3(x, y, dy, |_, y, g| g * y * (1.0 - y)),
        UnaryOp::Exp => map3(x, y, dy, |_, y, g| g * y),
        UnaryOp::Log => map3(x, y, dy, |x, _, g| g / x),
        UnaryOp::Sqrt => map3(x, y, dy, |_, y, g| g * 0.5 / y),
        UnaryOp::Square => map3(x, y, dy, |x, _, g| 2.0 * x * g),
        UnaryOp::Abs => map3(x, y, dy, |x, _, g| {
            if x > 0.0 {
                g
            } else if x < 0.0 {
                -g
            } else {
                0.0
            }
        }),
        UnaryOp::Affine { scale, .. } => map3(x, y, dy, |_, _, g| g * scale),
        UnaryOp::Softplus => map3(x, y, dy, |x, _, g| g * fast_math::sigmoid(x)),
        UnaryOp::LeakyRelu { negative_slope } => {
            map3(x, y, dy, |x, _, g| if x >= 0.0 { g } else { negative_slope * g })
        }
        // alpha * exp(x) = y + alpha below zero.
        UnaryOp::Elu { alpha } => map3(x, y, dy, |x, y, g| if x > 0.0 { g } else { g * (y + alpha) }),
        UnaryOp::Gelu => map3(x, y, dy, |x, _, g| {
            let cdf = 0.5 * (1.0 + fast_math::erf(x * FRAC_1_SQRT_2));
            g * (cdf + x * fast_math::exp(-0.5 * x * x) * FRAC_1_SQRT_2PI)
        }),
        UnaryOp::GeluTanh => map3(x, y, dy, |x, _, g| {
            let t = fast_math::tanh(gelu_tanh_inner(x));
            let inner_slope = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
            g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope)
        }),
        UnaryOp::Silu => map3(x, y, dy, |x, _, g| {
            let s = fast_math::sigmoid(x);
            g * s * (1.0 + x * (1.0 - s))
        }),
        UnaryOp::Clamp { min, max } => map3(x, y, dy, |x, _, g| if min < x && x < max { g } else { 0.0 }),
    }
}

/// Walks the output elements `start..start + len` of a broadcast as runs along the innermost
/// dimension, calling `body(position, run_len, a_offset, b_offset)` with the position relative
/// to `start` and the input offsets of the run's first element.
fn for_each_run(
    spec: &BroadcastSpec,
    start: usize,
    len: usize,
    mut body: impl FnMut(usize, usize, usize, usize),
) {
    let (dims, sa, sb) = (&spec.dims, &spec.a_strides, &spec.b_strides);
    let last = dims.len() - 1;
    // Multi-index of `start`: the only divisions, once per chunk.
    let mut index = vec![0usize; dims.len()];
    let (mut a_off, mut b_off) = (0, 0);
    let mut rest = start;
    for d in (0..dims.len()).rev() {
        index[d] = rest % dims[d];
        rest /= dims[d];
        a_off += index[d] * sa[d];
        b_off += index[d] * sb[d];
    }
    let inner = dims[last];
    let mut done = 0;
    while done < len {
        let run = (inner - index[last]).min(len - done);
        body(done, run, a_off, b_off);
        done += run;
        index[last] += run;
        a_off += run * sa[last];
        b_off += run * sb[last];
        if index[last] < inner {
            continue;
        }
        // Carry into the outer dimensions.
        a_off -= inner * sa[last];
        b_off -= inner * sb[last];
        index[last] = 0;
        for d in (0..last).rev() {
            index[d] += 1;
            a_off += sa[d];
            b_off += sb[d];
            if index[d] < dims[d] {
                break;
            }
            a_off -= dims[d] * sa[d];
            b_off -= dims[d] * sb[d];
            index[d] = 0;
        }
    }
}

/// One run of a binary op: `out[i] = f(a[i * sa], b[i * sb])`, with a specialised loop for
/// each common stride pair so the compiler can vectorise it.
#[inline(always)]
fn binary_run(
    out: &mut [MaybeUninit<f32>],
    a: &[f32],
    sa: usize,
    b: &[f32],
    sb: usize,
    f: impl Fn(f32, f32) -> f32,
) {
    let n = out.len();
    match (sa, sb) {
        (1, 1) => {
            for ((o, &a), &b) in out.iter_mut().zip(&a[..n]).zip(&b[..n]) {
                o.write(f(a, b));
            }
        }
        (1, 0) => {
            let b = b[0];
            for (o, &a) in out.iter_mut().zip(&a[..n]) {
                o.write(f(a, b));
            }
        }
        (0, 1) => {
            let a = a[0];
            for (o, &b) in out.iter_mut().zip(&b[..n]) {
                o.write(f(a, b));
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                o.write(f(a[i * sa], b[i * sb]));
            }
        }
    }
}

/// Applies `f` over a broadcast.
fn broadcast_map(a: &[f32], b: &[f32], spec: &BroadcastSpec, f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let spec = &normalized(spec);
    if spec.numel() == 0 {
        return Vec::new();
    }
    let natural = contiguous_strides(&spec.dims);
    if spec.a_strides == natural && spec.b_strides == natural {
        // Same shapes: one flat run per chunk, no odometer.
        // SAFETY: `binary_run` writes its whole output slice, here the whole chunk.
        return unsafe {
            build(spec.numel(), |offset, out| {
                let range = offset..offset + out.len();
                binary_run(out, &a[range.clone()], 1, &b[range], 1, &f);
            })
        };
    }
    // SAFETY: the runs of `for_each_run` tile the chunk, and each is written whole.
    unsafe {
        build(spec.numel(), |offset, out| {
            let last = spec.dims.len() - 1;
            let (sa, sb) = (spec.a_strides[last], spec.b_strides[last]);
            for_each_run(spec, offset, out.len(), |at, run, a_off, b_off| {
                binary_run(&mut out[at..at + run], &a[a_off..], sa, &b[b_off..], sb, &f);
            });
        })
    }
}

/// The spec itself, or for a rank-0 spec (no dimensions) the equivalent `[1]` one, so the
/// walkers always have an innermost dimension.
fn normalized(spec: &BroadcastSpec) -> std::borrow::Cow<'_, BroadcastSpec> {
    if spec.dims.is_empty() {
        std::borrow::Cow::Owned(BroadcastSpec { dims: vec![1], a_strides: vec![0], b_strides: vec![0] })
    } else {
        std::borrow::Cow::Borrowed(spec)
    }
}

/// Row-major strides of a contiguous tensor with `dims` (broadcast specs use 0 for size-1
/// dimensions, but merged specs have none).
fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; dims.len()];
    let mut acc = 1;
    for d in (0..dims.len()).rev() {
        strides[d] = acc;
        acc *= dims[d];
    }
    strides
}

/// `a op b` with broadcasting: the output is contiguous with `spec.dims`, and `a` / `b` are
/// read with `spec.a_strides` / `spec.b_strides`.
///
/// # Panics
/// If a stride reaches past the end of its input.
pub fn binary(op: BinaryOp, a: &[f32], b: &[f32], spec: &BroadcastSpec) -> Vec<f32> {
    match op {
        BinaryOp::Add => broadcast_map(a, b, spec, |a, b| a + b),
        BinaryOp::Sub => broadcast_map(a, b, spec, |a, b| a - b),
        BinaryOp::Mul => broadcast_map(a, b, spec, |a, b| a * b),
        BinaryOp::Div => broadcast_map(a, b, spec, |a, b| a / b),
        BinaryOp::Maximum => broadcast_map(a, b, spec, f32::max),
        BinaryOp::Minimum => broadcast_map(a, b, spec, f32::min),
        BinaryOp::Equal => broadcast_map(a, b, spec, |a, b| if a == b { 1.0 } else { 0.0 }),
        BinaryOp::GreaterEqual => broadcast_map(a, b, spec, |a, b| if a >= b { 1.0 } else { 0.0 }),
    }
}

/// Materialises `x` read with `spec.a_strides` into a contiguous tensor of `spec.dims`
/// (`spec.b_strides` is ignored).
///
/// # Panics
/// If a stride reaches past the end of `x`.
pub fn expand(x: &[f32], spec: &BroadcastSpec) -> Vec<f32> {
    let spec = &normalized(spec);
    if spec.numel() == 0 {
        return Vec::new();
    }
    let last = spec.dims.len() - 1;
    let stride = spec.a_strides[last];
    // SAFETY: the runs of `for_each_run` tile the chunk, and each is written whole.
    unsafe {
        build(spec.numel(), |offset, out| {
            for_each_run(spec, offset, out.len(), |at, run, x_off, _| {
                let out = &mut out[at..at + run];
                match stride {
                    0 => out.iter_mut().for_each(|o| {
                        o.write(x[x_off]);
                    }),
                    1 => {
                        for (o, &v) in out.iter_mut().zip(&x[x_off..x_off + run]) {
                            o.write(v);
                        }
                    }
                    _ => {
                        for (i, o) in out.iter_mut().enumerate() {
                            o.write(x[x_off + i * stride]);
                        }
                    }
                }
            });
        })
    }
}

impl ElementwiseOps for CpuBackend {
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let x = cpu_slice(x, "unary")?;
        Ok(store(self.run(|| unary(op, x))))
    }

    fn unary_backward(&self, op: UnaryOp, x: &Storage, y: &Storage, dy: &Storage) -> Result<Storage> {
        let name = "unary_backward";
        let (x, y, dy) = (cpu_slice(x, name)?, cpu_slice(y, name)?, cpu_slice(dy, name)?);
        Ok(store(self.run(|| unary_backward(op, x, y, dy))))
    }

    fn binary(&self, op: BinaryOp, a: &Storage, b: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let (a, b) = (cpu_slice(a, "binary")?, cpu_slice(b, "binary")?);
        Ok(store(self.run(|| binary(op, a, b, spec))))
    }

    fn scaled_add(&self, a: &Storage, b: &Storage, alpha: f32) -> Result<Storage> {
        let (a, b) = (cpu_slice(a, "scaled_add")?, cpu_slice(b, "scaled_add")?);
        Ok(store(self.run(|| scaled_add(a, b, alpha))))
    }

    fn expand(&self, x: &Storage, spec: &BroadcastSpec) -> Result<Storage> {
        let x = cpu_slice(x, "expand")?;
        Ok(store(self.run(|| expand(x, spec))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::broadcast;
    use tensor::Shape;

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok = (g as f64 - w).abs() <= tol * (1.0 + w.abs()) || (g.is_nan() && w.is_nan());
            assert!(ok, "element {i}: got {g}, want {w}");
        }
    }

    /// Reference broadcast read through the spec's own (division-based) offset map.
    fn reference_binary(a: &[f32], b: &[f32], spec: &BroadcastSpec, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        (0..spec.numel())
            .map(|i| {
                let (ia, ib) = spec.offsets(i);
                f(a[ia] as f64, b[ib] as f64)
            })
            .collect()
    }

    #[test]
    fn binary_broadcasts_match_reference() {
        let mut rng = StdRng::seed_from_u64(5);
        let shapes: &[(&[usize], &[usize])] = &[
            (&[3, 1, 5], &[4, 1]),
            (&[4, 1], &[3, 1, 5]),
            (&[7, 11], &[11]),
            (&[7, 11], &[7, 1]),
            (&[2, 3, 4], &[2, 3, 4]),
            (&[5, 1, 3], &[1, 6, 1]),
            (&[], &[9]),
            (&[9], &[]),
            (&[200, 301], &[301]),  // parallel, row broadcast
            (&[301, 1], &[1, 200]), // parallel, outer product
            (&[50_000], &[50_000]), // parallel, contiguous
        ];
        type Case = (BinaryOp, fn(f64, f64) -> f64);
        let ops: &[Case] = &[
            (BinaryOp::Add, |a, b| a + b),
            (BinaryOp::Sub, |a, b| a - b),
            (BinaryOp::Mul, |a, b| a * b),
            (BinaryOp::Div, |a, b| a / b),
            (BinaryOp::Maximum, f64::max),
            (BinaryOp::Minimum, f64::min),
            (BinaryOp::Equal, |a, b| (a == b) as u8 as f64),
            (BinaryOp::GreaterEqual, |a, b| (a >= b) as u8 as f64),
        ];
        for &(sa, sb) in shapes {
            let (sa, sb) = (Shape::new(sa), Shape::new(sb));
            let (out, spec) = broadcast(&sa, &sb).unwrap();
            let a = random(sa.numel(), &mut rng);
            let mut b = random(sb.numel(), &mut rng);
            // Some exact equalities for Equal / GreaterEqual.
            if sa == sb {
                b[0] = a[0];
            }
            for &(op, f) in ops {
                let got = binary(op, &a, &b, &spec);
                assert_eq!(got.len(), out.numel());
                assert_close(&got, &reference_binary(&a, &b, &spec, f), 1e-6);
            }
        }
    }

    #[test]
    fn expand_matches_reference() {
        let mut rng = StdRng::seed_from_u64(6);
        for &(from, to) in
            &[(&[3usize, 1, 5][..], &[4usize, 3, 2, 5][..]), (&[1], &[40_000]), (&[6, 1], &[6, 7000])]
        {
            let (from, to) = (Shape::new(from), Shape::new(to));
            let (_, spec) = broadcast(&from, &to).unwrap();
            let x = random(from.numel(), &mut rng);
            let want: Vec<f64> = (0..spec.numel()).map(|i| x[spec.offsets(i).0] as f64).collect();
            assert_close(&expand(&x, &spec), &want, 0.0);
        }
    }

    #[test]
    fn unary_and_gradients_match_reference() {
        let mut rng = StdRng::seed_from_u64(7);
        for len in [37, 70_001] {
            let mut x = random(len, &mut rng);
            x[0] = 0.0;
            x[1] = 1.0;
            let dy = random(len, &mut rng);
            type Case = (UnaryOp, fn(f64) -> f64, fn(f64) -> f64);
            let cases: &[Case] = &[
                (UnaryOp::Neg, |x| -x, |_| -1.0),
                (UnaryOp::Relu, |x| x.max(0.0), |x| (x > 0.0) as u8 as f64),
                (UnaryOp::Tanh, f64::tanh, |x| 1.0 - x.tanh().powi(2)),
                (
                    UnaryOp::Sigmoid,
                    |x| 1.0 / (1.0 + (-x).exp()),
                    |x| {
                        let s = 1.0 / (1.0 + (-x).exp());
                        s * (1.0 - s)
                    },
                ),
                (UnaryOp::Exp, f64::exp, f64::exp),
                (UnaryOp::Square, |x| x * x, |x| 2.0 * x),
                (UnaryOp::Abs, f64::abs, |x| if x == 0.0 { 0.0 } else { x.signum() }),
                (UnaryOp::Affine { scale: 1.5, shift: -0.25 }, |x| 1.5 * x - 0.25, |_| 1.5),
                (
                    UnaryOp::Clamp { min: -1.0, max: 1.0 },
                    |x| x.clamp(-1.0, 1.0),
                    |x| (-1.0 < x && x < 1.0) as u8 as f64,
                ),
            ];
            for &(op, f, df) in cases {
                let y = unary(op, &x);
                let want: Vec<f64> = x.iter().map(|&v| f(v as f64)).collect();
                assert_close(&y, &want, 1e-6);
                let got = unary_backward(op, &x, &y, &dy);
                let want: Vec<f64> = x.iter().zip(&dy).map(|(&v, &g)| g as f64 * df(v as f64)).collect();
                assert_close(&got, &want, 1e-5);
            }
            // Log and sqrt on positive inputs.
            let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.1).collect();
            for (op, f, df) in [
                (UnaryOp::Log, f64::ln as fn(f64) -> f64, (|x| 1.0 / x) as fn(f64) -> f64),
                (UnaryOp::Sqrt, f64::sqrt, |x| 0.5 / x.sqrt()),
            ] {
                let y = unary(op, &pos);
                assert_close(&y, &pos.iter().map(|&v| f(v as f64)).collect::<Vec<_>>(), 1e-6);
                let got = unary_backward(op, &pos, &y, &dy);
                let want: Vec<f64> = pos.iter().zip(&dy).map(|(&v, &g)| g as f64 * df(v as f64)).collect();
                assert_close(&got, &want, 1e-5);
            }
        }
    }

    /// The fused SGD step rounds exactly as the two kernels it replaces.
    #[test]
    fn scaled_add_equals_affine_then_add_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(9);
        let (a, b) = (random(70_001, &mut rng), random(70_001, &mut rng));
        let alpha = -0.013;
        let scaled = unary(UnaryOp::Affine { scale: alpha, shift: 0.0 }, &b);
        let spec = BroadcastSpec { dims: vec![a.len()], a_strides: vec![1], b_strides: vec![1] };
        let want = binary(BinaryOp::Add, &a, &scaled, &spec);
        let got = scaled_add(&a, &b, alpha);
        assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()));
        let sub = binary(BinaryOp::Sub, &a, &unary(UnaryOp::Affine { scale: -alpha, shift: 0.0 }, &b), &spec);
        assert!(got.iter().zip(&sub).all(|(g, w)| g.to_bits() == w.to_bits()), "p + (-lr) g == p - lr g");
    }

    #[test]
    fn fill_fills() {
        assert_eq!(fill(3, 2.5), vec![2.5; 3]);
        assert!(fill(0, 1.0).is_empty());
    }
}
