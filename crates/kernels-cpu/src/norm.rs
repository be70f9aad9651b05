//! Per-channel statistics and affine maps for normalization layers (`tensor::NormOps`), over
//! tensors viewed as `[outer, channels, inner]`. Channels-last images (`inner == 1`) take rows
//! of `channels` values, which the per-channel loops vectorise over; other layouts take runs
//! of `inner` values per (outer, channel).
//!
//! Statistics are accumulated in f32 within blocks small enough to stay in cache and exact
//! enough at their size, then combined across blocks in f64 (Chan et al.'s pairwise rule for
//! the variance), so neither a long channel nor data far from zero loses precision.

use crate::buffers::build_chunks;
use crate::norm_blocks::{affine, block_rows, fold_block_sums, relu};
use crate::norm_pool::{self, Pooled};
use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tensor::backend::pool_channels;
use tensor::shape::{ChannelSpec, Pool2dSpec};
use tensor::{ChannelCoefficients, ChannelGrad, NormOps, Result, Storage, TensorError};

/// One block's per-channel count, mean and sum of squared deviations.
#[derive(Clone)]
struct Moments {
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Moments {
    /// A block of `count` rows' moments, computed in f32.
    fn of_block(count: usize, mean: &[f32], m2: &[f32]) -> Self {
        let widen = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect();
        Moments { count: count as f64, mean: widen(mean), m2: widen(m2) }
    }

    fn empty(channels: usize) -> Self {
        Moments { count: 0.0, mean: vec![0.0; channels], m2: vec![0.0; channels] }
    }

    /// Chan et al.'s combination of two blocks' moments.
    fn merge(mut self, other: Moments) -> Moments {
        if other.count == 0.0 {
            return self;
        }
        if self.count == 0.0 {
            return other;
        }
        let n = self.count + other.count;
        for k in 0..self.mean.len() {
            let delta = other.mean[k] - self.mean[k];
            self.mean[k] += delta * other.count / n;
            self.m2[k] += other.m2[k] + delta * delta * self.count * other.count / n;
        }
        self.count = n;
        self
    }
}

/// The moments of `rows` (each `channels` long) of a channels-last block, two passes in f32.
#[inline(always)]
fn block_moments(rows: &[f32], channels: usize) -> Moments {
    let count = rows.len() / channels;
    let mut sum = vec![0.0f32; channels];
    for row in rows.chunks_exact(channels) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v;
        }
    }
    let mean: Vec<f32> = sum.iter().map(|&s| s / count as f32).collect();
    let mut m2 = vec![0.0f32; channels];
    for row in rows.chunks_exact(channels) {
        for ((m, &v), &mu) in m2.iter_mut().zip(row).zip(&mean) {
            let d = v - mu;
            *m += d * d;
        }
    }
    Moments::of_block(count, &mean, &m2)
}

// The same block compiled for AVX2 (see `map_rows_avx2`); lanes are channels, so each sum adds
// in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_moments_avx2(rows: &[f32], channels: usize) -> Moments {
    block_moments(rows, channels)
}

/// The moments of one run of values (one channel), two passes in f32.
fn run_moments(run: &[f32]) -> (f64, f64, f64) {
    let n = run.len() as f32;
    let mean = run.iter().sum::<f32>() / n;
    let m2: f32 = run.iter().map(|&v| (v - mean) * (v - mean)).sum();
    (run.len() as f64, mean as f64, m2 as f64)
}

/// Each channel's mean and biased variance, `[2, channels]`.
pub fn channel_moments(x: &[f32], spec: &ChannelSpec) -> Vec<f32> {
    let &ChannelSpec { channels, inner, .. } = spec;
    let total = if inner == 1 {
        // Blocks merged in order: rayon's `reduce` groups them as its threads split the work,
        // which differs from run to run, and so would the rounding (resume must be exact).
        let blocks: Vec<Moments> = x
            .par_chunks(block_rows(channels) * channels)
            .map(|rows| {
                #[cfg(target_arch = "x86_64")]
                if let Some((mean, m2)) = crate::norm_registers::block_moments(rows, channels) {
                    return Moments::of_block(rows.len() / channels, &mean, &m2);
                }
                #[cfg(target_arch = "x86_64")]
                if crate::isa::features().avx2 {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { block_moments_avx2(rows, channels) };
                }
                block_moments(rows, channels)
            })
            .collect();
        blocks.into_iter().fold(Moments::empty(channels), Moments::merge)
    } else {
        let per_channel: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
                for run in x.chunks_exact(inner).skip(c).step_by(channels) {
                    let (nb, mb, m2b) = run_moments(run);
                    let total = n + nb;
                    let delta = mb - mean;
                    mean += delta * nb / total;
                    m2 += m2b + delta * delta * n * nb / total;
                    n = total;
                }
                (mean, m2 / n)
            })
            .collect();
        let count = spec.per_channel() as f64;
        Moments {
            count,
            mean: per_channel.iter().map(|p| p.0).collect(),
            m2: per_channel.iter().map(|p| p.1 * count).collect(),
        }
    };
    let mut out: Vec<f32> = total.mean.iter().map(|&m| m as f32).collect();
    out.extend(total.m2.iter().map(|&m2| (m2 / total.count) as f32));
    out
}

/// `dy`, or 0 where the fused ReLU's input `affine(x, scale, shift)` was not positive.
#[inline(always)]
fn gated<const GATED: bool>(dy: f32, x: f32, scale: f32, shift: f32) -> f32 {
    if !GATED || affine(x, scale, shift) > 0.0 {
        dy
    } else {
        0.0
    }
}

/// A new tensor whose element `j` of channel `c` is `f(inputs at j, coefficients at c)`:
/// `inputs` are tensors of `spec`'s shape, `coefficients` `[channels]`. Pieces of whole rows
/// (channels last) or whole runs go to rayon's threads; the memory comes from the buffer pool.
fn map_channels<const N: usize, const M: usize>(
    spec: &ChannelSpec,
    inputs: [&[f32]; N],
    coefficients: [&[f32]; M],
    f: impl Fn([f32; N], [f32; M]) -> f32 + Sync + Send,
) -> Vec<f32> {
    let &ChannelSpec { channels, inner, .. } = spec;
    // Built without zeroing: a fresh zeroed vector costs page faults and a pass of its own (a
    // BatchNormalization's activations are megabytes).
    if inner == 1 {
        let rows = block_rows(channels) * channels;
        let fill = |block: usize, out: &mut [MaybeUninit<f32>]| {
            let inputs = inputs.map(|x| &x[block * rows..][..out.len()]);
            let coefficients = coefficients.map(|k| &k[..channels]);
            map_rows_any(channels, inputs, coefficients, out, &f)
        };
        // SAFETY: a piece is whole rows of `channels` (the length is a multiple of it), and
        // `fill` writes every channel of every row.
        unsafe { build_chunks(spec.len(), rows, true, fill) }
    } else {
        let fill = |run: usize, out: &mut [MaybeUninit<f32>]| {
            let c = run % channels;
            let k = coefficients.map(|k| k[c]);
            let inputs = inputs.map(|x| &x[run * inner..][..out.len()]);
            for (i, o) in out.iter_mut().enumerate() {
                o.write(f(inputs.map(|x| x[i]), k));
            }
        };
        // SAFETY: each piece is one run of `inner`, every element written.
        unsafe { build_chunks(spec.len(), inner, true, fill) }
    }
}

/// [`map_rows`], compiled for AVX2 where the CPU has it.
#[inline(always)]
fn map_rows_any<const N: usize, const M: usize>(
    channels: usize,
    inputs: [&[f32]; N],
    coefficients: [&[f32]; M],
    out: &mut [MaybeUninit<f32>],
    f: &impl Fn([f32; N], [f32; M]) -> f32,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::features().avx2 {
        // SAFETY: the CPU has AVX2.
        return unsafe { map_rows_avx2(channels, inputs, coefficients, out, f) };
    }
    map_rows(channels, inputs, coefficients, out, f)
}

/// [`map_channels`]' channels-last loop over one block of rows: `out[j] = f(inputs at j,
/// coefficients at j's channel)`, rows of `channels`.
#[inline(always)]
fn map_rows<const N: usize, const M: usize>(
    channels: usize,
    inputs: [&[f32]; N],
    coefficients: [&[f32]; M],
    out: &mut [MaybeUninit<f32>],
    f: &impl Fn([f32; N], [f32; M]) -> f32,
) {
    for (r, out) in out.chunks_exact_mut(channels).enumerate() {
        let inputs = inputs.map(|x| &x[r * channels..(r + 1) * channels]);
        for (c, o) in out.iter_mut().enumerate() {
            o.write(f(inputs.map(|x| x[c]), coefficients.map(|k| k[c])));
        }
    }
}

// The loops compiled for AVX2 as well (8 lanes where the baseline has SSE2's 4), as pool_2x2's:
// unrolled four times, 32 lanes, a row of model6's 32, 64 or 128 channels takes whole
// iterations (AVX-512's 64 would leave a row of 32 to the scalar remainder: measured slower).
// Without FMA contraction in Rust each element is the same expression, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn map_rows_avx2<const N: usize, const M: usize>(
    channels: usize,
    inputs: [&[f32]; N],
    coefficients: [&[f32]; M],
    out: &mut [MaybeUninit<f32>],
    f: &impl Fn([f32; N], [f32; M]) -> f32,
) {
    map_rows(channels, inputs, coefficients, out, f)
}

/// `x * scale[c] + shift[c]`, then ReLU when `relu`.
pub fn channel_affine(x: &[f32], scale: &[f32], shift: &[f32], relu: bool, spec: &ChannelSpec) -> Vec<f32> {
    let affine = |[x]: [f32; 1], [a, b]: [f32; 2]| affine(x, a, b);
    if relu {
        map_channels(spec, [x], [scale, shift], |x, k| self::relu(affine(x, k)))
    } else {
        map_channels(spec, [x], [scale, shift], affine)
    }
}

/// The gradient a normalization's backward pass reads: `dy` and, when a ReLU was fused, the
/// forward map's scales and shifts (`[2, channels]`, `tensor::ChannelGrad`'s gate), and when
/// a max pooling was fused after it too, the pooling.
#[derive(Clone, Copy)]
pub struct Grad<'a> {
    /// The output's gradient (the pooled output's, when `pooled`).
    pub dy: &'a [f32],
    /// The fused ReLU's gate: `dy` counts where `x * gate[c] + gate[channels + c] > 0`.
    pub relu_gate: Option<&'a [f32]>,
    /// The fused 2x2 max pooling (`tiles_2x2`) and its winners, as
    /// `tensor::ChannelGrad::pooled`.
    pub pooled: Option<(&'a Pool2dSpec, &'a [f32])>,
}

impl<'a> Grad<'a> {
    /// The pooled gradient, when a pooling was fused.
    fn pooled(&self) -> Option<Pooled<'a>> {
        let (pool, winners) = self.pooled?;
        Some(Pooled { dy: self.dy, winners, pool })
    }
}

/// `g * g_scale[c] + x * x_scale[c] + shift[c]` (`coefficients`: the three), with `g` the
/// gradient gated by the fused ReLU, if any.
pub fn channel_affine_pair(
    grad: Grad<'_>,
    x: &[f32],
    coefficients: [&[f32]; 3],
    spec: &ChannelSpec,
) -> Vec<f32> {
    if let Some(pooled) = grad.pooled() {
        return norm_pool::pooled_affine_pair(pooled, x, coefficients, spec);
    }
    let pair = |g: f32, x: f32, [a, b, c]: [f32; 3]| g * a + x * b + c;
    match grad.relu_gate {
        Some(gate) => {
            let (scale, shift) = gate.split_at(spec.channels);
            let [a, b, c] = coefficients;
            map_channels(spec, [grad.dy, x], [a, b, c, scale, shift], |[dy, x], [a, b, c, s, t]| {
                pair(gated::<true>(dy, x, s, t), x, [a, b, c])
            })
        }
        None => map_channels(spec, [grad.dy, x], coefficients, |[dy, x], k| pair(dy, x, k)),
    }
}

/// One channels-last block's `sum(g * (b - center[c]))` and `sum(g)` (f32, one accumulator
/// per channel, rows in order) as `[2, channels]` in f64; `[center, scale, shift]` one row
/// long.
#[inline(always)]
fn block_sums<const GATED: bool>(a: &[f32], b: &[f32], [center, scale, shift]: [&[f32]; 3]) -> Vec<f64> {
    let channels = center.len();
    let (mut ab, mut sa) = (vec![0.0f32; channels], vec![0.0f32; channels]);
    for (a, b) in a.chunks_exact(channels).zip(b.chunks_exact(channels)) {
        for k in 0..channels {
            let g = gated::<GATED>(a[k], b[k], scale[k], shift[k]);
            ab[k] += g * (b[k] - center[k]);
            sa[k] += g;
        }
    }
    ab.iter().chain(&sa).map(|&v| v as f64).collect()
}

// The same block compiled for AVX2 (see `map_rows_avx2`); lanes are channels, so each sum adds
// in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_sums_avx2<const GATED: bool>(a: &[f32], b: &[f32], per_channel: [&[f32]; 3]) -> Vec<f64> {
    block_sums::<GATED>(a, b, per_channel)
}

/// [`block_sums`], compiled for AVX2 where the CPU has it.
fn block_sums_any<const GATED: bool>(a: &[f32], b: &[f32], per_channel: [&[f32]; 3]) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if let Some(sums) = crate::norm_registers::block_sums::<GATED>(a, b, per_channel) {
        return sums.iter().map(|&v| f64::from(v)).collect();
    }
    #[cfg(target_arch = "x86_64")]
    if crate::isa::features().avx2 {
        // SAFETY: the CPU has AVX2.
        return unsafe { block_sums_avx2::<GATED>(a, b, per_channel) };
    }
    block_sums::<GATED>(a, b, per_channel)
}

/// Per channel `sum(g * (x - center[c]))` and `sum(g)`, `[2, channels]`, in blocks of f32
/// combined in f64.
fn sums<const GATED: bool>(grad: Grad<'_>, b: &[f32], center: &[f32], spec: &ChannelSpec) -> Vec<f32> {
    let &ChannelSpec { channels, inner, .. } = spec;
    let a = grad.dy;
    // Without a gate, `center` stands in for scale and shift: unread unless GATED.
    let (scale, shift) = grad.relu_gate.map_or((center, center), |gate| gate.split_at(channels));
    if inner == 1 {
        let rows = block_rows(channels) * channels;
        let blocks = (a.par_chunks(rows).zip(b.par_chunks(rows)))
            .map(|(a, b)| {
                block_sums_any::<GATED>(a, b, [&center[..channels], &scale[..channels], &shift[..channels]])
            })
            .collect();
        fold_block_sums(blocks, channels)
    } else {
        let per_channel: Vec<(f64, f64)> = (0..channels)
            .into_par_iter()
            .map(|c| {
                let runs = a.chunks_exact(inner).zip(b.chunks_exact(inner));
                runs.skip(c).step_by(channels).fold((0.0, 0.0), |(ab, sa), (a, b)| {
                    let g = |i: usize| gated::<GATED>(a[i], b[i], scale[c], shift[c]);
                    let run_ab: f32 = (0..a.len()).map(|i| g(i) * (b[i] - center[c])).sum();
                    let run_a: f32 = (0..a.len()).map(g).sum();
                    (ab + run_ab as f64, sa + run_a as f64)
                })
            })
            .collect();
        let sums = per_channel.iter().map(|p| p.0).chain(per_channel.iter().map(|p| p.1));
        sums.map(|v| v as f32).collect()
    }
}

/// Per channel `sum(g * (x - center[c]))` and `sum(g)`, `[2, channels]`; `center` 0 when
/// `None`, `g` the gradient gated by the fused ReLU, if any.
pub fn channel_sums(grad: Grad<'_>, x: &[f32], center: Option<&[f32]>, spec: &ChannelSpec) -> Vec<f32> {
    let zeros;
    let center = match center {
        Some(center) => center,
        None => {
            zeros = vec![0.0; spec.channels];
            &zeros
        }
    };
    if let Some(pooled) = grad.pooled() {
        return norm_pool::pooled_sums(pooled, x, center, spec);
    }
    match grad.relu_gate {
        Some(_) => sums::<true>(grad, x, center, spec),
        None => sums::<false>(grad, x, center, spec),
    }
}

/// The host slices of a [`ChannelGrad`], its gate checked to be `[2, channels]`.
fn host_grad<'a>(grad: ChannelGrad<'a>, spec: &ChannelSpec, op: &str) -> Result<Grad<'a>> {
    grad.check_gate(spec, op)?;
    let relu_gate = grad.relu_gate.map(|r| cpu_slice(r, op)).transpose()?;
    let pooled =
        grad.pooled.map(|p| Ok::<_, TensorError>((p.pool, cpu_slice(p.winners, op)?))).transpose()?;
    Ok(Grad { dy: cpu_slice(grad.dy, op)?, relu_gate, pooled })
}

impl NormOps for CpuBackend {
    fn channel_moments(&self, x: &Storage, spec: &ChannelSpec) -> Result<Storage> {
        let x = cpu_slice(x, "channel_moments")?;
        Ok(store(self.run(|| channel_moments(x, spec))))
    }

    fn channel_affine(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        relu: bool,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let op = "channel_affine";
        let (x, scale, shift) = (cpu_slice(x, op)?, cpu_slice(scale, op)?, cpu_slice(shift, op)?);
        Ok(store(self.run(|| channel_affine(x, scale, shift, relu, spec))))
    }

    fn channel_sums(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        center: Option<&Storage>,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let op = "channel_sums";
        let (grad, x) = (host_grad(grad, spec, op)?, cpu_slice(x, op)?);
        let center = center.map(|c| cpu_slice(c, op)).transpose()?;
        Ok(store(self.run(|| channel_sums(grad, x, center, spec))))
    }

    fn channel_affine_pair(
        &self,
        grad: ChannelGrad<'_>,
        x: &Storage,
        coefficients: ChannelCoefficients<'_>,
        spec: &ChannelSpec,
    ) -> Result<Storage> {
        let op = "channel_affine_pair";
        let (grad, x) = (host_grad(grad, spec, op)?, cpu_slice(x, op)?);
        let ChannelCoefficients { g_scale, x_scale, shift } = coefficients;
        let k = [cpu_slice(g_scale, op)?, cpu_slice(x_scale, op)?, cpu_slice(shift, op)?];
        Ok(store(self.run(|| channel_affine_pair(grad, x, k, spec))))
    }

    fn channel_affine_relu_max_pool(
        &self,
        x: &Storage,
        scale: &Storage,
        shift: &Storage,
        pool: &Pool2dSpec,
    ) -> Result<(Storage, Storage)> {
        let op = "channel_affine_relu_max_pool";
        if !pool.tiles_2x2() {
            return Err(TensorError::Unsupported(format!("{op}: windows other than 2x2 tiling: {pool}")));
        }
        let (x, scale, shift) = (cpu_slice(x, op)?, cpu_slice(scale, op)?, cpu_slice(shift, op)?);
        let c = pool.channels;
        if scale.len() != c || shift.len() != c || x.len() != pool_channels(pool).len() {
            return Err(TensorError::InvalidArgument(format!(
                "{op}: {} values, {} scales and {} shifts for {pool}",
                x.len(),
                scale.len(),
                shift.len()
            )));
        }
        let (pooled, winners) = self.run(|| norm_pool::affine_relu_max_pool(x, scale, shift, pool));
        Ok((store(pooled), store(winners)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The register kernels (`norm_registers`) give the portable blocks' bits, for each width
    /// they take, and decline the others.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn register_blocks_match_the_portable_ones() {
        use crate::norm_registers as registers;
        if !crate::isa::features().avx512f {
            return;
        }
        let value = |i: usize, salt: usize| ((i * 7919 + salt * 104_729) % 2003) as f32 / 97.0 - 10.0;
        for channels in [16, 32, 64, 128, 24, 48, 3] {
            let rows = 37;
            let a: Vec<f32> = (0..rows * channels).map(|i| value(i, 1)).collect();
            let b: Vec<f32> = (0..rows * channels).map(|i| value(i, 2) + 3.0).collect();
            let k: Vec<Vec<f32>> =
                (0..3).map(|s| (0..channels).map(|c| value(c, s + 3) * 0.1).collect()).collect();
            let k = [&k[0][..], &k[1][..], &k[2][..]];
            let taken = [16, 32, 64, 128].contains(&channels);
            let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
            let moments = registers::block_moments(&b, channels);
            assert_eq!(moments.is_some(), taken, "{channels} channels");
            if let Some((mean, m2)) = moments {
                let portable = block_moments(&b, channels);
                assert_eq!((widen(mean), widen(m2)), (portable.mean, portable.m2), "{channels} channels");
            }
            let gated = registers::block_sums::<true>(&a, &b, k);
            let plain = registers::block_sums::<false>(&a, &b, k);
            assert_eq!((gated.is_some(), plain.is_some()), (taken, taken));
            if let (Some(gated), Some(plain)) = (gated, plain) {
                assert_eq!(widen(gated.clone()), block_sums::<true>(&a, &b, k), "{channels} gated");
                assert_eq!(widen(plain.clone()), block_sums::<false>(&a, &b, k), "{channels}");
                // The gate cut some gradients and kept others.
                assert_ne!(gated, plain);
            }
        }
    }

    /// Moments of data far from zero stay exact to f32 rounding, channels-last and not, for
    /// channels longer than one block.
    #[test]
    fn moments_are_accurate_far_from_zero() {
        for (outer, channels, inner) in [(5000usize, 3usize, 1usize), (7, 3, 900), (1, 1, 1)] {
            let spec = ChannelSpec { outer, channels, inner };
            let x: Vec<f32> = (0..spec.len()).map(|i| 1000.0 + ((i * 7919) % 1000) as f32 * 1e-3).collect();
            let got = channel_moments(&x, &spec);
            for c in 0..channels {
                let values: Vec<f64> =
                    (0..spec.len()).filter(|i| (i / inner) % channels == c).map(|i| x[i] as f64).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
                assert!(
                    (got[c] as f64 - mean).abs() <= 1e-6 * mean,
                    "{spec:?} mean {c}: {} vs {mean}",
                    got[c]
                );
                let var_got = got[channels + c] as f64;
                assert!((var_got - var).abs() <= 1e-3 * var + 1e-9, "{spec:?} var {c}: {var_got} vs {var}");
            }
        }
    }
}
