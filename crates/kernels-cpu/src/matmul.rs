//! Matrix products through the `gemm` crate family's f32 kernels (`gemm-f32`), or, for products
//! with few columns and a transposed left operand on CPUs with AVX-512 (dense weight gradients),
//! `matmul_narrow`'s kernel. Transposed operands are read through strides, so
//! `trans_a` / `trans_b` cost nothing.

pub use crate::matrix::MatrixRef;
use crate::{cpu_slice, store, CpuBackend};
use gemm_common::Parallelism;
use rayon::prelude::*;
use tensor::shape::MatmulSpec;
use tensor::{MatmulOps, Result, Storage};

/// Products with fewer multiply-adds than this run on one thread: below it, splitting one
/// GEMM across rayon workers costs more than it saves (a 128x500x10 product is faster on one
/// thread, a 128x784x100 one on two: docs/performance.md).
pub const PARALLEL_MIN_MACS: usize = 1 << 21;

/// A batch of small products is spread over threads, one product per task, from this many
/// multiply-adds in total: independent tasks are much cheaper to share than one GEMM.
const BATCH_PARALLEL_MIN_MACS: usize = 1 << 18;

/// `dst[m, n] (+)= lhs[m, k] * rhs[k, n]` on the calling thread, or spread over rayon's
/// threads when `parallel` and the product is big. `dst` is contiguous row-major; with
/// `accumulate` the product is added to its current contents, otherwise they are overwritten.
///
/// # Panics
/// If an operand is too short for its shape and strides (checked before any unsafe access).
#[allow(clippy::too_many_arguments)]
pub fn gemm_into(
    dst: &mut [f32],
    lhs: MatrixRef<'_>,
    rhs: MatrixRef<'_>,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
    parallel: bool,
) {
    assert!(dst.len() >= m * n, "gemm_into: dst too short");
    // SAFETY: `dst` holds `m x n` elements, exclusively borrowed.
    unsafe { gemm_to(dst.as_mut_ptr(), lhs, rhs, (m, k, n), accumulate, parallel) }
}

/// [`gemm_into`] through a raw pointer to `m * n` elements, which need not be initialised
/// unless `accumulate` (otherwise they are only written).
///
/// # Safety
/// `dst` must be valid for reads (with `accumulate`) and writes of `m * n` elements and not
/// alias the operands.
///
/// # Panics
/// If an operand is too short for its shape and strides (checked before any access).
unsafe fn gemm_to(
    dst: *mut f32,
    lhs: MatrixRef<'_>,
    rhs: MatrixRef<'_>,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
    parallel: bool,
) {
    assert!(lhs.covers(m, k) && rhs.covers(k, n), "gemm_into: operand too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum; gemm's kernels are not meant for k = 0.
        if !accumulate {
            std::ptr::write_bytes(dst, 0, m * n);
        }
        return;
    }
    if !(parallel && m * n * k >= PARALLEL_MIN_MACS && m.max(n) >= 2) {
        // SAFETY: checked above; `dst` is contiguous with `n` columns.
        gemm_serial(dst, n, lhs, rhs, (m, k, n), accumulate);
        return;
    }
    let dst_ptr = SendPtr(dst);
    if m >= n {
        let top = m / 2;
        let lower = MatrixRef { data: &lhs.data[top * lhs.row_stride..], ..lhs };
        rayon::join(
            // SAFETY: the halves write disjoint rows of `dst`; operands checked above.
            || unsafe { gemm_serial(dst_ptr.get(), n, lhs, rhs, (top, k, n), accumulate) },
            || unsafe { gemm_serial(dst_ptr.get().add(top * n), n, lower, rhs, (m - top, k, n), accumulate) },
        );
    } else {
        let left = n / 2;
        let right = MatrixRef { data: &rhs.data[left * rhs.col_stride..], ..rhs };
        rayon::join(
            // SAFETY: the halves write disjoint columns of `dst`; operands checked above.
            || unsafe { gemm_serial(dst_ptr.get(), n, lhs, rhs, (m, k, left), accumulate) },
            || unsafe { gemm_serial(dst_ptr.get().add(left), n, lhs, right, (m, k, n - left), accumulate) },
        );
    }
}

/// A raw output pointer handed to the two halves of a split product, which write disjoint
/// parts of it.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: only used to write disjoint regions from the two sides of one `rayon::join`.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst (+)= lhs * rhs` (`m x k` times `k x n`) on the calling thread, `dst` row-major with
/// rows `dst_row_stride` apart.
///
/// # Safety
/// The operands must cover `m x k` and `k x n`; `dst` must be valid for writes of `m` rows of
/// `n` elements `dst_row_stride` apart, and not alias the operands.
unsafe fn gemm_serial(
    dst: *mut f32,
    dst_row_stride: usize,
    lhs: MatrixRef<'_>,
    rhs: MatrixRef<'_>,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    debug_assert!(lhs.covers(m, k) && rhs.covers(k, n));
    #[cfg(target_arch = "x86_64")]
    if crate::dispatch::gemm(&lhs, &rhs, k, n) == crate::dispatch::Gemm::Narrow {
        // SAFETY: the dispatcher checked AVX-512F and `matmul_narrow::takes`; the operands cover their shapes (checked by the callers)
        // and `dst` is as this function requires.
        unsafe { crate::matmul_narrow::gemm(dst, dst_row_stride, lhs, rhs, (m, k, n), accumulate) };
        return;
    }
    // gemm-f32's kernel, called as the `gemm` crate's generic entry calls it for f32: its
    // microkernels prefer a column-major destination, so a row-major one is computed as the
    // transposed product `dst^T = rhs^T lhs^T` (all strides here are positive).
    let gemm_f32 = gemm_f32::gemm::f32::get_gemm_fn();
    let (lhs_ptr, lhs_cs, lhs_rs) = (lhs.data.as_ptr(), lhs.col_stride as isize, lhs.row_stride as isize);
    let (rhs_ptr, rhs_cs, rhs_rs) = (rhs.data.as_ptr(), rhs.col_stride as isize, rhs.row_stride as isize);
    let dst_rs = dst_row_stride as isize;
    // (rows, columns, destination column and row strides, left and right operands with theirs)
    let (m, n, dst_cs, dst_rs, a, a_cs, a_rs, b, b_cs, b_rs) = if 1 < dst_rs {
        (n, m, dst_rs, 1, rhs_ptr, rhs_rs, rhs_cs, lhs_ptr, lhs_rs, lhs_cs)
    } else {
        (m, n, 1, dst_rs, lhs_ptr, lhs_cs, lhs_rs, rhs_ptr, rhs_cs, rhs_rs)
    };
    let (conj_dst, conj_a, conj_b) = (false, false, false);
    #[rustfmt::skip]
    gemm_f32(
        m, n, k, dst, dst_cs, dst_rs, accumulate, a, a_cs, a_rs, b, b_cs, b_rs, 1.0, 1.0, conj_dst, conj_a,
        conj_b, Parallelism::None,
    );
}

/// `C[batch, m, n] = op(A) op(B)` (+ `bias[n]` on every row), as [`tensor::MatmulOps::matmul`]
/// specifies: `A` is `[batch, m, k]` (or `[batch, k, m]` with `trans_a`), `B` is
/// `[batch, k, n]` (or `[batch, n, k]` with `trans_b`).
///
/// # Panics
/// If `a`, `b` or `bias` is shorter than the spec implies.
pub fn matmul(a: &[f32], b: &[f32], bias: Option<&[f32]>, spec: &MatmulSpec) -> Vec<f32> {
    let &MatmulSpec { batch, m, k, n, trans_a, trans_b } = spec;
    let (a_len, b_len, c_len) = (m * k, k * n, m * n);
    assert!(a.len() >= batch * a_len && b.len() >= batch * b_len, "matmul: operand too short");
    if c_len == 0 {
        return crate::buffers::take_zeroed(batch * c_len);
    }
    let product = |index: usize, dst: *mut f32, parallel: bool| {
        let a = &a[index * a_len..(index + 1) * a_len];
        let b = &b[index * b_len..(index + 1) * b_len];
        let lhs = if trans_a { MatrixRef::transposed(a, m) } else { MatrixRef::row_major(a, k) };
        let rhs = if trans_b { MatrixRef::transposed(b, k) } else { MatrixRef::row_major(b, n) };
        // SAFETY: `dst` is one product's `c_len` elements (initialised to the bias where
        // `bias` is given, otherwise only written).
        unsafe { gemm_to(dst, lhs, rhs, (m, k, n), bias.is_some(), parallel) };
    };
    let macs = m * n * k;
    // Many small products: one thread per product beats splitting each one.
    let per_product = batch > 1 && macs < PARALLEL_MIN_MACS && batch * macs >= BATCH_PARALLEL_MIN_MACS;
    match bias {
        Some(bias) => {
            assert!(bias.len() >= n, "matmul: bias too short");
            // Start every row at the bias and let gemm accumulate onto it.
            let mut out = crate::buffers::take(batch * c_len);
            for _ in 0..batch * m {
                out.extend_from_slice(&bias[..n]);
            }
            if per_product {
                out.par_chunks_mut(c_len)
                    .enumerate()
                    .for_each(|(i, dst)| product(i, dst.as_mut_ptr(), false));
            } else {
                out.chunks_mut(c_len).enumerate().for_each(|(i, dst)| product(i, dst.as_mut_ptr(), true));
            }
            out
        }
        // No zeroing first: gemm overwrites every element (a 1.5 MB memset per dense-layer
        // gradient otherwise).
        // SAFETY: `product` writes all `c_len` elements of its piece.
        None => unsafe {
            crate::buffers::build_chunks(batch * c_len, c_len, per_product, |i, dst| {
                product(i, dst.as_mut_ptr().cast(), !per_product)
            })
        },
    }
}

impl MatmulOps for CpuBackend {
    fn matmul(&self, a: &Storage, b: &Storage, bias: Option<&Storage>, spec: &MatmulSpec) -> Result<Storage> {
        let (a, b) = (cpu_slice(a, "matmul")?, cpu_slice(b, "matmul")?);
        let bias = bias.map(|s| cpu_slice(s, "matmul")).transpose()?;
        Ok(store(self.run(|| matmul(a, b, bias, spec))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Naive f64 product reading the operands as the spec says.
    fn reference(a: &[f32], b: &[f32], bias: Option<&[f32]>, s: &MatmulSpec) -> Vec<f64> {
        let mut out = vec![0.0f64; s.batch * s.m * s.n];
        for t in 0..s.batch {
            let (a, b) = (&a[t * s.m * s.k..], &b[t * s.k * s.n..]);
            for i in 0..s.m {
                for j in 0..s.n {
                    let mut acc = bias.map_or(0.0, |bias| bias[j] as f64);
                    for p in 0..s.k {
                        let av = if s.trans_a { a[p * s.m + i] } else { a[i * s.k + p] };
                        let bv = if s.trans_b { b[j * s.k + p] } else { b[p * s.n + j] };
                        acc += av as f64 * bv as f64;
                    }
                    out[t * s.m * s.n + i * s.n + j] = acc;
                }
            }
        }
        out
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(err <= tol * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn matches_reference_for_all_transposes_and_batches() {
        let mut rng = StdRng::seed_from_u64(1);
        for &(batch, m, k, n) in &[(1, 7, 13, 5), (3, 9, 4, 11), (2, 1, 17, 1), (1, 67, 129, 33)] {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    let spec = MatmulSpec { batch, m, k, n, trans_a, trans_b };
                    let a = random(batch * m * k, &mut rng);
                    let b = random(batch * k * n, &mut rng);
                    let bias = random(n, &mut rng);
                    assert_close(&matmul(&a, &b, None, &spec), &reference(&a, &b, None, &spec), 1e-5);
                    let got = matmul(&a, &b, Some(&bias), &spec);
                    assert_close(&got, &reference(&a, &b, Some(&bias), &spec), 1e-5);
                }
            }
        }
    }

    #[test]
    fn big_and_many_small_products_use_threads_correctly() {
        let mut rng = StdRng::seed_from_u64(2);
        // Big enough for gemm's own threading, and a batch of small products in parallel.
        // Split by rows, by columns, a single output (no split), many small products.
        for &(batch, m, k, n) in &[(1, 131, 257, 67), (1, 67, 257, 131), (1, 1, 1 << 21, 1), (40, 23, 31, 19)]
        {
            let spec = MatmulSpec { batch, m, k, n, trans_a: false, trans_b: true };
            let a = random(batch * m * k, &mut rng);
            let b = random(batch * k * n, &mut rng);
            assert_close(&matmul(&a, &b, None, &spec), &reference(&a, &b, None, &spec), 1e-5);
        }
    }

    #[test]
    fn empty_contraction_gives_bias() {
        let spec = MatmulSpec { batch: 2, m: 2, k: 0, n: 3, trans_a: false, trans_b: false };
        let out = matmul(&[], &[], Some(&[1.0, 2.0, 3.0]), &spec);
        assert_eq!(out, [1.0, 2.0, 3.0].repeat(4));
        assert_eq!(matmul(&[], &[], None, &spec), vec![0.0; 12]);
    }
}
