//! Row-wise softmax / log-softmax, their gradient, and the fused softmax cross-entropy.
//!
//! Every row is shifted by its maximum before exponentiating, so huge logits neither
//! overflow nor lose the other entries. Rows are independent and split across threads when
//! the tensor is large.

use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use tensor::{Result, SoftmaxOps, Storage};

/// Runs `f(row_index, out_row)` on each `cols`-wide row of `out`, in parallel when the tensor
/// is large.
fn for_each_row(out: &mut [f32], cols: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if cols == 0 {
        return;
    }
    if out.len() >= crate::PARALLEL_MIN_ELEMENTS {
        let rows_per_task = (crate::PARALLEL_CHUNK / cols).max(1);
        out.par_chunks_mut(rows_per_task * cols).enumerate().for_each(|(task, rows)| {
            for (i, row) in rows.chunks_exact_mut(cols).enumerate() {
                f(task * rows_per_task + i, row);
            }
        });
    } else {
        out.chunks_exact_mut(cols).enumerate().for_each(|(i, row)| f(i, row));
    }
}

fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// Writes `exp(x - max)` into `out` and returns `(max, sum of the exponentials)`.
fn shifted_exp(x: &[f32], out: &mut [f32]) -> (f32, f32) {
    let max = row_max(x);
    // An all -inf row would give NaN from (-inf) - (-inf); shift by 0 instead.
    let shift = if max.is_finite() { max } else { 0.0 };
    let mut sum = 0.0;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - shift).exp();
        sum += *o;
    }
    (shift, sum)
}

/// Softmax (or log-softmax when `log`) over each row of `x` (`[rows, cols]`).
///
/// # Panics
/// If `x` is shorter than `rows * cols`.
pub fn softmax(x: &[f32], rows: usize, cols: usize, log: bool) -> Vec<f32> {
    assert!(x.len() >= rows * cols, "softmax: input too short");
    let mut out = crate::buffers::take_zeroed(rows * cols);
    for_each_row(&mut out, cols, |r, y| {
        let x = &x[r * cols..(r + 1) * cols];
        let (shift, sum) = shifted_exp(x, y);
        if log {
            let log_sum = sum.ln();
            for (y, &v) in y.iter_mut().zip(x) {
                *y = v - shift - log_sum;
            }
        } else {
            let inv = 1.0 / sum;
            y.iter_mut().for_each(|y| *y *= inv);
        }
    });
    out
}

/// Gradient of [`softmax`] from its output `y` and the incoming gradient `dy`:
/// `y * (dy - sum(dy * y))` for softmax, `dy - exp(y) * sum(dy)` for log-softmax.
///
/// # Panics
/// If `y` or `dy` is shorter than `rows * cols`.
pub fn softmax_backward(y: &[f32], dy: &[f32], rows: usize, cols: usize, log: bool) -> Vec<f32> {
    assert!(y.len().min(dy.len()) >= rows * cols, "softmax_backward: input too short");
    let mut out = crate::buffers::take_zeroed(rows * cols);
    for_each_row(&mut out, cols, |r, dx| {
        let (y, dy) = (&y[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        if log {
            let total: f32 = dy.iter().sum();
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *dx = g - y.exp() * total;
            }
        } else {
            let dot: f32 = y.iter().zip(dy).map(|(&y, &g)| y * g).sum();
            for ((dx, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *dx = y * (g - dot);
            }
        }
    });
    out
}

/// Fused softmax cross-entropy over the rows of `[rows, cols]`: returns the per-row loss
/// `-sum(labels * log_softmax(logits))` and `softmax(logits)`.
///
/// The log-probabilities are formed as `x - max - log(sum)`, which is finite even where the
/// probability underflows to 0, so a zero label there contributes exactly 0 (never
/// `0 * -inf`).
///
/// # Panics
/// If `logits` or `labels` is shorter than `rows * cols`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[f32],
    rows: usize,
    cols: usize,
) -> (Vec<f32>, Vec<f32>) {
    assert!(logits.len().min(labels.len()) >= rows * cols, "softmax_cross_entropy: too short");
    let mut probs = crate::buffers::take_zeroed(rows * cols);
    let mut loss = vec![0.0; rows];
    let row = |r: usize, p: &mut [f32], loss: &mut f32| {
        let x = &logits[r * cols..(r + 1) * cols];
        let labels = &labels[r * cols..(r + 1) * cols];
        let (shift, sum) = shifted_exp(x, p);
        let log_sum = sum.ln();
        let mut total = 0.0;
        for (&label, &v) in labels.iter().zip(x) {
            if label != 0.0 {
                total += label * (v - shift - log_sum);
            }
        }
        *loss = -total;
        let inv = 1.0 / sum;
        p.iter_mut().for_each(|p| *p *= inv);
    };
    if cols == 0 {
        return (loss, probs);
    }
    if probs.len() >= crate::PARALLEL_MIN_ELEMENTS {
        let rows_per_task = (crate::PARALLEL_CHUNK / cols).max(1);
        probs
            .par_chunks_mut(rows_per_task * cols)
            .zip(loss.par_chunks_mut(rows_per_task))
            .enumerate()
            .for_each(|(task, (p, l))| {
                for (i, (p, l)) in p.chunks_exact_mut(cols).zip(l).enumerate() {
                    row(task * rows_per_task + i, p, l);
                }
            });
    } else {
        for (r, (p, l)) in probs.chunks_exact_mut(cols).zip(&mut loss).enumerate() {
            row(r, p, l);
        }
    }
    (loss, probs)
}

impl SoftmaxOps for CpuBackend {
    fn softmax(&self, x: &Storage, rows: usize, cols: usize, log: bool) -> Result<Storage> {
        let x = cpu_slice(x, "softmax")?;
        Ok(store(self.run(|| softmax(x, rows, cols, log))))
    }

    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        log: bool,
    ) -> Result<Storage> {
        let (y, dy) = (cpu_slice(y, "softmax_backward")?, cpu_slice(dy, "softmax_backward")?);
        Ok(store(self.run(|| softmax_backward(y, dy, rows, cols, log))))
    }

    fn softmax_cross_entropy(
        &self,
        logits: &Storage,
        labels: &Storage,
        rows: usize,
        cols: usize,
    ) -> Result<(Storage, Storage)> {
        let name = "softmax_cross_entropy";
        let (logits, labels) = (cpu_slice(logits, name)?, cpu_slice(labels, name)?);
        let (loss, probs) = self.run(|| softmax_cross_entropy(logits, labels, rows, cols));
        Ok((store(loss), store(probs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(len: usize, scale: f32, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-scale..scale)).collect()
    }

    fn reference_softmax(x: &[f32], cols: usize) -> Vec<f64> {
        x.chunks(cols)
            .flat_map(|row| {
                let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                row.iter().map(move |&v| (v as f64 - max).exp() / sum).collect::<Vec<_>>()
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= tol * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn forward_and_backward_match_reference() {
        let mut rng = StdRng::seed_from_u64(11);
        for (rows, cols) in [(7, 13), (1, 1), (3000, 11)] {
            let x = random(rows * cols, 5.0, &mut rng);
            let dy = random(rows * cols, 1.0, &mut rng);
            let p = reference_softmax(&x, cols);
            let y = softmax(&x, rows, cols, false);
            assert_close(&y, &p, 1e-6);
            let logp: Vec<f64> = p.iter().map(|v| v.ln()).collect();
            let log_y = softmax(&x, rows, cols, true);
            assert_close(&log_y, &logp, 1e-5);

            let mut want = vec![0.0; rows * cols];
            let mut want_log = vec![0.0; rows * cols];
            for r in 0..rows {
                let span = r * cols..(r + 1) * cols;
                let dot: f64 = span.clone().map(|i| p[i] * dy[i] as f64).sum();
                let total: f64 = span.clone().map(|i| dy[i] as f64).sum();
                for i in span {
                    want[i] = p[i] * (dy[i] as f64 - dot);
                    want_log[i] = dy[i] as f64 - p[i] * total;
                }
            }
            assert_close(&softmax_backward(&y, &dy, rows, cols, false), &want, 1e-5);
            assert_close(&softmax_backward(&log_y, &dy, rows, cols, true), &want_log, 1e-5);
        }
    }

    #[test]
    fn cross_entropy_matches_reference_and_survives_huge_logits() {
        let mut rng = StdRng::seed_from_u64(12);
        let (rows, cols) = (3001, 10);
        let mut x = random(rows * cols, 4.0, &mut rng);
        let mut labels = vec![0.0; rows * cols];
        for r in 0..rows {
            labels[r * cols + r % cols] = 1.0;
        }
        // A saturated row: probabilities of the others underflow to exactly 0.
        x[0] = 1e4;
        x[1] = -1e4;
        let (loss, probs) = softmax_cross_entropy(&x, &labels, rows, cols);
        let p = reference_softmax(&x, cols);
        assert_close(&probs, &p, 1e-6);
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            let want: f64 = (0..cols).map(|c| -labels[r * cols + c] as f64 * (row[c] as f64 - lse)).sum();
            assert!(loss[r].is_finite());
            assert!(
                (loss[r] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "row {r}: {} vs {want}",
                loss[r]
            );
        }
        assert_eq!(loss[0], 0.0);
        assert_eq!(probs[0], 1.0);
        // Soft labels on a row whose loss is dominated by a huge logit: -(0.5 * -2e4) = 1e4.
        let (loss, _) = softmax_cross_entropy(&[1e4, -1e4], &[0.5, 0.5], 1, 2);
        assert!((loss[0] - 1e4).abs() <= 1e-2, "{}", loss[0]);
    }
}
