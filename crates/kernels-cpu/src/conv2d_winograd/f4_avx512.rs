//! The AVX-512 transforms of Winograd's F(4x4, 3x3) for the plain convolutions (see
//! `plain.rs`): input tiles `V = B^T d B` (6x6, read in place from the images), output tiles
//! `Y = A^T M A + bias` (4x4 into NHWC images) and the filter gradient's output-gradient
//! tiles `Z = A dY A^T`. The products per position are `plain_avx512`'s, as for F(2x2).
//!
//! The matrices are Lavin & Gray's, from the points 0, 1, -1, 2, -2 and infinity:
//!
//! ```text
//! B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   A^T = [1 1  1 1  1 0]
//!       [0 -4 -4  1 1 0]       [-1/6  -1/6 -1/6 ]         [0 1 -1 2 -2 0]
//!       [0  4 -4 -1 1 0]       [-1/6   1/6 -1/6 ]         [0 1  1 4  4 0]
//!       [0 -2 -1  2 1 0]       [1/24  1/12  1/6 ]         [0 1 -1 8 -8 1]
//!       [0  2 -1 -2 1 0]       [1/24 -1/12  1/6 ]
//!       [0  4  0 -5 0 1]       [ 0     0     1  ]
//! ```
//!
//! Every entry of `B` and `A` is a small integer, so the transforms are exact but for the
//! rounding of their sums; `G` (with its sixths) runs in f64 in `plain.rs`. Position `xi` of
//! a tile is row `xi / 6`, column `xi % 6`. Each 1-D transform is written with shared
//! partial sums (as in NNPACK), a fixed sequence of operations: the results do not depend
//! on blocks or threads.

// Register arrays indexed alongside the positions.
#![allow(clippy::needless_range_loop)]

use super::avx512::{add, lane_mask, sub, Carry, InputTransform, Planes, LANES};
use super::input_images::TileAt;
use super::plain_avx512::TileGrid;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Output rows and columns per tile.
pub(super) const M: usize = 4;

/// Input rows and columns per tile (`M + 2`).
pub(super) const ALPHA: usize = 6;

/// Positions per tile.
pub(super) const POSITIONS: usize = ALPHA * ALPHA;

/// `G` of F(4x4, 3x3) (`U = G g G^T`), in f64: the sixths do not round to f32 exactly, and
/// the filter transforms sum in f64.
pub(super) const G: [[f64; 3]; ALPHA] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

#[inline(always)]
fn splat(value: f32) -> __m512 {
    // SAFETY: only inlined into this module's `avx512f` kernels.
    unsafe { _mm512_set1_ps(value) }
}

/// `a * b + c`.
#[inline(always)]
fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
    // SAFETY: as for `splat`.
    unsafe { _mm512_fmadd_ps(a, b, c) }
}

/// `c - a * b`.
#[inline(always)]
fn fnma(a: __m512, b: __m512, c: __m512) -> __m512 {
    // SAFETY: as for `splat`.
    unsafe { _mm512_fnmadd_ps(a, b, c) }
}

/// `B^T d` of six values.
#[inline(always)]
fn input_1d(d: [__m512; ALPHA]) -> [__m512; ALPHA] {
    let (four, five, two) = (splat(4.0), splat(5.0), splat(2.0));
    let t0 = fnma(four, d[2], d[4]);
    let t1 = fnma(four, d[1], d[3]);
    let t2 = sub(d[4], d[2]);
    // SAFETY: as for `splat`.
    let t3 = unsafe { _mm512_mul_ps(two, sub(d[3], d[1])) };
    [
        fma(four, d[0], fnma(five, d[2], d[4])),
        add(t0, t1),
        sub(t0, t1),
        add(t2, t3),
        sub(t2, t3),
        fma(four, d[1], fnma(five, d[3], d[5])),
    ]
}

/// `A^T m` of six values.
#[inline(always)]
fn output_1d(m: [__m512; ALPHA]) -> [__m512; M] {
    let (two, four, eight) = (splat(2.0), splat(4.0), splat(8.0));
    let (s1, d1) = (add(m[1], m[2]), sub(m[1], m[2]));
    let (s2, d2) = (add(m[3], m[4]), sub(m[3], m[4]));
    [add(add(m[0], s1), s2), fma(two, d2, d1), fma(four, s2, s1), add(fma(eight, d2, d1), m[5])]
}

/// `A g` of four values (the transpose of [`output_1d`]).
#[inline(always)]
fn gradient_1d(g: [__m512; M]) -> [__m512; ALPHA] {
    let (two, four) = (splat(2.0), splat(4.0));
    let (s, d) = (add(g[0], g[2]), add(g[1], g[3]));
    let (e0, e1) = (fma(four, g[2], g[0]), fma(four, g[3], g[1]));
    [g[0], add(s, d), sub(s, d), fma(two, e1, e0), fnma(two, e1, e0), g[3]]
}

/// F(4x4, 3x3)'s input transform (`avx512::input_tiles`): 6x6 tiles, 4 apart.
pub(super) struct F4Input;

impl InputTransform for F4Input {
    const STEP: usize = M;
    const ALPHA: usize = ALPHA;

    #[inline(always)]
    unsafe fn tile<const INSIDE: bool, const SHARED: bool>(
        at: &TileAt,
        lane: usize,
        mask: __mmask16,
        out: *mut f32,
        xi_stride: usize,
        carry: &mut Carry,
    ) {
        // Columns: B^T d, a column of six pixels at a time; the first two from the left
        // neighbour's last two when it left them.
        let mut t = [[_mm512_setzero_ps(); ALPHA]; ALPHA];
        let shared = ALPHA - M;
        if SHARED {
            for s in 0..shared {
                for r in 0..ALPHA {
                    t[r][s] = carry[s * ALPHA + r];
                }
            }
        }
        for s in if SHARED { shared } else { 0 }..ALPHA {
            let mut d = [_mm512_setzero_ps(); ALPHA];
            for r in 0..ALPHA {
                d[r] = at.load::<INSIDE>(r, s, lane, mask);
            }
            for (r, value) in input_1d(d).into_iter().enumerate() {
                t[r][s] = value;
            }
        }
        for s in 0..shared {
            for r in 0..ALPHA {
                carry[s * ALPHA + r] = t[r][M + s];
            }
        }
        // Rows: (B^T d) B, stored as the tile's 36 rows.
        let mut out = out;
        for r in 0..ALPHA {
            for value in input_1d(t[r]) {
                _mm512_storeu_ps(out, value);
                out = out.add(xi_stride);
            }
        }
    }
}

/// `Y = A^T M A + bias` of rows `0..count` of `m`, which are tiles `first..first + count`
/// of `grid`, stored into `y` (the grid's images): every channel of every pixel of these
/// tiles inside the images, nothing past the images' edges.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output_tiles(
    (m, planes): (&[f32], Planes),
    (first, count): (usize, usize),
    bias: &[f32],
    grid: TileGrid,
    y: &mut [MaybeUninit<f32>],
) {
    let c = grid.out_c;
    assert!(count <= planes.tiles && m.len() >= planes.len() && bias.len() >= planes.lanes);
    assert!(c <= planes.lanes && planes.positions == POSITIONS && grid.size == M);
    grid.check(first, count, y.len());
    for row in 0..count {
        let (image, oy, ox, rows, cols) = grid.place(first + row);
        let corner = y.as_mut_ptr().cast::<f32>().add(grid.pixel(image, oy, ox));
        for lane in (0..c).step_by(LANES) {
            let mask = lane_mask(c - lane);
            // Columns: A^T M, a column of six positions at a time.
            let mut t = [[_mm512_setzero_ps(); ALPHA]; M];
            for j in 0..ALPHA {
                let mut x = [_mm512_setzero_ps(); ALPHA];
                for i in 0..ALPHA {
                    x[i] = _mm512_loadu_ps(m.as_ptr().add(planes.at(i * ALPHA + j, row) + lane));
                }
                for (i, value) in output_1d(x).into_iter().enumerate() {
                    t[i][j] = value;
                }
            }
            // Rows: (A^T M) A, plus the bias, the pixels inside the image.
            let b = _mm512_loadu_ps(bias.as_ptr().add(lane));
            for (r, t) in t.into_iter().enumerate().take(rows) {
                let line = corner.add(r * grid.out_w * c + lane);
                for (s, value) in output_1d(t).into_iter().enumerate().take(cols) {
                    _mm512_mask_storeu_ps(line.add(s * c), mask, add(value, b));
                }
            }
        }
    }
}

/// `Z = A dY A^T` of the output-gradient tiles `first..first + count` of `grid` (read from
/// `dy`, the grid's images) into rows `0..count` of `z`: the gradient of `M` where
/// `Y = A^T M A`. Pixels past the images' edges and lanes past `out_c` count as zeros.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gradient_tiles(
    dy: &[f32],
    grid: TileGrid,
    (first, count): (usize, usize),
    (z, planes): (&mut [f32], Planes),
) {
    let c = grid.out_c;
    assert!(count <= planes.tiles && z.len() >= planes.len() && c <= planes.lanes);
    assert!(planes.positions == POSITIONS && grid.size == M);
    grid.check(first, count, dy.len());
    for row in 0..count {
        let (image, oy, ox, rows, cols) = grid.place(first + row);
        let corner = dy.as_ptr().add(grid.pixel(image, oy, ox));
        for lane in (0..planes.lanes).step_by(LANES) {
            let mask = lane_mask(c.saturating_sub(lane));
            // Columns: A dY, a column of four pixels at a time (zeros outside the image).
            let mut t = [[_mm512_setzero_ps(); M]; ALPHA];
            for s in 0..M {
                let mut g = [_mm512_setzero_ps(); M];
                if s < cols {
                    for r in 0..rows {
                        g[r] = _mm512_maskz_loadu_ps(mask, corner.add((r * grid.out_w + s) * c + lane));
                    }
                }
                for (i, value) in gradient_1d(g).into_iter().enumerate() {
                    t[i][s] = value;
                }
            }
            // Rows: (A dY) A^T, stored as the tile's 36 rows.
            let mut out = z.as_mut_ptr().add(planes.at(0, row) + lane);
            for t in t {
                for value in gradient_1d(t) {
                    _mm512_storeu_ps(out, value);
                    out = out.add(planes.xi_stride());
                }
            }
        }
    }
}
