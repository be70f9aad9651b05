//! The AVX-512 kernels of the plain (unpooled) Winograd convolutions (see `plain.rs`): the
//! products per tile position for one group of output channels (any tile size), and for
//! F(2x2, 3x3) the output transform into NHWC images and the filter gradient's transform of
//! output-gradient tiles (F(4x4, 3x3)'s transforms are in `f4_avx512.rs`; both tile sizes'
//! input transforms run through `avx512::input_tiles`). Channels are the vector lanes; blocks of tiles are
//! laid out as [`Planes`] describes.

// Register arrays indexed alongside the planes.
#![allow(clippy::needless_range_loop)]

use super::avx512::{add, lane_mask, sub, Planes, LANES};
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Where `size` x `size` tiles sit in a few NHWC images of `out_h` x `out_w` pixels of
/// `out_c` channels: tile `t` is tile `t % per_image` (scan order over `tiles_w` per row) of
/// image `t / per_image`. Tiles hang over the bottom and right edges where a size is not a
/// multiple of `size`.
#[derive(Clone, Copy)]
pub(super) struct TileGrid {
    pub(super) size: usize,
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    pub(super) out_c: usize,
    pub(super) tiles_w: usize,
    pub(super) per_image: usize,
}

impl TileGrid {
    /// Image, top row and left column of tile `tile`, and how many of its rows and columns
    /// are inside the image.
    #[inline(always)]
    pub(super) fn place(self, tile: usize) -> (usize, usize, usize, usize, usize) {
        let (image, at, n) = (tile / self.per_image, tile % self.per_image, self.size);
        let (oy, ox) = (n * (at / self.tiles_w), n * (at % self.tiles_w));
        (image, oy, ox, (self.out_h - oy).min(n), (self.out_w - ox).min(n))
    }

    /// Offset of pixel `(oy, ox)` of `image`.
    #[inline(always)]
    pub(super) fn pixel(self, image: usize, oy: usize, ox: usize) -> usize {
        ((image * self.out_h + oy) * self.out_w + ox) * self.out_c
    }

    /// Checks that tiles `first..first + count` lie in images of `len` floats.
    pub(super) fn check(self, first: usize, count: usize, len: usize) {
        assert!(self.per_image > 0 && self.tiles_w > 0 && self.out_c > 0);
        if count > 0 {
            let images = (first + count - 1) / self.per_image + 1;
            assert!(images * self.out_h * self.out_w * self.out_c <= len, "tile outside the images");
        }
    }
}

/// `M[xi][t][group..group + NV * LANES] = sum over k < in_c of V[xi][t][k] * U[xi][k][..]`
/// for every position `xi` and tiles `0..tiles`: blocks of `TB` tiles by `NV` registers of
/// output channels in registers, each input channel broadcast from `v`. `U` is
/// `[positions][in_c][m_planes.lanes]`.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn products<const NV: usize, const TB: usize>(
    (v, v_planes): (&[f32], Planes),
    in_c: usize,
    u: &[f32],
    (m, m_planes): (&mut [f32], Planes),
    group: usize,
    tiles: usize,
) {
    let (u_lanes, positions) = (m_planes.lanes, m_planes.positions);
    assert!(tiles.is_multiple_of(TB) && tiles <= v_planes.tiles && tiles <= m_planes.tiles);
    assert!(in_c <= v_planes.lanes && group + NV * LANES <= u_lanes && v_planes.positions == positions);
    assert!(v.len() >= v_planes.len() && m.len() >= m_planes.len());
    assert!(u.len() >= positions * in_c * u_lanes);
    for xi in 0..positions {
        let u = u.as_ptr().add(xi * in_c * u_lanes + group);
        for block in (0..tiles).step_by(TB) {
            let mut acc = [[_mm512_setzero_ps(); NV]; TB];
            let v = v.as_ptr().add(v_planes.at(xi, block));
            for k in 0..in_c {
                let mut row = [_mm512_setzero_ps(); NV];
                for n in 0..NV {
                    row[n] = _mm512_loadu_ps(u.add(k * u_lanes + n * LANES));
                }
                for t in 0..TB {
                    let a = _mm512_set1_ps(*v.add(t * v_planes.tile_stride() + k));
                    for n in 0..NV {
                        acc[t][n] = _mm512_fmadd_ps(a, row[n], acc[t][n]);
                    }
                }
            }
            let out = m.as_mut_ptr().add(m_planes.at(xi, block) + group);
            for t in 0..TB {
                for n in 0..NV {
                    _mm512_storeu_ps(out.add(t * m_planes.tile_stride() + n * LANES), acc[t][n]);
                }
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
    assert!(c <= planes.lanes && planes.positions == 16 && grid.size == 2);
    grid.check(first, count, y.len());
    for row in 0..count {
        let (image, oy, ox, rows, cols) = grid.place(first + row);
        let corner = y.as_mut_ptr().cast::<f32>().add(grid.pixel(image, oy, ox));
        let step = [0, grid.out_c, grid.out_w * grid.out_c, (grid.out_w + 1) * grid.out_c];
        for lane in (0..c).step_by(LANES) {
            let mask = lane_mask(c - lane);
            let mut x = [_mm512_setzero_ps(); 16];
            for xi in 0..16 {
                x[xi] = _mm512_loadu_ps(m.as_ptr().add(planes.at(xi, row) + lane));
            }
            // Rows: A^T M.
            let (mut t0, mut t1) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 4]);
            for j in 0..4 {
                t0[j] = add(add(x[j], x[4 + j]), x[8 + j]);
                t1[j] = sub(sub(x[4 + j], x[8 + j]), x[12 + j]);
            }
            // Columns, plus the bias, in scan order.
            let b = _mm512_loadu_ps(bias.as_ptr().add(lane));
            let out = [
                add(add(add(t0[0], t0[1]), t0[2]), b),
                add(sub(sub(t0[1], t0[2]), t0[3]), b),
                add(add(add(t1[0], t1[1]), t1[2]), b),
                add(sub(sub(t1[1], t1[2]), t1[3]), b),
            ];
            for k in 0..4 {
                if k / 2 < rows && k % 2 < cols {
                    _mm512_mask_storeu_ps(corner.add(step[k] + lane), mask, out[k]);
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
    assert!(planes.positions == 16 && grid.size == 2);
    grid.check(first, count, dy.len());
    for row in 0..count {
        let (image, oy, ox, rows, cols) = grid.place(first + row);
        let corner = dy.as_ptr().add(grid.pixel(image, oy, ox));
        let step = [0, grid.out_c, grid.out_w * grid.out_c, (grid.out_w + 1) * grid.out_c];
        for lane in (0..planes.lanes).step_by(LANES) {
            let mask = lane_mask(c.saturating_sub(lane));
            let mut d = [_mm512_setzero_ps(); 4];
            for k in 0..4 {
                if k / 2 < rows && k % 2 < cols {
                    d[k] = _mm512_maskz_loadu_ps(mask, corner.add(step[k] + lane));
                }
            }
            // Rows: A dY (4x2), A = [1 0; 1 1; 1 -1; 0 -1].
            let zero = _mm512_setzero_ps();
            let r = [
                [d[0], d[1]],
                [add(d[0], d[2]), add(d[1], d[3])],
                [sub(d[0], d[2]), sub(d[1], d[3])],
                [sub(zero, d[2]), sub(zero, d[3])],
            ];
            // Columns: (A dY) A^T, stored as the tile's 16 rows.
            let mut out = z.as_mut_ptr().add(planes.at(0, row) + lane);
            for [a, b] in r {
                for value in [a, add(a, b), sub(a, b), sub(zero, b)] {
                    _mm512_storeu_ps(out, value);
                    out = out.add(planes.xi_stride());
                }
            }
        }
    }
}

/// `dU[xi][c][group..group + NV * LANES] += sum over t < count of V[xi][t][c] * Z[xi][t][..]`
/// for every input lane `c` (rows past the input channels hold sums of whatever those lanes
/// held), at every position: blocks of `TC` input lanes by `NV` registers of output
/// channels in registers, summed over the tiles in order. `dU` is
/// `[positions][v_planes.lanes][z_planes.lanes]`.
///
/// # Safety
/// The CPU has AVX-512F (the bounds are checked).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn gradient_products<const TC: usize, const NV: usize>(
    (v, v_planes): (&[f32], Planes),
    (z, z_planes): (&[f32], Planes),
    count: usize,
    group: usize,
    du: &mut [f32],
) {
    let (in_lanes, out_lanes, positions) = (v_planes.lanes, z_planes.lanes, z_planes.positions);
    assert!(count <= v_planes.tiles && count <= z_planes.tiles && in_lanes.is_multiple_of(TC));
    assert!(v.len() >= v_planes.len() && z.len() >= z_planes.len() && group + NV * LANES <= out_lanes);
    assert!(du.len() >= positions * in_lanes * out_lanes && v_planes.positions == positions);
    for xi in 0..positions {
        for c0 in (0..in_lanes).step_by(TC) {
            let mut acc = [[_mm512_setzero_ps(); NV]; TC];
            let mut vp = v.as_ptr().add(v_planes.at(xi, 0) + c0);
            let mut zp = z.as_ptr().add(z_planes.at(xi, 0) + group);
            for _ in 0..count {
                let mut row = [_mm512_setzero_ps(); NV];
                for n in 0..NV {
                    row[n] = _mm512_loadu_ps(zp.add(n * LANES));
                }
                for c in 0..TC {
                    let a = _mm512_set1_ps(*vp.add(c));
                    for n in 0..NV {
                        acc[c][n] = _mm512_fmadd_ps(a, row[n], acc[c][n]);
                    }
                }
                vp = vp.add(v_planes.tile_stride());
                zp = zp.add(z_planes.tile_stride());
            }
            let out = du.as_mut_ptr().add((xi * in_lanes + c0) * out_lanes + group);
            for c in 0..TC {
                for n in 0..NV {
                    let p = out.add(c * out_lanes + n * LANES);
                    _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), acc[c][n]));
                }
            }
        }
    }
}
