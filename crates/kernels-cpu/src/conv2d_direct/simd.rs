//! The few vector operations the direct kernels (and `conv2d_winograd`'s pooling) use, for
//! each instruction set they are built for. The kernels (`kernels.rs`) are written once over
//! [`Simd`]; `avx2.rs` and `avx512.rs` compile them inside functions with the matching
//! `#[target_feature]`, into which these `#[inline(always)]` wrappers and the intrinsics they
//! call are inlined.

use std::arch::x86_64::*;

/// A vector of `LANES` f32 and its masked loads and stores.
pub(crate) trait Simd {
    /// Channels per register.
    const LANES: usize;
    /// One register.
    type V: Copy;
    /// Which lanes of a register are used.
    type Mask: Copy;
    /// The first `used` lanes.
    unsafe fn mask(used: usize) -> Self::Mask;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// Loads the masked lanes, zeros elsewhere (reads nothing outside the mask).
    unsafe fn load_masked(p: *const f32, mask: Self::Mask) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores the masked lanes only.
    unsafe fn store_masked(p: *mut f32, mask: Self::Mask, v: Self::V);
    /// `a * b + c`.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// Where `v > max` (ordered: a NaN never wins), `(v, k)`, else `(max, arg)`: one step
    /// of a running maximum and its position.
    unsafe fn max_step(v: Self::V, max: Self::V, k: Self::V, arg: Self::V) -> (Self::V, Self::V);
    /// A ReLU of pooled values and their winners: where `max > 0` fails (NaN included),
    /// `(0, none)`, else `(max, arg)`.
    unsafe fn relu_step(max: Self::V, arg: Self::V, none: Self::V) -> (Self::V, Self::V);
    /// `v` where `a == b`, else 0.
    unsafe fn select_eq(a: Self::V, b: Self::V, v: Self::V) -> Self::V;
}

/// AVX2 + FMA: 8 lanes.
pub(crate) struct Avx2;

/// AVX-512F: 16 lanes.
pub(crate) struct Avx512;

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;
    type Mask = __m256i;
    #[inline(always)]
    unsafe fn mask(used: usize) -> __m256i {
        let lanes: [i32; 8] = std::array::from_fn(|i| if i < used { -1 } else { 0 });
        _mm256_loadu_si256(lanes.as_ptr().cast())
    }
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, mask: __m256i) -> __m256 {
        _mm256_maskload_ps(p, mask)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, mask: __m256i, v: __m256) {
        _mm256_maskstore_ps(p, mask, v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max_step(v: __m256, max: __m256, k: __m256, arg: __m256) -> (__m256, __m256) {
        let greater = _mm256_cmp_ps::<_CMP_GT_OQ>(v, max);
        (_mm256_blendv_ps(max, v, greater), _mm256_blendv_ps(arg, k, greater))
    }
    #[inline(always)]
    unsafe fn relu_step(max: __m256, arg: __m256, none: __m256) -> (__m256, __m256) {
        let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(max, _mm256_setzero_ps());
        (_mm256_and_ps(max, positive), _mm256_blendv_ps(none, arg, positive))
    }
    #[inline(always)]
    unsafe fn select_eq(a: __m256, b: __m256, v: __m256) -> __m256 {
        _mm256_and_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, b), v)
    }
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;
    type Mask = __mmask16;
    #[inline(always)]
    unsafe fn mask(used: usize) -> __mmask16 {
        ((1u32 << used) - 1) as __mmask16
    }
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, mask: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(mask, p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, mask: __mmask16, v: __m512) {
        _mm512_mask_storeu_ps(p, mask, v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max_step(v: __m512, max: __m512, k: __m512, arg: __m512) -> (__m512, __m512) {
        let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, max);
        (_mm512_mask_blend_ps(greater, max, v), _mm512_mask_blend_ps(greater, arg, k))
    }
    #[inline(always)]
    unsafe fn relu_step(max: __m512, arg: __m512, none: __m512) -> (__m512, __m512) {
        let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(max, _mm512_setzero_ps());
        (_mm512_maskz_mov_ps(positive, max), _mm512_mask_blend_ps(positive, none, arg))
    }
    #[inline(always)]
    unsafe fn select_eq(a: __m512, b: __m512, v: __m512) -> __m512 {
        _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b), v)
    }
}
