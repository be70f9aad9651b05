//! 2-D pooling over NHWC input: max, average and L2, with their gradients.
//!
//! Windows are the in-bounds ranges of [`Pool2dSpec::window_rows`] / `window_cols`: padding is
//! never read, so it never wins a max and is not counted in an average (TensorFlow's
//! semantics). Channels are innermost, so every loop runs over a contiguous channel vector.
//! Images are independent, so large batches are split across threads by image.

use crate::buffers::zeroed_chunks;
use crate::dispatch::{self, MaxPool};
use crate::pool_2x2;
use crate::{cpu_slice, store, CpuBackend};
use tensor::shape::{Pool2dSpec, PoolKind};
use tensor::{PoolOps, Result, Storage};

/// Number of elements of the pooling input.
pub fn input_len(spec: &Pool2dSpec) -> usize {
    spec.batch * spec.in_h * spec.in_w * spec.channels
}

/// Whether the pooling touches enough data to be worth spreading over threads.
fn worth_parallel(spec: &Pool2dSpec) -> bool {
    input_len(spec).max(spec.output_shape().numel() * spec.pool_h * spec.pool_w)
        >= crate::PARALLEL_MIN_ELEMENTS
}

/// The in-bounds input rows of every output row and columns of every output column,
/// computed once per call rather than per pixel.
struct Windows {
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
}

impl Windows {
    fn new(spec: &Pool2dSpec) -> Self {
        Windows {
            rows: (0..spec.out_h).map(|oy| spec.window_rows(oy)).collect(),
            cols: (0..spec.out_w).map(|ox| spec.window_cols(ox)).collect(),
        }
    }

    /// Calls `visit(out_pixel, rows, cols)` for every output pixel of one image whose window
    /// overlaps the image (a window wholly in the padding pools nothing and stays 0).
    #[inline]
    fn for_each(&self, mut visit: impl FnMut(usize, (usize, usize), (usize, usize))) {
        let out_w = self.cols.len();
        for (oy, &rows) in self.rows.iter().enumerate() {
            if rows.0 >= rows.1 {
                continue;
            }
            for (ox, &cols) in self.cols.iter().enumerate() {
                if cols.0 < cols.1 {
                    visit(oy * out_w + ox, rows, cols);
                }
            }
        }
    }
}

/// Calls `tap(offset)` with the offset of each in-bounds pixel of a window, in scan order
/// (rows, then columns); `offset` indexes the image's channel vectors.
#[inline(always)]
fn for_each_tap(
    spec: &Pool2dSpec,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
    mut tap: impl FnMut(usize),
) {
    let c = spec.channels;
    for iy in r0..r1 {
        for ix in c0..c1 {
            tap((iy * spec.in_w + ix) * c);
        }
    }
}

/// `best[ch] = max over the window` (strictly greater wins, so NaNs never replace a value).
#[inline(always)]
fn window_max(x: &[f32], spec: &Pool2dSpec, rows: (usize, usize), cols: (usize, usize), best: &mut [f32]) {
    let c = best.len();
    let first = (rows.0 * spec.in_w + cols.0) * c;
    best.copy_from_slice(&x[first..first + c]);
    for_each_tap(spec, rows, cols, |at| {
        for (m, &v) in best.iter_mut().zip(&x[at..at + c]) {
            *m = if v > *m { v } else { *m };
        }
    });
}

/// Pools `x` (`[batch, in_h, in_w, channels]`) to `[batch, out_h, out_w, channels]`.
///
/// # Panics
/// If `x` is shorter than the spec implies.
pub fn pool2d(kind: PoolKind, x: &[f32], spec: &Pool2dSpec) -> Vec<f32> {
    assert!(x.len() >= input_len(spec), "pool2d: input too short");
    if kind == PoolKind::Max && dispatch::max_pool(spec) == MaxPool::TwoByTwo {
        return pool_2x2::max_pool(x, spec, worth_parallel(spec));
    }
    let c = spec.channels;
    let image_in = spec.in_h * spec.in_w * c;
    let image_out = spec.out_h * spec.out_w * c;
    let windows = Windows::new(spec);
    zeroed_chunks(spec.batch * image_out, image_out, worth_parallel(spec), |image, y| {
        pool_image(kind, &x[image * image_in..(image + 1) * image_in], y, spec, &windows);
    })
}

/// Gradient of [`pool2d`] with respect to its input. `x` and `y` are the forward input and
/// output, `dy` the output gradient. Max sends each window's gradient to its first maximum in
/// scan order (rows, then columns), found again from `x`; average spreads it evenly over the
/// in-bounds elements; L2 gives `dy * x / y` (0 where `y == 0`). Overlapping windows add up.
///
/// # Panics
/// If an input is shorter than the spec implies.
pub fn pool2d_backward(kind: PoolKind, x: &[f32], y: &[f32], dy: &[f32], spec: &Pool2dSpec) -> Vec<f32> {
    let c = spec.channels;
    let image_in = spec.in_h * spec.in_w * c;
    let image_out = spec.out_h * spec.out_w * c;
    assert!(x.len() >= input_len(spec), "pool2d_backward: input too short");
    assert!(y.len().min(dy.len()) >= spec.batch * image_out, "pool2d_backward: y/dy too short");
    if kind == PoolKind::Max && dispatch::max_pool(spec) == MaxPool::TwoByTwo {
        return pool_2x2::max_pool_backward(x, dy, spec, worth_parallel(spec));
    }
    let windows = Windows::new(spec);
    zeroed_chunks(spec.batch * image_in, image_in, worth_parallel(spec), |image, dx| {
        let (y, dy) = (&y[image * image_out..], &dy[image * image_out..]);
        let x = &x[image * image_in..(image + 1) * image_in];
        pool_backward_image(kind, x, &y[..image_out], &dy[..image_out], dx, spec, &windows);
    })
}

/// Pools one image `x` into `y`. A function of its own (not inlined into the rayon closure),
/// so the compiler knows `x` and `y` do not alias and vectorises the channel loops.
#[inline(never)]
fn pool_image(kind: PoolKind, x: &[f32], y: &mut [f32], spec: &Pool2dSpec, windows: &Windows) {
    let c = spec.channels;
    match kind {
        PoolKind::Max => windows.for_each(|pixel, rows, cols| {
            window_max(x, spec, rows, cols, &mut y[pixel * c..(pixel + 1) * c]);
        }),
        PoolKind::Average => windows.for_each(|pixel, rows, cols| {
            let y = &mut y[pixel * c..(pixel + 1) * c];
            for_each_tap(spec, rows, cols, |at| {
                y.iter_mut().zip(&x[at..at + c]).for_each(|(s, &v)| *s += v);
            });
            let scale = 1.0 / ((rows.1 - rows.0) * (cols.1 - cols.0)) as f32;
            y.iter_mut().for_each(|s| *s *= scale);
        }),
        PoolKind::L2 => windows.for_each(|pixel, rows, cols| {
            let y = &mut y[pixel * c..(pixel + 1) * c];
            for_each_tap(spec, rows, cols, |at| {
                y.iter_mut().zip(&x[at..at + c]).for_each(|(s, &v)| *s += v * v);
            });
            y.iter_mut().for_each(|s| *s = s.sqrt());
        }),
    }
}

/// The gradient of one image, added into its `dx`. Not inlined, for the same reason as
/// [`pool_image`].
#[inline(never)]
fn pool_backward_image(
    kind: PoolKind,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    spec: &Pool2dSpec,
    windows: &Windows,
) {
    let c = spec.channels;
    match kind {
        PoolKind::Max => {
            // Per-channel scratch: the running maximum and where it is. Strictly greater
            // wins, so ties keep the first maximum in scan order.
            let mut best = vec![0.0f32; c];
            let mut best_at = vec![0u32; c];
            windows.for_each(|pixel, rows, cols| {
                let first = (rows.0 * spec.in_w + cols.0) * c;
                best.copy_from_slice(&x[first..first + c]);
                best_at.fill(first as u32);
                for_each_tap(spec, rows, cols, |at| {
                    let lanes = best.iter_mut().zip(best_at.iter_mut());
                    for ((m, m_at), &v) in lanes.zip(&x[at..at + c]) {
                        // Selects as bit masks: written as branches, the compiler turns them
                        // into conditional stores that it cannot vectorise.
                        let take = ((v > *m) as u32).wrapping_neg();
                        *m = f32::from_bits((v.to_bits() & take) | (m.to_bits() & !take));
                        *m_at = (at as u32 & take) | (*m_at & !take);
                    }
                });
                let dy = &dy[pixel * c..(pixel + 1) * c];
                for (ch, (&at, &g)) in best_at.iter().zip(dy).enumerate() {
                    dx[at as usize + ch] += g;
                }
            });
        }
        PoolKind::Average => windows.for_each(|pixel, rows, cols| {
            let dy = &dy[pixel * c..(pixel + 1) * c];
            let scale = 1.0 / ((rows.1 - rows.0) * (cols.1 - cols.0)) as f32;
            for_each_tap(spec, rows, cols, |at| {
                dx[at..at + c].iter_mut().zip(dy).for_each(|(d, &g)| *d += g * scale);
            });
        }),
        PoolKind::L2 => windows.for_each(|pixel, rows, cols| {
            let out = pixel * c..(pixel + 1) * c;
            let (y, dy) = (&y[out.clone()], &dy[out]);
            for_each_tap(spec, rows, cols, |at| {
                let lanes = dx[at..at + c].iter_mut().zip(&x[at..at + c]);
                for (((d, &v), &norm), &g) in lanes.zip(y).zip(dy) {
                    *d += if norm != 0.0 { g * v / norm } else { 0.0 };
                }
            });
        }),
    }
}

impl PoolOps for CpuBackend {
    fn pool2d(&self, kind: PoolKind, x: &Storage, spec: &Pool2dSpec) -> Result<Storage> {
        let x = cpu_slice(x, "pool2d")?;
        Ok(store(self.run(|| pool2d(kind, x, spec))))
    }

    fn pool2d_backward(
        &self,
        kind: PoolKind,
        x: &Storage,
        y: &Storage,
        dy: &Storage,
        spec: &Pool2dSpec,
    ) -> Result<Storage> {
        let op = "pool2d_backward";
        let (x, y, dy) = (cpu_slice(x, op)?, cpu_slice(y, op)?, cpu_slice(dy, op)?);
        Ok(store(self.run(|| pool2d_backward(kind, x, y, dy, spec))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::{Padding, Shape};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Naive f64 pooling and its gradient, straight from the definitions.
    fn reference(kind: PoolKind, x: &[f32], dy: &[f32], s: &Pool2dSpec) -> (Vec<f64>, Vec<f64>) {
        let c = s.channels;
        let mut y = vec![0.0f64; s.output_shape().numel()];
        let mut dx = vec![0.0f64; x.len()];
        for b in 0..s.batch {
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    for ch in 0..c {
                        let mut taps = Vec::new();
                        for wy in 0..s.pool_h {
                            for wx in 0..s.pool_w {
                                let iy = (oy * s.stride_h + wy) as isize - s.pad_top as isize;
                                let ix = (ox * s.stride_w + wx) as isize - s.pad_left as isize;
                                if iy >= 0 && ix >= 0 && iy < s.in_h as isize && ix < s.in_w as isize {
                                    let (iy, ix) = (iy as usize, ix as usize);
                                    taps.push(((b * s.in_h + iy) * s.in_w + ix) * c + ch);
                                }
                            }
                        }
                        let yi = ((b * s.out_h + oy) * s.out_w + ox) * c + ch;
                        let g = dy[yi] as f64;
                        let xs: Vec<f64> = taps.iter().map(|&i| x[i] as f64).collect();
                        match kind {
                            PoolKind::Max => {
                                let mut best = 0;
                                for (j, &v) in xs.iter().enumerate() {
                                    if v > xs[best] {
                                        best = j;
                                    }
                                }
                                y[yi] = xs[best];
                                dx[taps[best]] += g;
                            }
                            PoolKind::Average => {
                                y[yi] = xs.iter().sum::<f64>() / xs.len() as f64;
                                for &t in &taps {
                                    dx[t] += g / xs.len() as f64;
                                }
                            }
                            PoolKind::L2 => {
                                let norm = xs.iter().map(|v| v * v).sum::<f64>().sqrt();
                                y[yi] = norm;
                                for (&t, &v) in taps.iter().zip(&xs) {
                                    dx[t] += if norm == 0.0 { 0.0 } else { g * v / norm };
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx)
    }

    fn assert_close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
        }
    }

    fn check(shape: [usize; 4], pool: (usize, usize), stride: (usize, usize), padding: Padding, seed: u64) {
        let spec = Pool2dSpec::new(&Shape::new(shape), pool, stride, padding).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = random(input_len(&spec), &mut rng);
        // Exact ties, so the first-maximum rule is exercised.
        for i in (0..x.len()).step_by(7) {
            x[i] = 0.5;
        }
        let dy = random(spec.output_shape().numel(), &mut rng);
        for kind in [PoolKind::Max, PoolKind::Average, PoolKind::L2] {
            let (want_y, want_dx) = reference(kind, &x, &dy, &spec);
            let y = pool2d(kind, &x, &spec);
            assert_close(&y, &want_y);
            assert_close(&pool2d_backward(kind, &x, &y, &dy, &spec), &want_dx);
        }
    }

    #[test]
    fn overlapping_same_padding_matches_reference() {
        check([3, 7, 9, 5], (3, 3), (2, 2), Padding::Same, 1);
        check([2, 8, 5, 3], (3, 2), (1, 2), Padding::Same, 2);
    }

    #[test]
    fn valid_and_big_batches_match_reference() {
        check([3, 9, 7, 4], (2, 2), (2, 2), Padding::Valid, 3);
        // Large enough to run in parallel.
        check([40, 24, 24, 20], (2, 2), (2, 2), Padding::Valid, 4);
    }

    #[test]
    fn exactly_tiled_2x2_windows_match_reference() {
        // The pool_2x2 fast path: even sizes, channel counts around the vector widths.
        for (i, c) in [1, 3, 8, 20, 21].into_iter().enumerate() {
            check([2, 4, 6, c], (2, 2), (2, 2), Padding::Valid, 10 + i as u64);
        }
    }

    #[test]
    fn nan_never_replaces_a_window_maximum() {
        // Channel 0: NaN first keeps NaN; channel 1: NaN later is ignored.
        let spec = Pool2dSpec::new(&Shape::new([1, 2, 2, 2]), (2, 2), (2, 2), Padding::Valid).unwrap();
        let x = [f32::NAN, 1.0, 5.0, f32::NAN, 7.0, 2.0, 0.0, 3.0];
        let y = pool2d(PoolKind::Max, &x, &spec);
        assert!(y[0].is_nan());
        assert_eq!(y[1], 3.0);
        let dx = pool2d_backward(PoolKind::Max, &x, &y, &[1.0, 2.0], &spec);
        assert_eq!(dx, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]);
    }

    #[test]
    fn max_gradient_goes_to_first_maximum_only() {
        let spec = Pool2dSpec::new(&Shape::new([1, 2, 2, 1]), (2, 2), (2, 2), Padding::Valid).unwrap();
        let x = [3.0, 3.0, 1.0, 3.0];
        let y = pool2d(PoolKind::Max, &x, &spec);
        assert_eq!(y, vec![3.0]);
        assert_eq!(pool2d_backward(PoolKind::Max, &x, &y, &[2.0], &spec), vec![2.0, 0.0, 0.0, 0.0]);
    }
}
