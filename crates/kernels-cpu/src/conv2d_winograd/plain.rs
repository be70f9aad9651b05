//! Winograd's F(2x2, 3x3) and F(4x4, 3x3) ([`Tile`]) for plain (unpooled) 3x3, stride-1
//! convolutions, with AVX-512: the forward pass, the input gradient and the filter gradient
//! (model6's `same` layers).
//!
//! The forward pass and the input gradient are both a [`Correlation`] of zero-padded images
//! with 3x3 filters at stride 1: the input gradient is the output gradient, padded by
//! `2 - pad` on the top and left, correlated with the filter turned 180° and its input and
//! output channels swapped. Each 2x2 (or 4x4) output tile is `Y = A^T [U . V] A` as in the
//! pooled kernel (the module's page): a task takes a few images, and their tiles (read in
//! place, zeros outside the images: `input_images.rs`) go through in blocks that stay in L2 (input transform `V`; for each of the 16 (36) positions and
//! each group of up to 64 output channels, the product over the input channels with `U`,
//! whose slice stays in L1 across the block; the output transform into the NHWC output).
//! Every output is computed by the same operations whatever the blocks or threads.
//!
//! The filter gradient reads the same identity backwards: with `Z = A dY A^T` for each
//! output-gradient tile, `dU[xi] = sum over tiles of V[xi]^T Z[xi]` and `dW = G^T dU G`.
//! Fixed slots of images (a function of the batch size) sum their tiles in order into their
//! own `dU`, and the slots are added in order, so the result does not depend on the number
//! of threads.
//!
//! Rounding: F(2x2)'s transforms only add, subtract and halve, so an output is the direct
//! sum to a few ulps of the sum of its terms' magnitudes. F(4x4)'s multiply by up to 8 and
//! their rows sum up to 10 (`B^T`) and 19 (`A^T`) magnitudes, so it rounds about ten times
//! worse (up to 4e-6 of the terms' magnitudes seen); `plain_tests.rs` bounds both.

use super::avx512::{self, F2Input, Planes, LANES};
use super::f4_avx512 as f4;
use super::input_images::InputImages;
use super::plain_avx512::{self as kernels, TileGrid};
use super::{G, TAPS};
use crate::buffers::{build_chunks, with_scratch, zeroed_chunks, MAX_FILTER_PARTIALS};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tensor::shape::Conv2dSpec;

/// Tiles per block are a multiple of this: every product block (`TB` = 6, 8 or 12 tiles)
/// divides it.
const BLOCK_QUANTUM: usize = 24;

/// Floats of a block's `V` and `M` (or `Z`) together, about 256 KiB: in L2 with room for
/// `U` and the images' tiles.
const BLOCK_FLOATS: usize = 64 * 1024;

/// Floats of the images' tiled regions per task (128 KiB; [`Correlation::tiled_len`]), at
/// most [`MAX_IMAGES_PER_CHUNK`] images.
const CHUNK_FLOATS: usize = 32 * 1024;

/// Most images one task transforms together (few: enough tasks for the threads).
const MAX_IMAGES_PER_CHUNK: usize = 4;

/// Tiles of a filter gradient's block at least (see `backward_filter`), from at most
/// [`MAX_GRADIENT_IMAGES`] images.
const GRADIENT_BLOCK_TILES: usize = 48;

/// Most images of a filter gradient's chunk.
const MAX_GRADIENT_IMAGES: usize = 16;

/// Floats of the filter gradient's partial sums together (2 MiB), at least two slots.
const PARTIALS_FLOATS: usize = 512 * 1024;

/// Convolutions with fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Winograd's output tile: how many outputs of a row (and of a column) one tile computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tile {
    /// F(2x2, 3x3): 4x4 input tiles, 16 products per 4 outputs.
    F2,
    /// F(4x4, 3x3): 6x6 input tiles, 36 products per 16 outputs (1.78x fewer), but tiles of
    /// 4 cover a 14x14 image as 16x16, and it rounds worse.
    F4,
}

impl Tile {
    /// Output rows and columns per tile.
    fn size(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => f4::M,
        }
    }

    /// Input rows and columns per tile.
    fn alpha(self) -> usize {
        self.size() + 2
    }

    fn positions(self) -> usize {
        self.alpha() * self.alpha()
    }

    /// `G[i][a]`, the filter transform's entry.
    fn g(self, i: usize, a: usize) -> f64 {
        match self {
            Tile::F2 => f64::from(G[i][a]),
            Tile::F4 => f4::G[i][a],
        }
    }

    /// The weight of tap `(a, b)` in position `xi` of `U = G g G^T` (and of `dU[xi]` in
    /// tap `(a, b)` of `dW = G^T dU G`).
    fn weight(self, xi: usize, (a, b): (usize, usize)) -> f64 {
        let alpha = self.alpha();
        self.g(xi / alpha, a) * self.g(xi % alpha, b)
    }
}

/// Whether these kernels compute `spec`'s passes (on a CPU with AVX-512F): a 3x3 filter at
/// stride 1 with an output.
pub(crate) fn takes(spec: &Conv2dSpec) -> bool {
    (spec.kernel_h, spec.kernel_w, spec.stride_h, spec.stride_w) == (3, 3, 1, 1)
        && spec.pad_top <= 2
        && spec.pad_left <= 2
        && spec.batch * spec.in_c * spec.out_c * spec.out_h * spec.out_w > 0
}

/// A 3x3, stride-1 correlation: `y[b, oy, ox, o] = sum over a, b', k of
/// xp[b, oy + a, ox + b', k] * g[a, b', k, o]`, with `xp` the input shifted down by
/// `pad_top` and right by `pad_left` in zeros.
#[derive(Clone, Copy, Debug)]
struct Correlation {
    batch: usize,
    in_h: usize,
    in_w: usize,
    in_c: usize,
    out_h: usize,
    out_w: usize,
    out_c: usize,
    pad_top: usize,
    pad_left: usize,
    tile: Tile,
}

impl Correlation {
    /// The convolution's forward pass.
    fn forward(spec: &Conv2dSpec, tile: Tile) -> Self {
        let (s, batch) = (spec, spec.batch);
        let (in_h, in_w, in_c, out_h, out_w, out_c) = (s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c);
        let (pad_top, pad_left) = (s.pad_top, s.pad_left);
        Correlation { batch, in_h, in_w, in_c, out_h, out_w, out_c, pad_top, pad_left, tile }
    }

    /// The convolution's input gradient, from the output gradient.
    fn input_gradient(s: &Conv2dSpec, tile: Tile) -> Self {
        Correlation {
            batch: s.batch,
            in_h: s.out_h,
            in_w: s.out_w,
            in_c: s.out_c,
            out_h: s.in_h,
            out_w: s.in_w,
            out_c: s.in_c,
            pad_top: 2 - s.pad_top,
            pad_left: 2 - s.pad_left,
            tile,
        }
    }

    fn tiles_h(&self) -> usize {
        self.out_h.div_ceil(self.tile.size())
    }

    fn tiles_w(&self) -> usize {
        self.out_w.div_ceil(self.tile.size())
    }

    fn per_image(&self) -> usize {
        self.tiles_h() * self.tiles_w()
    }

    /// Floats of the region an image's tiles read (`[n tiles_h + 2, n tiles_w + 2, in_c]`
    /// for tiles of `n`), which sizes the chunks.
    fn tiled_len(&self) -> usize {
        let n = self.tile.size();
        (n * self.tiles_h() + 2) * (n * self.tiles_w() + 2) * self.in_c
    }

    fn in_lanes(&self) -> usize {
        self.in_c.next_multiple_of(LANES)
    }

    fn out_lanes(&self) -> usize {
        self.out_c.next_multiple_of(LANES)
    }

    fn image_in(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }

    fn image_out(&self) -> usize {
        self.out_h * self.out_w * self.out_c
    }

    fn grid(&self) -> TileGrid {
        let (out_h, out_w, out_c) = (self.out_h, self.out_w, self.out_c);
        let size = self.tile.size();
        TileGrid { size, out_h, out_w, out_c, tiles_w: self.tiles_w(), per_image: self.per_image() }
    }

    /// Tiles per block: [`BLOCK_FLOATS`] of `V` and `M`, a multiple of [`BLOCK_QUANTUM`].
    fn block_tiles(&self) -> usize {
        let per_tile = self.tile.positions() * (self.in_lanes() + self.out_lanes());
        (BLOCK_FLOATS / (per_tile * BLOCK_QUANTUM)).max(1) * BLOCK_QUANTUM
    }

    fn images_per_chunk(&self) -> usize {
        (CHUNK_FLOATS / self.tiled_len()).clamp(1, MAX_IMAGES_PER_CHUNK)
    }

    fn parallel(&self) -> bool {
        self.batch * self.out_h * self.out_w * self.out_c * self.in_c * 9 >= PARALLEL_MIN_MACS
    }

    /// Images `first..first + count` of `x`, tiled, read in place.
    fn images<'a>(&self, x: &'a [f32], first: usize, count: usize) -> InputImages<'a> {
        let image_in = self.image_in();
        InputImages {
            x: &x[first * image_in..(first + count) * image_in],
            in_h: self.in_h,
            in_w: self.in_w,
            in_c: self.in_c,
            pad_top: self.pad_top,
            pad_left: self.pad_left,
            tiles_h: self.tiles_h(),
            tiles_w: self.tiles_w(),
        }
    }

    /// `U = G g G^T` as `[positions, in_c, out_lanes]` (unused lanes zero), with `g` the
    /// correlation's filter (`[3, 3, in_c, out_c]`); each sum in f64, rounded once.
    fn transform_filter(&self, g: &[f32]) -> Vec<f32> {
        let (in_c, out_c, lanes) = (self.in_c, self.out_c, self.out_lanes());
        let mut u = vec![0.0; self.tile.positions() * in_c * lanes];
        // A position per task: done on one thread, the other waited about half a millisecond
        // per pass of model6's larger layers.
        u.par_chunks_mut(in_c * lanes).enumerate().for_each(|(xi, plane)| {
            let mut sums = vec![0.0f64; in_c * out_c];
            for (a, b) in TAPS {
                let weight = self.tile.weight(xi, (a, b));
                if weight != 0.0 {
                    let taps = &g[(a * 3 + b) * in_c * out_c..][..in_c * out_c];
                    sums.iter_mut().zip(taps).for_each(|(s, &t)| *s += weight * f64::from(t));
                }
            }
            for (row, sums) in plane.chunks_exact_mut(lanes).zip(sums.chunks_exact(out_c)) {
                row[..out_c].iter_mut().zip(sums).for_each(|(u, &s)| *u = s as f32);
            }
        });
        u
    }

    /// The correlation of `x` with the transformed filter `u`, plus `bias` (`out_lanes`).
    fn run(&self, x: &[f32], u: &[f32], bias: &[f32]) -> Vec<f32> {
        assert!(crate::isa::Build::Avx512.runs_here(), "the Winograd kernels need AVX-512F");
        assert!(x.len() >= self.batch * self.image_in() && bias.len() >= self.out_lanes());
        let (image_out, per_chunk, block) = (self.image_out(), self.images_per_chunk(), self.block_tiles());
        let positions = self.tile.positions();
        let v_planes = Planes { tiles: block, lanes: self.in_lanes(), xi_major: true, positions };
        let m_planes = Planes { tiles: block, lanes: self.out_lanes(), xi_major: true, positions };
        let fill = |index: usize, y: &mut [MaybeUninit<f32>]| {
            let images = y.len() / image_out;
            with_scratch(v_planes.len() + m_planes.len(), |scratch| {
                let (v, m) = scratch.split_at_mut(v_planes.len());
                let source = self.images(x, index * per_chunk, images);
                let tiles = images * self.per_image();
                for start in (0..tiles).step_by(block) {
                    let count = block.min(tiles - start);
                    // SAFETY: AVX-512F checked above; the kernels check their bounds.
                    unsafe {
                        let tiles = start..start + count;
                        match self.tile {
                            Tile::F2 => avx512::input_tiles::<F2Input>(&source, tiles, v_planes, v),
                            Tile::F4 => avx512::input_tiles::<f4::F4Input>(&source, tiles, v_planes, v),
                        }
                        self.products((v, v_planes), u, (&mut *m, m_planes), count);
                        let m = (&*m, m_planes);
                        match self.tile {
                            Tile::F2 => kernels::output_tiles(m, (start, count), bias, self.grid(), y),
                            Tile::F4 => f4::output_tiles(m, (start, count), bias, self.grid(), y),
                        }
                    }
                }
            })
        };
        // SAFETY: the tiles of a chunk's images cover every pixel, and `output_tiles` writes
        // every channel of those inside the images. No zeroing first: it would cost a
        // tenth of the pass.
        unsafe { build_chunks(self.batch * image_out, per_chunk * image_out, self.parallel(), fill) }
    }

    /// `M = V U` for the first `count` tiles of a block, a group of output registers at a
    /// time (rows past `count`, up to the product's tile block, are computed and not read).
    fn products(&self, v: (&[f32], Planes), u: &[f32], m: (&mut [f32], Planes), count: usize) {
        let (vectors, in_c, (m, m_planes)) = (self.out_lanes() / LANES, self.in_c, m);
        let mut first = 0;
        while first < vectors {
            let nv = (vectors - first).min(4);
            let group = first * LANES;
            let m = (&mut *m, m_planes);
            // SAFETY: callers run on AVX-512F (`run` checks it); the products check their
            // bounds, and a block is a multiple of every `TB` below.
            unsafe {
                match nv {
                    1 => kernels::products::<1, 12>(v, in_c, u, m, group, count.next_multiple_of(12)),
                    2 => kernels::products::<2, 12>(v, in_c, u, m, group, count.next_multiple_of(12)),
                    3 => kernels::products::<3, 8>(v, in_c, u, m, group, count.next_multiple_of(8)),
                    _ => kernels::products::<4, 6>(v, in_c, u, m, group, count.next_multiple_of(6)),
                }
            }
            first += nv;
        }
    }
}

/// The forward pass of `spec`, which [`takes`] must take, on a CPU with AVX-512F, with
/// `tile`s.
pub(crate) fn forward(
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &Conv2dSpec,
    tile: Tile,
) -> Vec<f32> {
    assert!(takes(spec), "the Winograd kernels do not take this layer");
    let corr = Correlation::forward(spec, tile);
    let (in_c, out_c) = (spec.in_c, spec.out_c);
    let u = corr.transform_filter(&filter[..9 * in_c * out_c]);
    let mut padded_bias = vec![0.0; corr.out_lanes()];
    if let Some(bias) = bias {
        padded_bias[..out_c].copy_from_slice(&bias[..out_c]);
    }
    corr.run(x, &u, &padded_bias)
}

/// The input gradient of `spec` (which [`takes`] must take) from the output gradient `dy`,
/// on a CPU with AVX-512F, with `tile`s.
pub(crate) fn backward_input(dy: &[f32], filter: &[f32], spec: &Conv2dSpec, tile: Tile) -> Vec<f32> {
    assert!(takes(spec), "the Winograd kernels do not take this layer");
    let corr = Correlation::input_gradient(spec, tile);
    let (in_c, out_c) = (spec.in_c, spec.out_c);
    // Turned 180°, input and output channels swapped: tap (a, b) from output channel k to
    // input channel o is the filter's (2 - a, 2 - b) from o to k.
    let mut turned = vec![0.0; 9 * in_c * out_c];
    for (tap, plane) in turned.chunks_exact_mut(in_c * out_c).enumerate() {
        let source = &filter[(8 - tap) * in_c * out_c..][..in_c * out_c];
        for (k, row) in plane.chunks_exact_mut(in_c).enumerate() {
            row.iter_mut().zip(source.chunks_exact(out_c)).for_each(|(g, taps)| *g = taps[k]);
        }
    }
    let u = corr.transform_filter(&turned);
    corr.run(dy, &u, &vec![0.0; corr.out_lanes()])
}

/// The filter gradient of `spec` (which [`takes`] must take), HWIO, on a CPU with AVX-512F.
/// Bit-identical whatever the number of threads.
pub(crate) fn backward_filter(x: &[f32], dy: &[f32], spec: &Conv2dSpec, tile: Tile) -> Vec<f32> {
    assert!(takes(spec), "the Winograd kernels do not take this layer");
    assert!(crate::isa::Build::Avx512.runs_here(), "the Winograd kernels need AVX-512F");
    let corr = Correlation::forward(spec, tile);
    assert!(x.len() >= corr.batch * corr.image_in() && dy.len() >= corr.batch * corr.image_out());
    let (in_lanes, out_lanes) = (corr.in_lanes(), corr.out_lanes());
    let positions = tile.positions();
    let du_len = positions * in_lanes * out_lanes;
    // A chunk's tiles in one block, at least [`GRADIENT_BLOCK_TILES`] (not the forward
    // pass's L2-sized blocks): each block adds its products into the whole `dU` (up to
    // 36 x 64 x 128 floats), so fewer, larger blocks read and write it less often, and no
    // short last block pays for a whole pass over it (28x28 F(4x4): 49 tiles were blocks of
    // 24, 24 and 1; 10-25% faster as one block).
    let fill = GRADIENT_BLOCK_TILES.div_ceil(corr.per_image()).min(MAX_GRADIENT_IMAGES);
    let (per_chunk, image_out) = (corr.images_per_chunk().max(fill), corr.image_out());
    let block = per_chunk * corr.per_image();
    let v_planes = Planes { tiles: block, lanes: in_lanes, xi_major: true, positions };
    let z_planes = Planes { tiles: block, lanes: out_lanes, xi_major: true, positions };
    // Fixed slots of images (a function of the shapes only), each partial zeroed by its own
    // task; fewer slots where partials are large, as zeroing and adding them costs a pass
    // over all of them. An even number, so that two threads share them evenly (three slots
    // left one thread idle for a third of the pass).
    let slots = ((PARTIALS_FLOATS / du_len).clamp(2, MAX_FILTER_PARTIALS) & !1).min(corr.batch);
    let images_per_slot = corr.batch.div_ceil(slots);
    let partials = zeroed_chunks(slots * du_len, du_len, true, |slot, du| {
        let images = (slot * images_per_slot).min(corr.batch)..((slot + 1) * images_per_slot).min(corr.batch);
        for first in images.clone().step_by(per_chunk) {
            let count = per_chunk.min(images.end - first);
            with_scratch(v_planes.len() + z_planes.len(), |scratch| {
                let (v, z) = scratch.split_at_mut(v_planes.len());
                let source = corr.images(x, first, count);
                let dy = &dy[first * image_out..(first + count) * image_out];
                let n = count * corr.per_image();
                // SAFETY: AVX-512F checked above; the kernels check their bounds.
                unsafe {
                    let grid = corr.grid();
                    match tile {
                        Tile::F2 => {
                            avx512::input_tiles::<F2Input>(&source, 0..n, v_planes, v);
                            kernels::gradient_tiles(dy, grid, (0, n), (z, z_planes));
                        }
                        Tile::F4 => {
                            avx512::input_tiles::<f4::F4Input>(&source, 0..n, v_planes, v);
                            f4::gradient_tiles(dy, grid, (0, n), (z, z_planes));
                        }
                    }
                }
                gradient_products((v, v_planes), (z, z_planes), n, du);
            })
        }
    });
    let du = sum_in_order(&partials, du_len);
    crate::buffers::recycle(partials);
    // dW[a][b] = sum over i, j of G[i][a] dU[i][j] G[j][b], in f64, a position at a time;
    // a tap per task.
    let (in_c, out_c) = (spec.in_c, spec.out_c);
    let mut dw = vec![0.0f32; 9 * in_c * out_c];
    dw.par_chunks_mut(in_c * out_c).enumerate().for_each(|(tap, out)| {
        let mut plane = vec![0.0f64; in_c * out_c];
        for xi in 0..positions {
            let weight = tile.weight(xi, (tap / 3, tap % 3));
            if weight == 0.0 {
                continue;
            }
            for (c, row) in plane.chunks_exact_mut(out_c).enumerate() {
                let du = &du[(xi * in_lanes + c) * out_lanes..][..out_c];
                row.iter_mut().zip(du).for_each(|(w, &d)| *w += weight * f64::from(d));
            }
        }
        out.iter_mut().zip(plane).for_each(|(o, w)| *o = w as f32);
    });
    dw
}

/// `dU += V^T Z` for the first `count` tiles, a group of output registers at a time.
fn gradient_products(v: (&[f32], Planes), z: (&[f32], Planes), count: usize, du: &mut [f32]) {
    let vectors = z.1.lanes / LANES;
    let mut first = 0;
    while first < vectors {
        let nv = (vectors - first).min(4);
        let group = first * LANES;
        // SAFETY: the caller checked AVX-512F; the products check their bounds (input lanes
        // are whole registers, so every `TC` below divides them).
        unsafe {
            match nv {
                1 => kernels::gradient_products::<16, 1>(v, z, count, group, du),
                2 => kernels::gradient_products::<8, 2>(v, z, count, group, du),
                3 => kernels::gradient_products::<8, 3>(v, z, count, group, du),
                _ => kernels::gradient_products::<4, 4>(v, z, count, group, du),
            }
        }
        first += nv;
    }
}

/// The sum of the `len`-long partials in slot order (each element's order is fixed, so
/// splitting the elements across threads changes nothing).
fn sum_in_order(partials: &[f32], len: usize) -> Vec<f32> {
    let (first, rest) = partials.split_at(len);
    let mut sum = first.to_vec();
    let chunk = crate::PARALLEL_CHUNK;
    sum.par_chunks_mut(chunk).enumerate().for_each(|(i, out)| {
        for partial in rest.chunks_exact(len) {
            let partial = &partial[i * chunk..i * chunk + out.len()];
            out.iter_mut().zip(partial).for_each(|(s, p)| *s += p);
        }
    });
    sum
}

#[cfg(test)]
#[path = "plain_tests.rs"]
mod tests;
