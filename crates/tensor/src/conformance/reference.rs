//! Plain, obviously-correct f64 implementations, written independently of the kernels.

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// NumPy broadcasting of a binary function.
pub fn broadcast_binary(
    a: &[f64],
    a_dims: &[usize],
    b: &[f64],
    b_dims: &[usize],
    f: impl Fn(f64, f64) -> f64,
) -> Vec<f64> {
    let rank = a_dims.len().max(b_dims.len());
    let pad = |d: &[usize]| [vec![1; rank - d.len()], d.to_vec()].concat();
    let (ad, bd) = (pad(a_dims), pad(b_dims));
    let out: Vec<usize> = (0..rank).map(|i| ad[i].max(bd[i])).collect();
    let (sa, sb, so) = (strides(&ad), strides(&bd), strides(&out));
    let n: usize = out.iter().product();
    (0..n)
        .map(|lin| {
            let (mut ia, mut ib) = (0, 0);
            for d in 0..rank {
                let i = lin / so[d] % out[d];
                ia += if ad[d] == 1 { 0 } else { i * sa[d] };
                ib += if bd[d] == 1 { 0 } else { i * sb[d] };
            }
            f(a[ia], b[ib])
        })
        .collect()
}

/// `[m, k] x [k, n]`, with optional transposed storage.
pub fn matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                s += av * bv;
            }
            c[i * n + j] = s;
        }
    }
    c
}

/// Geometry of one padded axis, as TensorFlow defines it: (output length, leading pad).
pub fn axis_geometry(input: usize, window: usize, stride: usize, same: bool) -> (usize, usize) {
    if same {
        let out = input.div_ceil(stride);
        let total = ((out - 1) * stride + window).saturating_sub(input);
        (out, total / 2)
    } else {
        ((input - window) / stride + 1, 0)
    }
}

/// NHWC x HWIO convolution with zero padding.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    f: &[f64],
    [kh, kw, _, o]: [usize; 4],
    bias: Option<&[f64]>,
    (sh, sw): (usize, usize),
    same: bool,
) -> Vec<f64> {
    let (oh, pt) = axis_geometry(h, kh, sh, same);
    let (ow, pl) = axis_geometry(w, kw, sw, same);
    let mut y = vec![0.0; n * oh * ow * o];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..o {
                    let mut s = bias.map_or(0.0, |bb| bb[oc]);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky) as isize - pt as isize;
                            let ix = (ox * sw + kx) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for ic in 0..c {
                                let xv = x[((b * h + iy as usize) * w + ix as usize) * c + ic];
                                s += xv * f[((ky * kw + kx) * c + ic) * o + oc];
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * o + oc] = s;
                }
            }
        }
    }
    y
}

/// The pooling of [`pool2d`].
#[derive(Clone, Copy)]
pub enum Pool {
    /// Largest value of the window.
    Max,
    /// Mean of the window (padding not counted).
    Avg,
    /// `sqrt(sum(x^2))` over the window.
    L2,
}

/// NHWC pooling; padding never enters a window.
pub fn pool2d(
    x: &[f64],
    [n, h, w, c]: [usize; 4],
    kind: Pool,
    (ph, pw): (usize, usize),
    (sh, sw): (usize, usize),
    same: bool,
) -> Vec<f64> {
    let (oh, pt) = axis_geometry(h, ph, sh, same);
    let (ow, pl) = axis_geometry(w, pw, sw, same);
    let mut y = Vec::with_capacity(n * oh * ow * c);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut vals = Vec::new();
                    for ky in 0..ph {
                        for kx in 0..pw {
                            let iy = (oy * sh + ky) as isize - pt as isize;
                            let ix = (ox * sw + kx) as isize - pl as isize;
                            if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                                vals.push(x[((b * h + iy as usize) * w + ix as usize) * c + ch]);
                            }
                        }
                    }
                    y.push(match kind {
                        Pool::Max => vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                        Pool::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                        Pool::L2 => vals.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    });
                }
            }
        }
    }
    y
}

/// Softmax (or log-softmax) over rows of `[rows, cols]`.
pub fn softmax(x: &[f64], cols: usize, log: bool) -> Vec<f64> {
    x.chunks(cols)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            row.iter().map(move |v| if log { v - lse } else { (v - lse).exp() }).collect::<Vec<_>>()
        })
        .collect()
}

/// `-sum(labels * log_softmax(logits))` per row.
pub fn softmax_cross_entropy(logits: &[f64], labels: &[f64], cols: usize) -> Vec<f64> {
    let ls = softmax(logits, cols, true);
    ls.chunks(cols)
        .zip(labels.chunks(cols))
        .map(|(l, t)| -l.iter().zip(t).map(|(a, b)| a * b).sum::<f64>())
        .collect()
}

/// Sum over axis `axis` of `dims`.
pub fn sum_axis(x: &[f64], dims: &[usize], axis: usize) -> Vec<f64> {
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let len = dims[axis];
    let mut y = vec![0.0; outer * inner];
    for o in 0..outer {
        for a in 0..len {
            for i in 0..inner {
                y[o * inner + i] += x[(o * len + a) * inner + i];
            }
        }
    }
    y
}

/// Concatenation along `axis` of parts with dims `dims[i]`.
pub fn concat(parts: &[&[f64]], dims: &[Vec<usize>], axis: usize) -> Vec<f64> {
    let outer: usize = dims[0][..axis].iter().product();
    let mut y = Vec::new();
    for o in 0..outer {
        for (p, d) in parts.iter().zip(dims) {
            let row: usize = d[axis..].iter().product();
            y.extend_from_slice(&p[o * row..(o + 1) * row]);
        }
    }
    y
}

/// The error function, to about 1e-15: its Taylor series below 3, the continued fraction of
/// `erfc` above.
pub fn erf(x: f64) -> f64 {
    let a = x.abs();
    let value = if a < 3.0 {
        let (x2, mut term, mut sum) = (a * a, a, a);
        for n in 1..200 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + (2/2) / (a + (3/2) / ...)))
        let mut fraction = a;
        for k in (1..80).rev() {
            fraction = a + (k as f64 / 2.0) / fraction;
        }
        1.0 - (-a * a).exp() * std::f64::consts::FRAC_2_SQRT_PI / 2.0 / fraction
    };
    value.copysign(x)
}

/// Keras' exact `gelu`: `x * Phi(x)`.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

/// Keras' `gelu(approximate=True)`.
pub fn gelu_tanh(x: f64) -> f64 {
    let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
    0.5 * x * (1.0 + inner.tanh())
}

/// Resampling of NHWC images through one transform `[a0, a1, a2, b0, b1, b2, c0, c1]` per image
/// (`Tensor::affine_transform`): output `(y, x)` reads column `(a0 x + a1 y + a2) / k` and row
/// `(b0 x + b1 y + b2) / k`, `k = c0 x + c1 y + 1`; `bilinear` weighs the four surrounding
/// pixels, otherwise the nearest is read (half away from zero). Each tap outside the image
/// is read as `mode` says: "reflect" (`dcba|abcd|dcba`), "wrap", "nearest" (the edge), or
/// "constant" (`fill`).
pub fn affine_transform(
    x: &[f64],
    dims: [usize; 4],
    transforms: &[[f64; 8]],
    bilinear: bool,
    mode: &str,
    fill: f64,
) -> Vec<f64> {
    let [batch, h, w, c] = dims;
    let read_index = |i: i64, n: usize| -> Option<usize> {
        let n = n as i64;
        let i = match mode {
            "constant" if !(0..n).contains(&i) => return None,
            "nearest" => i.clamp(0, n - 1),
            "wrap" => i.rem_euclid(n),
            "reflect" => {
                // Unfold: the period is 2n, its second half mirrored.
                let j = i.rem_euclid(2 * n);
                if j < n {
                    j
                } else {
                    2 * n - 1 - j
                }
            }
            _ => i,
        };
        Some(i as usize)
    };
    let mut out = vec![0.0; x.len()];
    for b in 0..batch {
        let t = &transforms[b];
        for y in 0..h {
            for xo in 0..w {
                let (fx, fy) = (xo as f64, y as f64);
                let k = t[6] * fx + t[7] * fy + 1.0;
                let col = (t[0] * fx + t[1] * fy + t[2]) / k;
                let row = (t[3] * fx + t[4] * fy + t[5]) / k;
                let taps = |at: f64| -> Vec<(i64, f64)> {
                    if bilinear {
                        let lo = at.floor();
                        vec![(lo as i64, 1.0 - (at - lo)), (lo as i64 + 1, at - lo)]
                    } else {
                        vec![(at.round() as i64, 1.0)]
                    }
                };
                for ch in 0..c {
                    let mut sum = 0.0;
                    for (r, wr) in taps(row) {
                        for (q, wq) in taps(col) {
                            let v = match (read_index(r, h), read_index(q, w)) {
                                (Some(r), Some(q)) => x[((b * h + r) * w + q) * c + ch],
                                _ => fill,
                            };
                            sum += wr * wq * v;
                        }
                    }
                    out[((b * h + y) * w + xo) * c + ch] = sum;
                }
            }
        }
    }
    out
}

/// `dims` viewed around `axis` as `(outer, channels, inner)`.
fn channel_view(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    (dims[..axis].iter().product(), dims[axis], dims[axis + 1..].iter().product())
}

/// The values of channel `c` (index `c` along `axis`) of `x`, in memory order.
fn channel_values<'a>(x: &'a [f64], dims: &[usize], axis: usize, c: usize) -> impl Iterator<Item = f64> + 'a {
    let (outer, channels, inner) = channel_view(dims, axis);
    (0..outer).flat_map(move |o| (0..inner).map(move |i| x[(o * channels + c) * inner + i]))
}

/// Each channel's mean and biased variance over every axis but `axis`, as `[2, channels]`
/// (the means, then the variances), in two passes: the mean, then the squared deviations.
pub fn channel_moments(x: &[f64], dims: &[usize], axis: usize) -> Vec<f64> {
    let channels = dims[axis];
    let mut out = vec![0.0; 2 * channels];
    for c in 0..channels {
        let n = channel_values(x, dims, axis, c).count() as f64;
        let mean = channel_values(x, dims, axis, c).sum::<f64>() / n;
        out[c] = mean;
        out[channels + c] =
            channel_values(x, dims, axis, c).map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    }
    out
}

/// `x * scale[c] + shift[c]` with `c` the index along `axis`.
pub fn channel_affine(x: &[f64], dims: &[usize], axis: usize, scale: &[f64], shift: &[f64]) -> Vec<f64> {
    let (_, channels, inner) = channel_view(dims, axis);
    x.iter().enumerate().map(|(j, v)| v * scale[j / inner % channels] + shift[j / inner % channels]).collect()
}

/// Per channel (index along `axis`), `sum(a * b)` and `sum(a)`, as `[2, channels]`.
pub fn channel_sums(a: &[f64], b: &[f64], dims: &[usize], axis: usize) -> Vec<f64> {
    let channels = dims[axis];
    let mut out = vec![0.0; 2 * channels];
    for c in 0..channels {
        let products = channel_values(a, dims, axis, c).zip(channel_values(b, dims, axis, c));
        out[c] = products.map(|(p, q)| p * q).sum();
        out[channels + c] = channel_values(a, dims, axis, c).sum();
    }
    out
}

/// Batch normalization over `axis` with the batch's own statistics (biased variance), then
/// `max(0, .)` when `relu`: `(x - mean) / sqrt(variance + epsilon) * gamma + beta`.
pub fn batch_norm(
    x: &[f64],
    dims: &[usize],
    axis: usize,
    gamma: &[f64],
    beta: &[f64],
    epsilon: f64,
    relu: bool,
) -> Vec<f64> {
    let moments = channel_moments(x, dims, axis);
    let (_, channels, inner) = channel_view(dims, axis);
    x.iter()
        .enumerate()
        .map(|(j, v)| {
            let c = j / inner % channels;
            let y = (v - moments[c]) / (moments[channels + c] + epsilon).sqrt() * gamma[c] + beta[c];
            if relu {
                y.max(0.0)
            } else {
                y
            }
        })
        .collect()
}

/// Per channel, `sum(g * (x - center[c]))` and `sum(g)` with `g = dy` where the ReLU's input
/// (see `relu_gate`) is positive (0 elsewhere), as `[2, channels]`.
pub fn gated_channel_sums(
    dy: &[f64],
    gate: &[f64],
    x: &[f64],
    center: &[f64],
    dims: &[usize],
    axis: usize,
) -> Vec<f64> {
    let (_, channels, inner) = channel_view(dims, axis);
    let g: Vec<f64> = (0..dy.len())
        .map(|j| if relu_gate(gate, x[j], j / inner % channels) { dy[j] } else { 0.0 })
        .collect();
    let centered: Vec<f64> = x.iter().enumerate().map(|(j, v)| v - center[j / inner % channels]).collect();
    channel_sums(&g, &centered, dims, axis)
}

/// Whether a fused ReLU let element `x` of channel `c` through: `x * gate[c] + gate[channels +
/// c] > 0` (`gate`: `[2, channels]`, the forward map's scales and shifts), in f32 as the
/// forward kernel computes it, so that the mask is the kernels' exactly.
fn relu_gate(gate: &[f64], x: f64, c: usize) -> bool {
    let channels = gate.len() / 2;
    x as f32 * gate[c] as f32 + gate[channels + c] as f32 > 0.0
}

/// `g * k0[c] + x * k1[c] + k2[c]` with `g = dy` where the ReLU's input (see `relu_gate`) is
/// positive (0 elsewhere).
pub fn gated_channel_affine_pair(
    dy: &[f64],
    gate: &[f64],
    x: &[f64],
    k: [&[f64]; 3],
    dims: &[usize],
    axis: usize,
) -> Vec<f64> {
    let (_, channels, inner) = channel_view(dims, axis);
    (0..x.len())
        .map(|j| {
            let c = j / inner % channels;
            let g = if relu_gate(gate, x[j], c) { dy[j] } else { 0.0 };
            g * k[0][c] + x[j] * k[1][c] + k[2][c]
        })
        .collect()
}

/// `x` of `dims` with its axes permuted (output axis `i` is input axis `axes[i]`).
pub fn permute(x: &[f64], dims: &[usize], axes: &[usize]) -> Vec<f64> {
    let in_strides = strides(dims);
    let out_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
    let mut out = Vec::with_capacity(x.len());
    let mut index = vec![0usize; dims.len()];
    for _ in 0..x.len() {
        out.push(x[index.iter().zip(axes).map(|(&i, &a)| i * in_strides[a]).sum::<usize>()]);
        // Advance the output index, last axis fastest.
        for k in (0..index.len()).rev() {
            index[k] += 1;
            if index[k] < out_dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}
