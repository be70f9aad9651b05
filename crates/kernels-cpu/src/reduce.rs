//! Reductions over the middle axis of `[outer, reduced, inner]`, and row argmax.
//!
//! Determinism: the order in which values are combined is a function of the shape alone.
//! Threads split the `outer` / `inner` axes, or (for narrow rows) fixed-size blocks of the
//! reduced axis whose results are combined in block order afterwards, so sums are
//! bit-identical whatever the number of threads.

use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use tensor::shape::ReduceSpec;
use tensor::ReduceOp;
use tensor::{ReduceOps, Result, Storage};

/// Accumulators used by a contiguous row reduction: enough independent lanes for the
/// compiler to keep a full vector register of partial sums (and to hide add latency).
const LANES: usize = 16;

/// Columns per task when one output row is split across threads.
const COLUMNS_PER_TASK: usize = 4096;

/// Rows at least this long are reduced column-block by column-block; shorter ones in
/// fixed blocks of rows with a wide accumulator.
const WIDE_ROWS: usize = 64;

/// Elements per block when narrow rows are reduced in blocks (64 KiB: one task's worth).
const BLOCK_ELEMENTS: usize = 1 << 14;

/// Sum of a contiguous row: `LANES` strided partial sums, then combined in a fixed order.
fn sum_row(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    // Pairwise: 16 -> 8 -> 4 -> 2 -> 1.
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            lanes[j] += lanes[j + width];
        }
        width /= 2;
    }
    tail.iter().fold(lanes[0], |acc, &v| acc + v)
}

/// Largest value of a contiguous row (`-inf` for an empty one; NaNs are skipped).
fn max_row(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(v);
        }
    }
    tail.iter().chain(&lanes).fold(f32::NEG_INFINITY, |acc, &v| acc.max(v))
}

/// Reduces `x` (`[outer, reduced, inner]`) to `[outer, inner]` with `op`. An empty reduction
/// gives 0 for sums and `-inf` for max.
///
/// # Panics
/// If `x` is shorter than the spec implies.
pub fn reduce(op: ReduceOp, x: &[f32], spec: &ReduceSpec) -> Vec<f32> {
    let &ReduceSpec { outer, reduced, inner } = spec;
    assert!(x.len() >= outer * reduced * inner, "reduce: input too short");
    let empty = match op {
        ReduceOp::Sum => 0.0,
        ReduceOp::Max => f32::NEG_INFINITY,
    };
    let mut out = crate::buffers::take(outer * inner);
    out.resize(outer * inner, empty);
    if out.is_empty() || reduced == 0 {
        return out;
    }
    let parallel = outer * reduced * inner >= crate::PARALLEL_MIN_ELEMENTS;
    if inner == 1 {
        // Row reductions (softmax-style, per-sample losses): contiguous, vectorised.
        let row = |(o, y): (usize, &mut f32)| {
            let x = &x[o * reduced..(o + 1) * reduced];
            *y = match op {
                ReduceOp::Sum => sum_row(x),
                ReduceOp::Max => max_row(x),
            };
        };
        if parallel {
            let rows_per_task = (crate::PARALLEL_CHUNK / reduced).max(1);
            out.par_iter_mut().enumerate().with_min_len(rows_per_task).for_each(row);
        } else {
            out.iter_mut().enumerate().for_each(row);
        }
        return out;
    }
    if inner >= WIDE_ROWS {
        // Wide rows: a task owns a block of columns of one output row and folds all the
        // `reduced` rows into it in order.
        let columns = |o: usize, first_col: usize, y: &mut [f32]| {
            let block = &x[o * reduced * inner..(o + 1) * reduced * inner];
            let width = y.len();
            y.copy_from_slice(&block[first_col..first_col + width]);
            for r in 1..reduced {
                combine(op, y, &block[r * inner + first_col..r * inner + first_col + width]);
            }
        };
        if parallel {
            out.par_chunks_mut(inner).enumerate().for_each(|(o, y)| {
                y.par_chunks_mut(COLUMNS_PER_TASK)
                    .enumerate()
                    .for_each(|(block, y)| columns(o, block * COLUMNS_PER_TASK, y));
            });
        } else {
            out.chunks_mut(inner).enumerate().for_each(|(o, y)| columns(o, 0, y));
        }
        return out;
    }
    // Narrow rows (bias gradients: [pixels, channels] -> [channels]): the `reduced` rows are
    // cut into blocks of a fixed number of rows (a function of `inner` only), each reduced
    // on its own, then the block results are combined in block order. The same blocks and
    // order on any number of threads, so the result is bit-identical.
    let block_rows = (BLOCK_ELEMENTS / inner).max(1);
    let blocks = reduced.div_ceil(block_rows);
    let block_of = |o: usize, b: usize| {
        let first = o * reduced + b * block_rows;
        let rows = block_rows.min(reduced - b * block_rows);
        &x[first * inner..(first + rows) * inner]
    };
    if blocks == 1 {
        let whole = |(o, y): (usize, &mut [f32])| reduce_rows_into(op, block_of(o, 0), y);
        if parallel {
            out.par_chunks_mut(inner).enumerate().for_each(whole);
        } else {
            out.chunks_mut(inner).enumerate().for_each(whole);
        }
        return out;
    }
    let mut partials = vec![0.0; outer * blocks * inner];
    let partial = |(i, y): (usize, &mut [f32])| reduce_rows_into(op, block_of(i / blocks, i % blocks), y);
    if parallel {
        partials.par_chunks_mut(inner).enumerate().for_each(partial);
    } else {
        partials.chunks_mut(inner).enumerate().for_each(partial);
    }
    for (y, partials) in out.chunks_mut(inner).zip(partials.chunks(blocks * inner)) {
        y.copy_from_slice(&partials[..inner]);
        for p in partials[inner..].chunks(inner) {
            combine(op, y, p);
        }
    }
    out
}

/// `y = op(y, row)` elementwise.
#[inline(always)]
fn combine(op: ReduceOp, y: &mut [f32], row: &[f32]) {
    match op {
        ReduceOp::Sum => y.iter_mut().zip(row).for_each(|(y, &v)| *y += v),
        ReduceOp::Max => y.iter_mut().zip(row).for_each(|(y, &v)| *y = y.max(v)),
    }
}

/// Reduces the rows of `rows` (`[n, y.len()]`, `n >= 1`) into `y`. Narrow rows are folded
/// several at a time into a wide accumulator (`WIDE_ROWS` or more lanes, so the inner loop is
/// long enough to vectorise), whose row slots are combined in order at the end.
#[inline(never)]
fn reduce_rows_into(op: ReduceOp, rows: &[f32], y: &mut [f32]) {
    let inner = y.len();
    let group = WIDE_ROWS.div_ceil(inner);
    let mut wide = [0.0f32; 2 * WIDE_ROWS];
    let mut chunks = rows.chunks_exact(group * inner);
    match chunks.next() {
        None => {
            // Fewer rows than one group: fold them one by one.
            y.copy_from_slice(&rows[..inner]);
            for row in rows[inner..].chunks_exact(inner) {
                combine(op, y, row);
            }
            return;
        }
        Some(first) => wide[..group * inner].copy_from_slice(first),
    }
    let wide = &mut wide[..group * inner];
    for chunk in &mut chunks {
        combine(op, wide, chunk);
    }
    let tail = chunks.remainder();
    combine(op, &mut wide[..tail.len()], tail);
    y.copy_from_slice(&wide[..inner]);
    for slot in wide[inner..].chunks_exact(inner) {
        combine(op, y, slot);
    }
}

/// Index of the largest value of each row of `x` (`[rows, cols]`), the first one on ties, as
/// f32. NaNs are never chosen (an all-NaN row gives 0).
///
/// # Panics
/// If `x` is shorter than `rows * cols`.
pub fn argmax(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert!(x.len() >= rows * cols, "argmax: input too short");
    let row = |(r, y): (usize, &mut f32)| {
        let mut best = 0;
        let mut best_value = f32::NEG_INFINITY;
        for (i, &v) in x[r * cols..(r + 1) * cols].iter().enumerate() {
            if v > best_value {
                best_value = v;
                best = i;
            }
        }
        *y = best as f32;
    };
    let mut out = vec![0.0; rows];
    if rows * cols >= crate::PARALLEL_MIN_ELEMENTS {
        let rows_per_task = (crate::PARALLEL_CHUNK / cols.max(1)).max(1);
        out.par_iter_mut().enumerate().with_min_len(rows_per_task).for_each(row);
    } else {
        out.iter_mut().enumerate().for_each(row);
    }
    out
}

impl ReduceOps for CpuBackend {
    fn reduce(&self, op: ReduceOp, x: &Storage, spec: &ReduceSpec) -> Result<Storage> {
        let x = cpu_slice(x, "reduce")?;
        Ok(store(self.run(|| reduce(op, x, spec))))
    }

    fn argmax(&self, x: &Storage, rows: usize, cols: usize) -> Result<Storage> {
        let x = cpu_slice(x, "argmax")?;
        Ok(store(self.run(|| argmax(x, rows, cols))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn reference(op: ReduceOp, x: &[f32], s: &ReduceSpec) -> Vec<f64> {
        let mut out = Vec::new();
        for o in 0..s.outer {
            for i in 0..s.inner {
                let values = (0..s.reduced).map(|r| x[(o * s.reduced + r) * s.inner + i] as f64);
                out.push(match op {
                    ReduceOp::Sum => values.sum(),
                    ReduceOp::Max => values.fold(f64::NEG_INFINITY, f64::max),
                });
            }
        }
        out
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (3, 7, 5),
        (1, 1000, 1),
        (13, 37, 1),
        (1, 73, 20),
        (4, 1, 6),
        (300, 129, 1), // parallel rows
        (1, 700, 90),  // parallel, bias-gradient style
        (3, 50, 9000), // parallel, rows split into column blocks
        (1, 5000, 20), // several row blocks, wide accumulator
        (3, 2000, 7),  // several row blocks per output row
        (5, 100, 3),   // one block, accumulator with a tail
        (64, 600, 20), // parallel over outer, one block each
    ];

    #[test]
    fn matches_reference() {
        let mut rng = StdRng::seed_from_u64(8);
        for &(outer, reduced, inner) in SHAPES {
            let spec = ReduceSpec { outer, reduced, inner };
            let x = random(outer * reduced * inner, &mut rng);
            for op in [ReduceOp::Sum, ReduceOp::Max] {
                let got = reduce(op, &x, &spec);
                let want = reference(op, &x, &spec);
                assert_eq!(got.len(), want.len());
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (1.0 + (reduced as f64).sqrt());
                    assert!((g as f64 - w).abs() <= tol, "{spec:?} {op:?} [{i}]: {g} vs {w}");
                }
            }
        }
        let empty = ReduceSpec { outer: 2, reduced: 0, inner: 3 };
        assert_eq!(reduce(ReduceOp::Sum, &[], &empty), vec![0.0; 6]);
    }

    #[test]
    fn sums_are_bit_identical_across_thread_counts() {
        let mut rng = StdRng::seed_from_u64(9);
        for &(outer, reduced, inner) in SHAPES {
            let spec = ReduceSpec { outer, reduced, inner };
            let x = random(outer * reduced * inner, &mut rng);
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| reduce(ReduceOp::Sum, &x, &spec))
            };
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            let one = bits(run(1));
            assert_eq!(one, bits(run(2)), "{spec:?}");
            assert_eq!(one, bits(run(3)), "{spec:?}");
        }
    }

    #[test]
    fn argmax_picks_first_maximum() {
        let x = [
            1.0, 3.0, 3.0, -1.0, /* row 2 */ -5.0, -2.0, -2.0, -7.0, /* row 3 */ 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(argmax(&x, 3, 4), vec![1.0, 1.0, 0.0]);
        let mut rng = StdRng::seed_from_u64(10);
        let (rows, cols) = (500, 101);
        let x = random(rows * cols, &mut rng);
        let got = argmax(&x, rows, cols);
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let want = (0..cols).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            assert_eq!(got[r], want as f32);
        }
    }
}
