//! The AVX-512 kernels of the Winograd F(2x2, 3x3) convolution (see the module's page): the
//! driver of every tile size's input transform ([`input_tiles`], F(2x2)'s here and F(4x4)'s
//! in `f4_avx512.rs`), the products per tile position, and the transform of output
//! tiles with the bias, the 2x2 max pool and the ReLU. Channels are the vector lanes; a
//! block of tiles is laid out as described by [`Planes`].

// Register arrays indexed alongside the planes.
#![allow(clippy::needless_range_loop)]

use super::input_images::{InputImages, TileAt};
use crate::buffers::LINE_FLOATS;
use crate::conv2d_direct::simd::{Avx512, Simd};
use std::arch::x86_64::*;
use std::ops::Range;

/// Floats per register.
pub(super) const LANES: usize = Avx512::LANES;

/// A buffer of `tiles` tiles, each `positions` rows (one per position `xi` of the tile: 16
/// for F(2x2, 3x3)'s 4x4 tiles, 36 for F(4x4, 3x3)'s 6x6) of `lanes` floats. Tile-major
/// (the pooled kernel): the value of channel `c` of tile `t` at position `xi` is at
/// `(t * positions + xi) * lanes + c`, so a transform writes (or reads) one run.
/// Position-major (`xi_major`, the plain kernels' larger blocks): at
/// `xi * plane + t * lanes + c`, so a product's rows for one position are adjacent, where
/// tile-major rows a multiple of 4 KiB apart would share one L1 set. `plane` is
/// `tiles * lanes` rounded up to an odd number of cache lines: a transform touches one line
/// of each position's plane, and planes an even number of lines apart would crowd those 16
/// or 36 lines into a few of L1's 64 sets (with 24 tiles of 64 lanes, planes 6 KiB apart,
/// into two: F(4x4)'s input transform took 2.8x as long).
#[derive(Clone, Copy)]
pub(super) struct Planes {
    pub(super) tiles: usize,
    pub(super) lanes: usize,
    pub(super) xi_major: bool,
    pub(super) positions: usize,
}

impl Planes {
    pub(super) fn len(self) -> usize {
        if self.xi_major {
            self.positions * self.plane()
        } else {
            self.positions * self.tiles * self.lanes
        }
    }

    /// Floats from one position's plane to the next (`xi_major`).
    #[inline(always)]
    fn plane(self) -> usize {
        let lines = (self.tiles * self.lanes).div_ceil(LINE_FLOATS);
        (lines | 1) * LINE_FLOATS
    }

    #[inline(always)]
    pub(super) fn at(self, xi: usize, tile: usize) -> usize {
        if self.xi_major {
            xi * self.plane() + tile * self.lanes
        } else {
            (tile * self.positions + xi) * self.lanes
        }
    }

    /// Floats from one tile to the next.
    #[inline(always)]
    pub(super) fn tile_stride(self) -> usize {
        if self.xi_major {
            self.lanes
        } else {
            self.positions * self.lanes
        }
    }

    /// Floats from one position to the next.
    #[inline(always)]
    pub(super) fn xi_stride(self) -> usize {
        if self.xi_major {
            self.plane()
        } else {
            self.lanes
        }
    }
}

/// The columns of `B^T d` a tile shares with the tile to its right (`ALPHA - STEP` of them,
/// `ALPHA` values each), which that tile takes instead of loading and transforming them
/// again: at most F(4x4)'s 2 x 6.
pub(super) type Carry = [__m512; 12];

/// A tile size's input transform `V = B^T d B`: F(2x2, 3x3)'s ([`F2Input`]) or F(4x4, 3x3)'s
/// (`f4_avx512::F4Input`).
pub(super) trait InputTransform {
    /// Output pixels per tile side: tile `(ty, tx)` of an image starts at row `STEP ty -
    /// pad_top`, column `STEP tx - pad_left`.
    const STEP: usize;
    /// Input pixels per tile side.
    const ALPHA: usize;

    /// `V` of one tile's channels `lane..lane + 16` (see [`TileAt::load`]), stored as its
    /// `ALPHA^2` rows from `out`, `xi_stride` apart. `SHARED`: `carry` holds the columns this
    /// tile shares with the tile to its left, of the same channels, left there by that tile's
    /// call; every call leaves its own rightmost columns in `carry` (a transform may also
    /// ignore it, as F(2x2)'s does). The values are the same either way.
    ///
    /// # Safety
    /// As [`TileAt::load`]'s; `out` holds the rows.
    unsafe fn tile<const INSIDE: bool, const SHARED: bool>(
        at: &TileAt,
        lane: usize,
        mask: __mmask16,
        out: *mut f32,
        xi_stride: usize,
        carry: &mut Carry,
    );
}

/// Most tiles of one row [`input_tiles`] takes in one pass over their channels.
const RUN: usize = 8;

/// `V = B^T d B` of the input tiles `tiles` of `images` by `T` (zeros outside the images),
/// into rows `0..tiles.len()` of `v`. Lanes past `in_c` are stored as zeros. Tiles go by runs
/// of neighbours in a row, each run a channel register at a time, so that each tile takes the
/// columns it shares with its left neighbour from the carry (the input transform's loads from
/// L2 were about a third of its time).
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input_tiles<T: InputTransform>(
    images: &InputImages<'_>,
    tiles: Range<usize>,
    planes: Planes,
    v: &mut [f32],
) {
    let c = images.in_c;
    assert!(tiles.len() <= planes.tiles && v.len() >= planes.len() && c <= planes.lanes);
    assert_eq!(planes.positions, T::ALPHA * T::ALPHA, "the transform's tiles");
    images.check(&tiles);
    let mut carry: Carry = [_mm512_setzero_ps(); 12];
    let (mut start, xi_stride) = (tiles.start, planes.xi_stride());
    while start < tiles.end {
        // Tiles `start..end`: neighbours in one row of tiles of one image.
        let end = tiles.end.min(images.row_end(start)).min(start + RUN);
        let first = images.tile(start, T::STEP, T::ALPHA);
        let mut run = [first; RUN];
        for (k, at) in run.iter_mut().enumerate().take(end - start).skip(1) {
            *at = images.tile(start + k, T::STEP, T::ALPHA);
        }
        for lane in (0..planes.lanes).step_by(LANES) {
            let mask = lane_mask(c.saturating_sub(lane));
            for (k, at) in run.iter().enumerate().take(end - start) {
                let out = v.as_mut_ptr().add(planes.at(0, start - tiles.start + k) + lane);
                match (at.inside, k > 0) {
                    (true, true) => T::tile::<true, true>(at, lane, mask, out, xi_stride, &mut carry),
                    (true, false) => T::tile::<true, false>(at, lane, mask, out, xi_stride, &mut carry),
                    (false, true) => T::tile::<false, true>(at, lane, mask, out, xi_stride, &mut carry),
                    (false, false) => T::tile::<false, false>(at, lane, mask, out, xi_stride, &mut carry),
                }
            }
        }
        start = end;
    }
}

/// F(2x2, 3x3)'s input transform: 4x4 tiles, 2 apart.
pub(super) struct F2Input;

impl InputTransform for F2Input {
    const STEP: usize = 2;
    const ALPHA: usize = 4;

    #[inline(always)]
    unsafe fn tile<const INSIDE: bool, const SHARED: bool>(
        at: &TileAt,
        lane: usize,
        mask: __mmask16,
        out: *mut f32,
        xi_stride: usize,
        _carry: &mut Carry,
    ) {
        let mut d = [[_mm512_setzero_ps(); 4]; 4];
        for r in 0..4 {
            for s in 0..4 {
                d[r][s] = at.load::<INSIDE>(r, s, lane, mask);
            }
        }
        // Rows: B^T d.
        let mut rows = [[_mm512_setzero_ps(); 4]; 4];
        for s in 0..4 {
            rows[0][s] = sub(d[0][s], d[2][s]);
            rows[1][s] = add(d[1][s], d[2][s]);
            rows[2][s] = sub(d[2][s], d[1][s]);
            rows[3][s] = sub(d[1][s], d[3][s]);
        }
        // Columns: (B^T d) B, stored as the tile's 16 rows.
        let mut out = out;
        for row in rows {
            for value in [sub(row[0], row[2]), add(row[1], row[2]), sub(row[2], row[1]), sub(row[1], row[3])]
            {
                _mm512_storeu_ps(out, value);
                out = out.add(xi_stride);
            }
        }
    }
}

/// The first `used` lanes of a register (all where `used >= LANES`).
#[inline(always)]
pub(super) fn lane_mask(used: usize) -> __mmask16 {
    if used >= LANES {
        0xffff
    } else {
        ((1u32 << used) - 1) as __mmask16
    }
}

#[inline(always)]
pub(super) fn add(a: __m512, b: __m512) -> __m512 {
    // SAFETY: only inlined into the `avx512f` kernels of this module and of `plain_avx512`.
    unsafe { _mm512_add_ps(a, b) }
}

#[inline(always)]
pub(super) fn sub(a: __m512, b: __m512) -> __m512 {
    // SAFETY: as for `add`.
    unsafe { _mm512_sub_ps(a, b) }
}

/// `M[xi][t] = sum over k < in_c of V[xi][t][k] * U[xi][k]` for every position and tile:
/// blocks of `TB` tiles by `NV` registers of output channels in registers, each input
/// channel broadcast from `v` and its filter row loaded once per block.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn forward_products<const NV: usize, const TB: usize>(
    v: &[f32],
    in_planes: Planes,
    in_c: usize,
    u: &[f32],
    m: &mut [f32],
) {
    let tiles = in_planes.tiles;
    let out_planes = Planes { tiles, lanes: NV * LANES, xi_major: in_planes.xi_major, positions: 16 };
    assert!(tiles.is_multiple_of(TB) && in_c <= in_planes.lanes && v.len() >= in_planes.len());
    assert_eq!(in_planes.positions, 16, "F(2x2, 3x3) tiles");
    assert!(u.len() >= 16 * in_c * NV * LANES && m.len() >= out_planes.len());
    for xi in 0..16 {
        let u = u.as_ptr().add(xi * in_c * NV * LANES);
        for block in (0..tiles).step_by(TB) {
            let mut acc = [[_mm512_setzero_ps(); NV]; TB];
            let v = v.as_ptr().add(in_planes.at(xi, block));
            for k in 0..in_c {
                let mut row = [_mm512_setzero_ps(); NV];
                for n in 0..NV {
                    row[n] = _mm512_loadu_ps(u.add(k * NV * LANES + n * LANES));
                }
                for t in 0..TB {
                    let a = _mm512_set1_ps(*v.add(t * in_planes.tile_stride() + k));
                    for n in 0..NV {
                        acc[t][n] = _mm512_fmadd_ps(a, row[n], acc[t][n]);
                    }
                }
            }
            let out = m.as_mut_ptr().add(out_planes.at(xi, block));
            for t in 0..TB {
                for n in 0..NV {
                    _mm512_storeu_ps(out.add(t * out_planes.tile_stride() + n * LANES), acc[t][n]);
                }
            }
        }
    }
}

/// What the output transform writes: per tile, `out_c` pooled values and their winners.
pub(super) struct PooledOut<'a> {
    pub(super) pooled: &'a mut [f32],
    pub(super) winners: &'a mut [f32],
    pub(super) out_c: usize,
    /// Whether a ReLU follows the pooling.
    pub(super) relu: bool,
}

/// `Y = A^T M A + bias` of tiles `0..count`, max-pooled: each tile is one 2x2 window, whose
/// winner is the first strictly greatest of its values in scan order (what the backward
/// pass reads), then the ReLU where asked, by the direct kernels' `max_step` and
/// `relu_step`.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output_tiles(m: &[f32], planes: Planes, count: usize, bias: &[f32], out: PooledOut<'_>) {
    let c = out.out_c;
    assert!(count <= planes.tiles && m.len() >= planes.len() && bias.len() >= planes.lanes);
    assert!(c <= planes.lanes && out.pooled.len() >= count * c && out.winners.len() >= count * c);
    assert_eq!(planes.positions, 16, "F(2x2, 3x3) tiles");
    let ks = [Avx512::splat(1.0), Avx512::splat(2.0), Avx512::splat(3.0)];
    let none = Avx512::splat(crate::winners::NO_WINNER);
    for tile in 0..count {
        for lane in (0..c).step_by(LANES) {
            let mask = Avx512::mask((c - lane).min(LANES));
            let mut x = [_mm512_setzero_ps(); 16];
            for xi in 0..16 {
                x[xi] = _mm512_loadu_ps(m.as_ptr().add(planes.at(xi, tile) + lane));
            }
            // Rows: A^T M.
            let (mut t0, mut t1) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 4]);
            for j in 0..4 {
                t0[j] = add(add(x[j], x[4 + j]), x[8 + j]);
                t1[j] = sub(sub(x[4 + j], x[8 + j]), x[12 + j]);
            }
            // Columns, in the window's scan order, plus the bias.
            let b = _mm512_loadu_ps(bias.as_ptr().add(lane));
            let y = [
                add(add(add(t0[0], t0[1]), t0[2]), b),
                add(sub(sub(t0[1], t0[2]), t0[3]), b),
                add(add(add(t1[0], t1[1]), t1[2]), b),
                add(sub(sub(t1[1], t1[2]), t1[3]), b),
            ];
            let (mut max, mut arg) = (y[0], Avx512::zero());
            for k in 1..4 {
                (max, arg) = Avx512::max_step(y[k], max, ks[k - 1], arg);
            }
            if out.relu {
                (max, arg) = Avx512::relu_step(max, arg, none);
            }
            let at = tile * c + lane;
            _mm512_mask_storeu_ps(out.pooled.as_mut_ptr().add(at), mask, max);
            _mm512_mask_storeu_ps(out.winners.as_mut_ptr().add(at), mask, arg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of a block has its own float inside `len`, and position-major planes are
    /// an odd number of cache lines apart.
    #[test]
    fn planes_hold_every_value_once() {
        for (tiles, lanes, positions) in [(24, 64, 36), (24, 32, 36), (48, 32, 16), (7, 16, 16), (1, 48, 36)]
        {
            for xi_major in [false, true] {
                let planes = Planes { tiles, lanes, xi_major, positions };
                let mut seen = vec![false; planes.len()];
                for xi in 0..positions {
                    for tile in 0..tiles {
                        let at = planes.at(xi, tile);
                        assert_eq!(at + planes.tile_stride(), planes.at(xi, tile + 1));
                        for c in 0..lanes {
                            assert!(!std::mem::replace(&mut seen[at + c], true), "{xi} {tile} {c}");
                        }
                    }
                    if xi + 1 < positions {
                        assert_eq!(planes.at(xi, 0) + planes.xi_stride(), planes.at(xi + 1, 0));
                    }
                }
                if xi_major {
                    let lines = planes.xi_stride() / LINE_FLOATS;
                    assert!(lines % 2 == 1 && lines * LINE_FLOATS >= tiles * lanes, "{lines}");
                }
            }
        }
    }
}
