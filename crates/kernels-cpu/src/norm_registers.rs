//! `norm`'s per-channel block reductions with their accumulators in AVX-512 registers, for
//! channels-last rows of 16, 32, 64 or 128 channels (model6's). The portable loops keep one
//! accumulator per channel in a vector on the heap, so every row's additions wait for the
//! last row's stores; here each channel still adds its rows in order, in f32, with the same
//! operations (no fused multiply-adds), so the sums are the same bits, only sooner.

// Register arrays indexed alongside the rows' vectors.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

/// The vectors of 16 channels a row of `channels` takes, where these kernels take it.
fn vectors(channels: usize) -> Option<usize> {
    let taken = crate::isa::features().avx512f && matches!(channels, 16 | 32 | 64 | 128);
    taken.then_some(channels / 16)
}

/// Runs `$kernel::<V, ..>` for the `$v` vectors of a row (one of 1, 2, 4, 8).
macro_rules! by_vectors {
    ($v:expr, $kernel:ident $(:: <$($generic:tt),*>)? ($($arg:expr),*)) => {
        match $v {
            1 => $kernel::<1 $($(, $generic)*)?>($($arg),*),
            2 => $kernel::<2 $($(, $generic)*)?>($($arg),*),
            4 => $kernel::<4 $($(, $generic)*)?>($($arg),*),
            _ => $kernel::<8 $($(, $generic)*)?>($($arg),*),
        }
    };
}

/// A channels-last block's per-channel mean and sum of squared deviations from it, two
/// passes in f32 as `norm::block_moments`; `None` where these kernels do not take the rows.
pub(crate) fn block_moments(rows: &[f32], channels: usize) -> Option<(Vec<f32>, Vec<f32>)> {
    let v = vectors(channels)?;
    // SAFETY: `vectors` checked AVX-512F.
    Some(unsafe { by_vectors!(v, moments(rows)) })
}

#[target_feature(enable = "avx512f")]
unsafe fn moments<const V: usize>(rows: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let channels = 16 * V;
    let count = rows.len() / channels;
    let mut sum = [_mm512_setzero_ps(); V];
    // SAFETY (the loads): every row holds 16 V floats.
    for row in rows.chunks_exact(channels) {
        for v in 0..V {
            sum[v] = _mm512_add_ps(sum[v], unsafe { load(row, v) });
        }
    }
    let n = _mm512_set1_ps(count as f32);
    let mut mean = [_mm512_setzero_ps(); V];
    for v in 0..V {
        mean[v] = _mm512_div_ps(sum[v], n);
    }
    let mut m2 = [_mm512_setzero_ps(); V];
    for row in rows.chunks_exact(channels) {
        for v in 0..V {
            let d = _mm512_sub_ps(unsafe { load(row, v) }, mean[v]);
            m2[v] = _mm512_add_ps(m2[v], _mm512_mul_ps(d, d));
        }
    }
    (lanes(&mean), lanes(&m2))
}

/// A channels-last block's `sum(g * (b - center[c]))` and `sum(g)`, `[2, channels]`, with
/// `g = a` where `!GATED` or `b * scale[c] + shift[c] > 0`, else 0: `norm::block_sums`.
/// `None` where these kernels do not take the rows.
pub(crate) fn block_sums<const GATED: bool>(
    a: &[f32],
    b: &[f32],
    per_channel: [&[f32]; 3],
) -> Option<Vec<f32>> {
    let channels = per_channel[0].len();
    let v = vectors(channels)?;
    assert!(a.len() == b.len() && per_channel.iter().all(|k| k.len() == channels));
    // SAFETY: `vectors` checked AVX-512F; the lengths are checked above.
    Some(unsafe { by_vectors!(v, sums::<GATED>(a, b, per_channel)) })
}

#[target_feature(enable = "avx512f")]
unsafe fn sums<const V: usize, const GATED: bool>(
    a: &[f32],
    b: &[f32],
    per_channel: [&[f32]; 3],
) -> Vec<f32> {
    let channels = 16 * V;
    // SAFETY (the loads): `per_channel` holds 16 V floats each (`block_sums` checks), and so
    // does every row.
    let mut coefficients = [[_mm512_setzero_ps(); V]; 3];
    for (registers, k) in coefficients.iter_mut().zip(per_channel) {
        for v in 0..V {
            registers[v] = unsafe { load(k, v) };
        }
    }
    let [center, scale, shift] = coefficients;
    let (mut ab, mut sa) = ([_mm512_setzero_ps(); V], [_mm512_setzero_ps(); V]);
    for (a, b) in a.chunks_exact(channels).zip(b.chunks_exact(channels)) {
        for v in 0..V {
            let (a, b) = unsafe { (load(a, v), load(b, v)) };
            let g = if GATED {
                let gate = _mm512_add_ps(_mm512_mul_ps(b, scale[v]), shift[v]);
                _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(gate, _mm512_setzero_ps()), a)
            } else {
                a
            };
            ab[v] = _mm512_add_ps(ab[v], _mm512_mul_ps(g, _mm512_sub_ps(b, center[v])));
            sa[v] = _mm512_add_ps(sa[v], g);
        }
    }
    let mut out = lanes(&ab);
    out.extend(lanes(&sa));
    out
}

/// Floats `16 v..16 (v + 1)` of `k`. A function, not a closure: a closure would not inherit
/// `avx512f`.
///
/// # Safety
/// The CPU has AVX-512F, and `k` holds at least `16 (v + 1)` floats.
#[inline(always)]
unsafe fn load(k: &[f32], v: usize) -> __m512 {
    debug_assert!(k.len() >= 16 * (v + 1));
    // SAFETY: the caller's contract.
    unsafe { _mm512_loadu_ps(k.as_ptr().add(16 * v)) }
}

/// The registers' lanes in order.
#[target_feature(enable = "avx512f")]
unsafe fn lanes<const V: usize>(registers: &[__m512; V]) -> Vec<f32> {
    let mut out = vec![0.0f32; 16 * V];
    for (v, register) in registers.iter().enumerate() {
        // SAFETY: `out` holds 16 V floats.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(16 * v), *register) };
    }
    out
}
