//! The suite's cases, one per op family (see the module's documentation).

use super::reference::{self as r, Pool};
use super::{constant_in, input, input_in, norm, Case, Checker};
use crate::{FillMode, Interpolation, Padding, PoolWindow, Tensor};

fn broadcast_arithmetic(c: &Checker<'_>) {
    let (a, b) = ([3, 1, 5], [4, 1]);
    let ins = [input(&a), input(&b)];
    let bc = |v: &[Vec<f64>], f: fn(f64, f64) -> f64| r::broadcast_binary(&v[0], &a, &v[1], &b, f);
    c.check_op("add", 1, &ins, |t| t[0].add(&t[1]), |v| bc(v, |x, y| x + y));
    c.check_op("sub", 2, &ins, |t| t[0].sub(&t[1]), |v| bc(v, |x, y| x - y));
    c.check_op("mul", 3, &ins, |t| t[0].mul(&t[1]), |v| bc(v, |x, y| x * y));
    let div_ins = [input(&a), input_in(&b, 0.5, 2.0)];
    c.check_op("div", 4, &div_ins, |t| t[0].div(&t[1]), |v| bc(v, |x, y| x / y));
}

fn bias_broadcast_over_nhwc(c: &Checker<'_>) {
    let (x, b) = ([3, 7, 9, 5], [5]);
    c.check_op(
        "add bias",
        5,
        &[input(&x), input(&b)],
        |t| t[0].add(&t[1]),
        |v| r::broadcast_binary(&v[0], &x, &v[1], &b, |p, q| p + q),
    );
}

fn maximum_and_minimum(c: &Checker<'_>) {
    let (a, b) = ([3, 4], [4]);
    let ins = [input(&a), input(&b)];
    c.check_op(
        "maximum",
        6,
        &ins,
        |t| t[0].maximum(&t[1]),
        |v| r::broadcast_binary(&v[0], &a, &v[1], &b, f64::max),
    );
    c.check_op(
        "minimum",
        7,
        &ins,
        |t| t[0].minimum(&t[1]),
        |v| r::broadcast_binary(&v[0], &a, &v[1], &b, f64::min),
    );
}

fn unary_functions(c: &Checker<'_>) {
    let s = [3, 7, 5];
    type F = fn(&Tensor) -> crate::Result<Tensor>;
    /// (name, op, f64 reference, input range low, high)
    type Case = (&'static str, F, fn(f64) -> f64, f64, f64);
    let cases: [Case; 16] = [
        ("relu", Tensor::relu, |x| x.max(0.0), -1.0, 1.0),
        ("tanh", Tensor::tanh, f64::tanh, -2.0, 2.0),
        ("sigmoid", Tensor::sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -3.0, 3.0),
        ("exp", Tensor::exp, f64::exp, -2.0, 2.0),
        ("log", Tensor::log, f64::ln, 0.2, 3.0),
        ("sqrt", Tensor::sqrt, f64::sqrt, 0.2, 3.0),
        ("square", Tensor::square, |x| x * x, -2.0, 2.0),
        ("abs", Tensor::abs, f64::abs, -1.0, 1.0),
        ("neg", Tensor::neg, |x| -x, -1.0, 1.0),
        ("clamp", |t| t.clamp(-0.5, 0.25), |x| x.clamp(-0.5, 0.25), -1.0, 1.0),
        ("softplus", Tensor::softplus, |x| x.exp().ln_1p(), -4.0, 4.0),
        ("leaky_relu", |t| t.leaky_relu(0.2), |x| if x >= 0.0 { x } else { 0.2 * x }, -1.0, 1.0),
        ("elu", |t| t.elu(0.7), |x| if x > 0.0 { x } else { 0.7 * x.exp_m1() }, -3.0, 2.0),
        ("gelu", |t| t.gelu(false), r::gelu, -4.0, 4.0),
        ("gelu_tanh", |t| t.gelu(true), r::gelu_tanh, -4.0, 4.0),
        ("silu", Tensor::silu, |x| x / (1.0 + (-x).exp()), -5.0, 5.0),
    ];
    for (i, (name, op, f, lo, hi)) in cases.into_iter().enumerate() {
        c.check_op(
            name,
            10 + i as u64,
            &[input_in(&s, lo, hi)],
            |t| op(&t[0]),
            |v| v[0].iter().map(|&x| f(x)).collect(),
        );
    }
    c.check_op(
        "affine",
        30,
        &[input(&s)],
        |t| t[0].affine(-1.5, 0.25),
        |v| v[0].iter().map(|x| x * -1.5 + 0.25).collect(),
    );
}

fn matmul_all_transpositions(c: &Checker<'_>) {
    let (m, k, n) = (5, 7, 3);
    for (i, (ta, tb)) in [(false, false), (true, false), (false, true), (true, true)].into_iter().enumerate()
    {
        let a = if ta { [k, m] } else { [m, k] };
        let b = if tb { [n, k] } else { [k, n] };
        c.check_op(
            &format!("matmul ta={ta} tb={tb}"),
            40 + i as u64,
            &[input(&a), input(&b)],
            |t| t[0].matmul_ex(&t[1], ta, tb),
            |v| r::matmul(&v[0], &v[1], m, k, n, ta, tb),
        );
    }
}

fn batched_matmul(c: &Checker<'_>) {
    c.check_op(
        "batched matmul",
        45,
        &[input(&[2, 3, 4]), input(&[2, 4, 5])],
        |t| t[0].matmul(&t[1]),
        |v| {
            let mut out = r::matmul(&v[0][..12], &v[1][..20], 3, 4, 5, false, false);
            out.extend(r::matmul(&v[0][12..], &v[1][20..], 3, 4, 5, false, false));
            out
        },
    );
}

fn linear_layer(c: &Checker<'_>) {
    c.check_op(
        "linear",
        46,
        &[input(&[5, 7]), input(&[7, 3]), input(&[3])],
        |t| t[0].linear(&t[1], &t[2]),
        |v| {
            let y = r::matmul(&v[0], &v[1], 5, 7, 3, false, false);
            r::broadcast_binary(&y, &[5, 3], &v[2], &[3], |a, b| a + b)
        },
    );
}

fn reductions(c: &Checker<'_>) {
    let d = [3, 4, 5];
    c.check_op("sum_all", 50, &[input(&d)], |t| t[0].sum_all(), |v| vec![v[0].iter().sum()]);
    c.check_op("mean_all", 51, &[input(&d)], |t| t[0].mean_all(), |v| vec![v[0].iter().sum::<f64>() / 60.0]);
    c.check_op("sum_axis 1", 52, &[input(&d)], |t| t[0].sum_axis(1, false), |v| r::sum_axis(&v[0], &d, 1));
    c.check_op(
        "sum_axis 0 keepdim",
        53,
        &[input(&d)],
        |t| t[0].sum_axis(0, true),
        |v| r::sum_axis(&v[0], &d, 0),
    );
    c.check_op(
        "mean_axis -1",
        54,
        &[input(&d)],
        |t| t[0].mean_axis(-1, false),
        |v| r::sum_axis(&v[0], &d, 2).iter().map(|s| s / 5.0).collect(),
    );
    c.check_op(
        "broadcast_to",
        55,
        &[input(&[4, 1])],
        |t| t[0].broadcast_to(&[3, 4, 5].into()),
        |v| r::broadcast_binary(&vec![0.0; 60], &d, &v[0], &[4, 1], |_, b| b),
    );
}

fn softmax_family(c: &Checker<'_>) {
    let d = [4, 7];
    c.check_op(
        "softmax",
        60,
        &[input_in(&d, -3.0, 3.0)],
        |t| t[0].softmax(),
        |v| r::softmax(&v[0], 7, false),
    );
    c.check_op(
        "log_softmax",
        61,
        &[input_in(&d, -3.0, 3.0)],
        |t| t[0].log_softmax(),
        |v| r::softmax(&v[0], 7, true),
    );
    // Soft labels, differentiable too, and a 3-d input (rows = 2 * 3).
    c.check_op(
        "softmax_cross_entropy",
        62,
        &[input_in(&[2, 3, 7], -3.0, 3.0), input_in(&[2, 3, 7], 0.0, 1.0)],
        |t| t[0].softmax_cross_entropy(&t[1]),
        |v| r::softmax_cross_entropy(&v[0], &v[1], 7),
    );
}

fn softmax_cross_entropy_is_stable_for_huge_logits(c: &Checker<'_>) {
    let dev = c.device();
    let logits = Tensor::from_vec(vec![1e4, 0.0, -1e4, 3.0, 3.0, 3.0], [2, 3], dev);
    let labels = Tensor::from_vec(vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0], [2, 3], dev);
    let loss = match (logits, labels) {
        (Ok(logits), Ok(labels)) => logits.softmax_cross_entropy(&labels).and_then(|l| l.to_vec()),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match loss {
        Ok(loss) => {
            c.expect("huge logits", loss[0] == 1e4, || {
                format!("loss {} for a logit 1e4 below the label's", loss[0])
            });
            let ln3 = 3f32.ln();
            c.expect("equal logits", (loss[1] - ln3).abs() < 1e-6, || {
                format!("loss {} instead of ln 3", loss[1])
            });
        }
        Err(e) => c.expect("huge logits", false, || e.to_string()),
    }
}

fn conv_case(
    c: &Checker<'_>,
    seed: u64,
    x: [usize; 4],
    f: [usize; 4],
    strides: (usize, usize),
    padding: Padding,
    bias: bool,
) {
    let same = padding == Padding::Same;
    let mut ins = vec![input(&x), input(&f)];
    if bias {
        ins.push(input(&[f[3]]));
    }
    c.check_op(
        &format!("conv2d x={x:?} f={f:?} strides={strides:?} {padding:?} bias={bias}"),
        seed,
        &ins,
        |t| t[0].conv2d(&t[1], t.get(2), strides, padding),
        |v| r::conv2d(&v[0], x, &v[1], f, v.get(2).map(|b| b.as_slice()), strides, same),
    );
}

fn conv2d_same_stride2_odd_shapes(c: &Checker<'_>) {
    conv_case(c, 70, [3, 7, 9, 5], [3, 2, 5, 4], (2, 2), Padding::Same, true);
}

fn conv2d_valid_stride1(c: &Checker<'_>) {
    conv_case(c, 71, [2, 8, 6, 3], [3, 3, 3, 6], (1, 1), Padding::Valid, false);
}

fn conv2d_mnist_first_layer_shape(c: &Checker<'_>) {
    // One input channel, 5x5 kernel, as in the lecture's first layer (small batch).
    conv_case(c, 72, [2, 12, 11, 1], [5, 5, 1, 4], (1, 1), Padding::Valid, true);
}

fn conv2d_same_mixed_strides(c: &Checker<'_>) {
    conv_case(c, 73, [3, 7, 9, 2], [4, 3, 2, 3], (1, 3), Padding::Same, true);
}

fn pool_case(
    c: &Checker<'_>,
    seed: u64,
    kind: Pool,
    pool: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
) {
    let x = [3, 7, 9, 5];
    let same = padding == Padding::Same;
    let (lo, hi) = if matches!(kind, Pool::L2) { (0.1, 1.0) } else { (-1.0, 1.0) };
    c.check_op(
        &format!("pool {pool:?} strides={strides:?} {padding:?}"),
        seed,
        &[input_in(&x, lo, hi)],
        |t| match kind {
            Pool::Max => t[0].max_pool2d(pool, strides, padding),
            Pool::Avg => t[0].avg_pool2d(pool, strides, padding),
            Pool::L2 => t[0].l2_pool2d(pool, strides, padding),
        },
        |v| r::pool2d(&v[0], x, kind, pool, strides, same),
    );
}

fn pooling(c: &Checker<'_>) {
    let mut seed = 80;
    for kind in [Pool::Max, Pool::Avg, Pool::L2] {
        pool_case(c, seed, kind, (2, 2), (2, 2), Padding::Same);
        pool_case(c, seed + 1, kind, (2, 2), (2, 2), Padding::Valid);
        // Overlapping windows: gradients of shared inputs must add up.
        pool_case(c, seed + 2, kind, (3, 3), (2, 1), Padding::Valid);
        pool_case(c, seed + 3, kind, (3, 2), (2, 2), Padding::Same);
        seed += 4;
    }
}

fn concat_and_narrow(c: &Checker<'_>) {
    let (a, b) = ([3, 2, 4], [3, 5, 4]);
    c.check_op(
        "concat axis 1",
        100,
        &[input(&a), input(&b)],
        |t| Tensor::concat(&[&t[0], &t[1]], 1),
        |v| r::concat(&[&v[0], &v[1]], &[a.to_vec(), b.to_vec()], 1),
    );
    let (p, q) = ([3, 2], [3, 5]);
    c.check_op(
        "concat last axis",
        101,
        &[input(&p), input(&q), input(&p)],
        |t| Tensor::concat(&[&t[0], &t[1], &t[2]], -1),
        |v| r::concat(&[&v[0], &v[1], &v[2]], &[p.to_vec(), q.to_vec(), p.to_vec()], 1),
    );
    c.check_op(
        "narrow",
        102,
        &[input(&[3, 7, 2])],
        |t| t[0].narrow(1, 2, 3),
        |v| (0..3).flat_map(|o| v[0][o * 14 + 4..o * 14 + 10].to_vec()).collect(),
    );
}

fn reshape_and_flatten(c: &Checker<'_>) {
    c.check_op(
        "flatten",
        110,
        &[input(&[3, 2, 5])],
        |t| t[0].flatten()?.mul(&t[0].flatten()?),
        |v| v[0].iter().map(|x| x * x).collect(),
    );
    c.check_op(
        "reshape",
        111,
        &[input(&[6, 5])],
        |t| t[0].reshape([2, 15])?.sum_axis(0, false),
        |v| r::sum_axis(&v[0], &[2, 15], 0),
    );
}

fn dropout_gradient_is_its_mask(c: &Checker<'_>) {
    let (rate, seed) = (0.3, 99);
    c.check_op(
        "dropout",
        120,
        &[input(&[4, 25])],
        |t| t[0].dropout(rate, seed),
        |v| {
            v[0].iter()
                .enumerate()
                .map(|(i, x)| {
                    if crate::random::uniform(seed, i as u32) >= rate {
                        x / (1.0 - rate as f64)
                    } else {
                        0.0
                    }
                })
                .collect()
        },
    );
}

fn tensor_used_twice_accumulates(c: &Checker<'_>) {
    // y = x * x + x * w - x: x feeds three ops.
    c.check_op(
        "reuse",
        130,
        &[input(&[4, 3]), input(&[3]), constant_in(&[4, 3], -1.0, 1.0)],
        |t| t[0].mul(&t[0])?.add(&t[0].mul(&t[1])?)?.sub(&t[0])?.add(&t[2]),
        |v| (0..12).map(|i| v[0][i] * v[0][i] + v[0][i] * v[1][i % 3] - v[0][i] + v[2][i]).collect(),
    );
}

fn small_cnn_end_to_end(c: &Checker<'_>) {
    // conv -> relu -> maxpool -> flatten -> linear -> tanh -> linear -> softmax-xent -> mean
    let x = [3, 8, 7, 2];
    let f = [3, 3, 2, 4];
    c.check_op(
        "cnn",
        140,
        &[
            constant_in(&x, -1.0, 1.0),
            input(&f),
            input(&[4]),
            input(&[24, 5]),
            input(&[5]),
            input(&[5, 3]),
            input(&[3]),
            constant_in(&[3, 3], 0.0, 1.0),
        ],
        |t| {
            let h = t[0].conv2d(&t[1], Some(&t[2]), (1, 1), Padding::Same)?.relu()?;
            let h = h.max_pool2d((2, 2), (2, 2), Padding::Valid)?.reshape([3, 4 * 3 * 4])?;
            // [3, 48] -> take a [3, 24] slice so the dense fits, exercising narrow too.
            let h = h.narrow(1, 10, 24)?.linear(&t[3], &t[4])?.tanh()?;
            h.linear(&t[5], &t[6])?.softmax_cross_entropy(&t[7])?.mean_all()
        },
        |v| {
            let h = r::conv2d(&v[0], x, &v[1], f, Some(&v[2]), (1, 1), true);
            let h: Vec<f64> = h.iter().map(|a| a.max(0.0)).collect();
            let h = r::pool2d(&h, [3, 8, 7, 4], Pool::Max, (2, 2), (2, 2), false);
            let h: Vec<f64> = (0..3).flat_map(|o| h[o * 48 + 10..o * 48 + 34].to_vec()).collect();
            let h = r::matmul(&h, &v[3], 3, 24, 5, false, false);
            let h: Vec<f64> = r::broadcast_binary(&h, &[3, 5], &v[4], &[5], |a, b| (a + b).tanh());
            let z = r::matmul(&h, &v[5], 3, 5, 3, false, false);
            let z = r::broadcast_binary(&z, &[3, 3], &v[6], &[3], |a, b| a + b);
            let l = r::softmax_cross_entropy(&z, &v[7], 3);
            vec![l.iter().sum::<f64>() / 3.0]
        },
    );
}

/// `conv2d_max_pool` and `conv2d_relu_max_pool` against the f64 reference convolution
/// followed by max pooling (and ReLU): shapes
/// the CPU backend fuses (one input channel, disjoint 2x2 windows; several channels; a 3x2
/// window) and ones it hands to the unfused kernels (overlapping windows, `same` padding).
fn conv2d_max_pool_matches_conv_then_pool(c: &Checker<'_>) {
    let cases = [
        // (x, filter, conv strides, conv padding, pool, pool strides, pool padding)
        ([2, 12, 12, 1], [5, 5, 1, 4], (1, 1), Padding::Valid, (2, 2), (2, 2), Padding::Valid),
        ([3, 9, 11, 1], [3, 3, 1, 17], (1, 1), Padding::Same, (3, 2), (3, 2), Padding::Valid),
        ([2, 8, 8, 3], [3, 3, 3, 5], (1, 1), Padding::Valid, (2, 2), (2, 2), Padding::Valid),
        ([2, 9, 9, 2], [2, 2, 2, 3], (1, 1), Padding::Valid, (3, 3), (2, 2), Padding::Valid),
        ([2, 7, 7, 1], [3, 3, 1, 3], (2, 2), Padding::Same, (2, 2), (2, 2), Padding::Same),
    ];
    for (i, (x, f, strides, padding, pool, pool_strides, pool_padding)) in cases.into_iter().enumerate() {
        let window = PoolWindow { size: pool, strides: pool_strides, padding: pool_padding };
        let conv_out = |len: usize, k: usize, s: usize| match padding {
            Padding::Valid => (len - k) / s + 1,
            Padding::Same => len.div_ceil(s),
        };
        let y = [x[0], conv_out(x[1], f[0], strides.0), conv_out(x[2], f[1], strides.1), f[3]];
        // A constant input (images, in a first layer) is where a fused backend skips the input
        // gradient and can rebuild the output gradient image by image.
        // With the ReLU too (`conv2d_relu_max_pool`): half the pooled values are cut to 0.
        for (bias, x_is_variable, relu) in [
            (true, true, false),
            (false, true, false),
            (true, false, false),
            (true, true, true),
            (true, false, true),
        ] {
            let x_input = if x_is_variable { input(&x) } else { constant_in(&x, -1.0, 1.0) };
            let mut ins = vec![x_input, input(&f)];
            if bias {
                ins.push(input(&[f[3]]));
            }
            c.check_op(
                &format!("conv2d_max_pool case {i} bias={bias} x variable={x_is_variable} relu={relu}"),
                90 + i as u64,
                &ins,
                |t| {
                    if relu {
                        t[0].conv2d_relu_max_pool(&t[1], t.get(2), strides, padding, window)
                    } else {
                        t[0].conv2d_max_pool(&t[1], t.get(2), strides, padding, window)
                    }
                },
                |v| {
                    let same = padding == Padding::Same;
                    let conv = r::conv2d(&v[0], x, &v[1], f, v.get(2).map(|b| b.as_slice()), strides, same);
                    let pooled =
                        r::pool2d(&conv, y, Pool::Max, pool, pool_strides, pool_padding == Padding::Same);
                    if relu {
                        pooled.into_iter().map(|v| v.max(0.0)).collect()
                    } else {
                        pooled
                    }
                },
            );
        }
    }
}

fn add_scaled(c: &Checker<'_>) {
    let s = [3, 7, 5];
    c.check_op(
        "add_scaled",
        95,
        &[input(&s), input(&s)],
        |t| t[0].add_scaled(&t[1], -0.37),
        |v| v[0].iter().zip(&v[1]).map(|(a, b)| a - 0.37 * b).collect(),
    );
    let dev = c.device();
    let refused =
        match (Tensor::from_vec(vec![1.0; 6], [2, 3], dev), Tensor::from_vec(vec![1.0; 6], [3, 2], dev)) {
            (Ok(a), Ok(b)) => a.add_scaled(&b, 1.0).is_err(),
            _ => false,
        };
    c.expect("add_scaled shapes", refused, || {
        "shapes [2, 3] and [3, 2] must be refused, not broadcast".into()
    });
}

/// Image resampling, every fill mode and interpolation: three images through a rotation about
/// the centre with a shift, a zoom out past the edges, and a projective warp with a flip.
fn affine_transform(c: &Checker<'_>) {
    let dims = [3, 7, 9, 2];
    let (s, co) = (0.3f64.sin(), 0.3f64.cos());
    let transforms: [[f64; 8]; 3] = [
        [co, -s, 4.0 - 4.0 * co + 3.0 * s + 0.37, s, co, 3.0 - 4.0 * s - 3.0 * co - 0.21, 0.0, 0.0],
        [1.7, 0.0, -3.3, 0.0, 1.45, -2.1, 0.0, 0.0],
        [-1.1, 0.13, 8.6, 0.07, 0.95, 0.31, 0.011, -0.017],
    ];
    let flat: Vec<f32> = transforms.iter().flatten().map(|&v| v as f32).collect();
    let modes = [
        ("reflect", FillMode::Reflect),
        ("wrap", FillMode::Wrap),
        ("nearest", FillMode::Nearest),
        ("constant", FillMode::Constant),
    ];
    for (seed, (bilinear, interpolation)) in
        [(false, Interpolation::Nearest), (true, Interpolation::Bilinear)].into_iter().enumerate()
    {
        for (k, &(name, mode)) in modes.iter().enumerate() {
            let label = format!("affine_transform {name} {interpolation:?}");
            c.check_op(
                &label,
                130 + (seed * 4 + k) as u64,
                &[constant_in(&dims, -1.0, 1.0)],
                |t| {
                    let transforms = Tensor::from_slice(&flat, [3, 8], t[0].device())?;
                    t[0].affine_transform(&transforms, interpolation, mode, 0.25)
                },
                |v| r::affine_transform(&v[0], dims, &transforms, bilinear, name, 0.25),
            );
        }
    }
}

/// Axis permutations forward and backward: NCHW to NHWC and back, and an arbitrary one.
fn permutations(c: &Checker<'_>) {
    let dims = [2, 3, 4, 5];
    for (k, axes) in [[0, 2, 3, 1], [0, 3, 1, 2], [3, 1, 0, 2]].into_iter().enumerate() {
        c.check_op(
            &format!("permute {axes:?}"),
            150 + k as u64,
            &[input(&dims)],
            |t| t[0].permute(&axes),
            |v| r::permute(&v[0], &dims, &axes),
        );
    }
}

/// Every case, in order.
pub(super) const ALL: &[Case] = &[
    Case { name: "broadcast_arithmetic", run: broadcast_arithmetic },
    Case { name: "bias_broadcast_over_nhwc", run: bias_broadcast_over_nhwc },
    Case { name: "maximum_and_minimum", run: maximum_and_minimum },
    Case { name: "unary_functions", run: unary_functions },
    Case { name: "matmul_all_transpositions", run: matmul_all_transpositions },
    Case { name: "batched_matmul", run: batched_matmul },
    Case { name: "linear_layer", run: linear_layer },
    Case { name: "reductions", run: reductions },
    Case { name: "softmax_family", run: softmax_family },
    Case {
        name: "softmax_cross_entropy_is_stable_for_huge_logits",
        run: softmax_cross_entropy_is_stable_for_huge_logits,
    },
    Case { name: "conv2d_same_stride2_odd_shapes", run: conv2d_same_stride2_odd_shapes },
    Case { name: "conv2d_valid_stride1", run: conv2d_valid_stride1 },
    Case { name: "conv2d_mnist_first_layer_shape", run: conv2d_mnist_first_layer_shape },
    Case { name: "conv2d_same_mixed_strides", run: conv2d_same_mixed_strides },
    Case { name: "pooling", run: pooling },
    Case { name: "concat_and_narrow", run: concat_and_narrow },
    Case { name: "reshape_and_flatten", run: reshape_and_flatten },
    Case { name: "dropout_gradient_is_its_mask", run: dropout_gradient_is_its_mask },
    Case { name: "tensor_used_twice_accumulates", run: tensor_used_twice_accumulates },
    Case { name: "small_cnn_end_to_end", run: small_cnn_end_to_end },
    Case { name: "conv2d_max_pool_matches_conv_then_pool", run: conv2d_max_pool_matches_conv_then_pool },
    Case { name: "add_scaled", run: add_scaled },
    Case { name: "affine_transform", run: affine_transform },
    Case { name: "permutations", run: permutations },
    Case { name: "channel_statistics", run: norm::channel_statistics },
    Case { name: "batch_normalization", run: norm::batch_normalization },
];
