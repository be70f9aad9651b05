//! AVX-512 matrix products with few output columns and a transposed left operand: a dense
//! layer's weight gradient (`X^T dY`, `2880 x 128` times `128 x 100`), where the `gemm` crate
//! first packs the strided `X^T`. Here `B`'s rows (`n <= 128` columns, a few registers wide)
//! are read in place, `A`'s elements are broadcast one at a time (so `A` may have any
//! strides), and each micro-tile keeps `MR x NV` registers of `C` across a block of the
//! contraction whose `B` panel stays in L1. The inner loop is 3 broadcasts, 7 loads and 21
//! FMAs, no spills: on the project's Xeon that is the cores' load rate, about three quarters
//! of their FMA peak.

use crate::matrix::MatrixRef;
use std::arch::x86_64::*;

/// Rows of `C` per micro-tile. With `NV = 7` registers of columns that is 21 accumulators,
/// 3 broadcasts and one `B` register: within the 32 vector registers, and 10 loads per 21 FMAs.
const MR: usize = 3;

/// Registers of 16 columns per micro-tile, at most: a column block is `16 * MAX_NV` wide.
const MAX_NV: usize = 7;

/// Contraction block: a `KC x 112` panel of `B` is 28 KB, which stays in the 48 KB L1 while
/// every row block of `A` passes over it.
const KC: usize = 64;

/// The most columns this kernel takes (wider products go to the `gemm` crate).
pub(crate) const MAX_N: usize = 128;

/// Whether [`gemm`] computes `lhs` (`m x k`) times `rhs` (`k x n`) (on a CPU with AVX-512F,
/// which `crate::dispatch` checks). Only for a transposed `A` (a weight gradient's `X^T`):
/// with a row-major `A` (a dense layer's forward pass) the `gemm` crate is as fast
/// (`docs/performance.md`, "The backend seam").
pub(crate) fn takes(lhs: &MatrixRef<'_>, rhs: &MatrixRef<'_>, k: usize, n: usize) -> bool {
    lhs.col_stride != 1 && rhs.col_stride == 1 && (1..=MAX_N).contains(&n) && k >= 8
}

/// `C (+)= A B` for `A` `m x k` (any strides), `B` `k x n` (contiguous columns), `C` `m x n`
/// (rows `ldc` apart), overwritten unless `accumulate`.
///
/// # Safety
/// The CPU must have AVX-512F and `B`'s columns must be contiguous (which [`takes`]
/// checks); the operands must cover their shapes; `c` must be valid for reads and writes of
/// `m` rows of `n` elements `ldc` apart and not alias the operands.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gemm(
    c: *mut f32,
    ldc: usize,
    a: MatrixRef<'_>,
    b: MatrixRef<'_>,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    debug_assert!(b.col_stride == 1);
    let (ldb, a_ptr, b) = (b.row_stride, a.data.as_ptr(), b.data.as_ptr());
    let block = 16 * MAX_NV;
    for n0 in (0..n).step_by(block) {
        let cols = block.min(n - n0);
        let nv = cols.div_ceil(16);
        // Lanes of the last register that hold columns (all 16 when `cols` is a multiple).
        let tail: __mmask16 = if cols % 16 == 0 { 0xffff } else { (1u16 << (cols % 16)) - 1 };
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let load_c = accumulate || k0 > 0;
            let mut i0 = 0;
            while i0 < m {
                let rows = MR.min(m - i0);
                let tile = Tile {
                    a: a_ptr.add(i0 * a.row_stride + k0 * a.col_stride),
                    a_rs: a.row_stride,
                    a_cs: a.col_stride,
                    b: b.add(k0 * ldb + n0),
                    ldb,
                    c: c.add(i0 * ldc + n0),
                    ldc,
                    kc,
                    tail,
                    load_c,
                };
                tile_dispatch(rows, nv, &tile);
                i0 += rows;
            }
        }
    }
}

/// One micro-tile's operands: `rows x (16 nv)` of `C` over `kc` steps of the contraction.
struct Tile {
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    kc: usize,
    tail: __mmask16,
    load_c: bool,
}

#[target_feature(enable = "avx512f")]
unsafe fn tile_dispatch(rows: usize, nv: usize, t: &Tile) {
    macro_rules! by_nv {
        ($r:literal) => {
            match nv {
                1 => tile::<$r, 1>(t),
                2 => tile::<$r, 2>(t),
                3 => tile::<$r, 3>(t),
                4 => tile::<$r, 4>(t),
                5 => tile::<$r, 5>(t),
                6 => tile::<$r, 6>(t),
                _ => tile::<$r, 7>(t),
            }
        };
    }
    match rows {
        1 => by_nv!(1),
        2 => by_nv!(2),
        _ => by_nv!(3),
    }
}

/// `R x NV` registers of `C` held across the block; per step of the contraction, `R`
/// broadcasts of `A` and `NV` loads of `B`'s row (the last one masked to the columns).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize, const NV: usize>(t: &Tile) {
    let mask = |j: usize| if j + 1 == NV { t.tail } else { 0xffff };
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    if t.load_c {
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(mask(j), t.c.add(i * t.ldc + 16 * j));
            }
        }
    }
    for p in 0..t.kc {
        let b_row = t.b.add(p * t.ldb);
        let mut av = [_mm512_setzero_ps(); R];
        for (i, v) in av.iter_mut().enumerate() {
            *v = _mm512_set1_ps(*t.a.add(i * t.a_rs + p * t.a_cs));
        }
        // Column registers outer, rows inner: one B register live at a time (indexing, not
        // iterators, since the loop runs across the accumulators' second axis).
        #[allow(clippy::needless_range_loop)]
        for j in 0..NV {
            // Masked: B's last row may end before a whole register.
            let bv = _mm512_maskz_loadu_ps(mask(j), b_row.add(16 * j));
            for i in 0..R {
                acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            _mm512_mask_storeu_ps(t.c.add(i * t.ldc + 16 * j), mask(j), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn reference(a: &[f32], a_rs: usize, a_cs: usize, b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                let x = a[i * a_rs + p * a_cs] as f64;
                for j in 0..n {
                    c[i * n + j] += x * b[p * n + j] as f64;
                }
            }
        }
        c
    }

    /// Every column-register count, remainder rows, both `A` layouts, several contraction
    /// blocks, with and without accumulation, against an f64 reference.
    #[test]
    fn matches_reference_on_odd_shapes() {
        if !crate::isa::features().avx512f {
            return;
        }
        let mut rng = StdRng::seed_from_u64(7);
        for &(m, k, n) in &[(1, 8, 1), (5, 9, 17), (7, 130, 100), (128, 200, 112), (4, 64, 128), (2, 65, 31)]
        {
            for transposed in [false, true] {
                for accumulate in [false, true] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let start: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let (a_rs, a_cs) = if transposed { (1, m) } else { (k, 1) };
                    let mut c = start.clone();
                    let a_ref = MatrixRef { data: &a, row_stride: a_rs, col_stride: a_cs };
                    let b_ref = MatrixRef::row_major(&b, n);
                    // SAFETY: the buffers hold exactly the shapes given.
                    unsafe { gemm(c.as_mut_ptr(), n, a_ref, b_ref, (m, k, n), accumulate) };
                    let want = reference(&a, a_rs, a_cs, &b, m, k, n);
                    for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let w = if accumulate { w + start[idx] as f64 } else { w };
                        assert!(
                            (got as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{m}x{k}x{n} transposed {transposed} accumulate {accumulate}: \
                             element {idx}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
