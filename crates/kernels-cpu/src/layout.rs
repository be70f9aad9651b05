//! Data movement: concatenation and slicing along an axis, and dropout masks.

use crate::elementwise::build;
use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tensor::random::{seed_keys, uniform_with_keys};
use tensor::shape::{ConcatSpec, NarrowSpec, PermuteSpec};
use tensor::{LayoutOps, Storage};
use tensor::{Result, TensorError};

/// Copies `src` into the uninitialised `dst` (same length).
pub(crate) fn write_run(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// Rows `indices[i]` of `x` (rows of `row_len`), stacked.
///
/// # Panics
/// If an index is past the last row.
pub fn gather_rows(x: &[f32], row_len: usize, indices: &[u32]) -> Vec<f32> {
    // A recycled buffer, written without zeroing (a fresh one is page-faulted in on every
    // training step), and tasks of at least 64 KiB: a batch of 128 MNIST rows is only 400 KB.
    let rows_per_task = (crate::PARALLEL_CHUNK / row_len.max(1)).max(1);
    let len = indices.len() * row_len;
    // SAFETY: each piece holds whole rows, one per index from its first row on, and every
    // row is written.
    unsafe {
        crate::buffers::build_chunks(len, rows_per_task * row_len, true, |piece, dst| {
            let rows = dst.chunks_mut(row_len).zip(&indices[piece * rows_per_task..]);
            for (dst, &i) in rows {
                let i = i as usize;
                write_run(dst, &x[i * row_len..(i + 1) * row_len]);
            }
        })
    }
}

/// Concatenates `parts` (part `i` viewed as `[outer, spec.part_inner[i]]`) into
/// `[outer, sum of part_inner]`.
///
/// # Panics
/// If a part is shorter than the spec implies.
pub fn concat(parts: &[&[f32]], spec: &ConcatSpec) -> Vec<f32> {
    assert_eq!(parts.len(), spec.part_inner.len(), "concat: one spec entry per part");
    for (part, &inner) in parts.iter().zip(&spec.part_inner) {
        assert!(part.len() >= spec.outer * inner, "concat: part too short");
    }
    let width: usize = spec.part_inner.iter().sum();
    if width == 0 {
        return Vec::new();
    }
    // Rows are independent; `build` hands out chunks that may start or end mid-row, so walk
    // each chunk's elements as (row, part, column) runs.
    // SAFETY: the walk writes runs until `at` reaches the end of the chunk.
    unsafe {
        build(spec.outer * width, |offset, out| {
            let (mut row, mut col) = (offset / width, offset % width);
            let mut at = 0;
            while at < out.len() {
                // Find the part holding column `col` of this row.
                let mut start = 0;
                for (part, &inner) in parts.iter().zip(&spec.part_inner) {
                    if col < start + inner {
                        let from = col - start;
                        let run = (inner - from).min(out.len() - at);
                        let src = &part[row * inner + from..row * inner + from + run];
                        write_run(&mut out[at..at + run], src);
                        at += run;
                        col += run;
                        if at == out.len() {
                            break;
                        }
                    }
                    start += inner;
                }
                if col == width {
                    row += 1;
                    col = 0;
                }
            }
        })
    }
}

/// Columns `offset..offset + len` of `x` viewed as `[outer, inner]`, as `[outer, len]`.
///
/// # Panics
/// If the columns fall outside a row or `x` is shorter than the spec implies.
pub fn narrow(x: &[f32], spec: &NarrowSpec) -> Vec<f32> {
    let &NarrowSpec { outer, inner, offset, len } = spec;
    assert!(offset + len <= inner && x.len() >= outer * inner, "narrow: out of bounds");
    let mut out = crate::buffers::take(outer * len);
    for row in x.chunks_exact(inner.max(1)).take(outer) {
        out.extend_from_slice(&row[offset..offset + len]);
    }
    out
}

/// Dropout scaling mask: element `i` is `1 / (1 - rate)` when
/// [`tensor::random::uniform`]`(seed, i) >= rate`, else 0. `rate` must lie in `[0, 1)`.
pub fn dropout_mask(len: usize, rate: f32, seed: u64) -> Result<Vec<f32>> {
    if !(0.0..1.0).contains(&rate) {
        return Err(TensorError::InvalidArgument(format!("dropout rate must be in [0, 1), got {rate}")));
    }
    if len > u32::MAX as usize + 1 {
        return Err(TensorError::InvalidArgument(format!(
            "dropout mask of {len} elements exceeds the generator's 2^32 counter"
        )));
    }
    let keys = seed_keys(seed);
    let keep = 1.0 / (1.0 - rate);
    // SAFETY: `dropout_chunk` writes every element of its chunk.
    Ok(unsafe { build(len, |offset, out| dropout_chunk(keys, rate, keep, offset as u32, out)) })
}

/// Mask elements `first..first + out.len()`. The hash is 32-bit integer multiplies, which
/// only vectorise with AVX2 (SSE2 has no 32-bit `mullo`), so x86-64 CPUs that have it run a
/// copy compiled for it.
fn dropout_chunk(keys: (u32, u32), rate: f32, keep: f32, first: u32, out: &mut [MaybeUninit<f32>]) {
    #[inline(always)]
    fn body(keys: (u32, u32), rate: f32, keep: f32, first: u32, out: &mut [MaybeUninit<f32>]) {
        for (i, o) in out.iter_mut().enumerate() {
            let u = uniform_with_keys(keys, first.wrapping_add(i as u32));
            o.write(if u >= rate { keep } else { 0.0 });
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn body_avx2(
            keys: (u32, u32),
            rate: f32,
            keep: f32,
            first: u32,
            out: &mut [MaybeUninit<f32>],
        ) {
            body(keys, rate, keep, first, out)
        }
        if crate::isa::features().avx2 {
            // SAFETY: the CPU supports AVX2.
            return unsafe { body_avx2(keys, rate, keep, first, out) };
        }
    }
    body(keys, rate, keep, first, out)
}

/// `x` with its axes permuted (`spec.source` gives each output element's input), in parallel
/// over chunks of the output.
pub fn permute(x: &[f32], spec: &PermuteSpec) -> Vec<f32> {
    let mut out = vec![0.0f32; spec.len()];
    const CHUNK: usize = 4096;
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
        for (i, o) in chunk.iter_mut().enumerate() {
            *o = x[spec.source(c * CHUNK + i)];
        }
    });
    out
}

impl LayoutOps for CpuBackend {
    fn concat(&self, parts: &[&Storage], spec: &ConcatSpec) -> Result<Storage> {
        let parts = parts.iter().map(|part| cpu_slice(part, "concat")).collect::<Result<Vec<_>>>()?;
        Ok(store(self.run(|| concat(&parts, spec))))
    }

    fn narrow(&self, x: &Storage, spec: &NarrowSpec) -> Result<Storage> {
        let x = cpu_slice(x, "narrow")?;
        Ok(store(self.run(|| narrow(x, spec))))
    }

    fn gather_rows(&self, x: &Storage, row_len: usize, indices: &[u32]) -> Result<Storage> {
        let x = cpu_slice(x, "gather_rows")?;
        Ok(store(self.run(|| gather_rows(x, row_len, indices))))
    }

    fn dropout_mask(&self, len: usize, rate: f32, seed: u64) -> Result<Storage> {
        Ok(store(self.run(|| dropout_mask(len, rate, seed))?))
    }

    fn permute(&self, x: &Storage, spec: &PermuteSpec) -> Result<Storage> {
        let x = cpu_slice(x, "permute")?;
        Ok(store(self.run(|| permute(x, spec))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches spanning several tasks (MNIST rows: 20 per task), repeated and out-of-order
    /// indices, empty rows and batches.
    #[test]
    fn gather_rows_copies_each_indexed_row() {
        for (rows, row_len, batch) in [(60usize, 784usize, 57usize), (5, 3, 9), (4, 0, 3), (4, 2, 0)] {
            let x: Vec<f32> = (0..rows * row_len).map(|i| i as f32).collect();
            let indices: Vec<u32> = (0..batch).map(|b| ((b * 37 + 11) % rows) as u32).collect();
            let want: Vec<f32> = indices
                .iter()
                .flat_map(|&i| x[i as usize * row_len..(i as usize + 1) * row_len].to_vec())
                .collect();
            assert_eq!(gather_rows(&x, row_len, &indices), want, "{rows}x{row_len}, batch {batch}");
        }
    }

    #[test]
    fn concat_and_narrow_round_trip() {
        // Parts [outer, 2], [outer, 3], [outer, 0], [outer, 1] for several outers.
        for outer in [1usize, 5, 9000] {
            let inners = [2usize, 3, 0, 1];
            let parts: Vec<Vec<f32>> = inners
                .iter()
                .enumerate()
                .map(|(p, &inner)| (0..outer * inner).map(|i| (p * 100_000 + i) as f32).collect())
                .collect();
            let refs: Vec<&[f32]> = parts.iter().map(Vec::as_slice).collect();
            let spec = ConcatSpec { outer, part_inner: inners.to_vec() };
            let out = concat(&refs, &spec);
            let mut want = Vec::new();
            for row in 0..outer {
                for (p, &inner) in inners.iter().enumerate() {
                    want.extend_from_slice(&parts[p][row * inner..(row + 1) * inner]);
                }
            }
            assert_eq!(out, want);
            let mut offset = 0;
            for (p, &inner) in inners.iter().enumerate() {
                let back = narrow(&out, &NarrowSpec { outer, inner: 6, offset, len: inner });
                assert_eq!(back, parts[p]);
                offset += inner;
            }
        }
    }

    #[test]
    fn dropout_mask_follows_the_shared_generator() {
        let (len, rate, seed) = (100_003, 0.3f32, 77);
        let mask = dropout_mask(len, rate, seed).unwrap();
        let keep = 1.0 / (1.0 - rate);
        let mut kept = 0;
        for (i, &m) in mask.iter().enumerate() {
            let want = if tensor::random::uniform(seed, i as u32) >= rate { keep } else { 0.0 };
            assert_eq!(m, want, "element {i}");
            kept += (m != 0.0) as usize;
        }
        let fraction = kept as f64 / len as f64;
        assert!((fraction - 0.7).abs() < 0.01, "kept {fraction}");
        assert_eq!(dropout_mask(5, 0.0, 1).unwrap(), vec![1.0; 5]);
        assert!(dropout_mask(5, 1.0, 1).is_err());
        assert!(dropout_mask(5, -0.1, 1).is_err());
        assert!(dropout_mask(5, f32::NAN, 1).is_err());
    }
}
