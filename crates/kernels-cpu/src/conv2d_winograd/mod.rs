//! Winograd's F(2x2, 3x3) for a 3x3, stride-1 convolution whose output is max-pooled over
//! 2x2 windows (model5's second layer: 12x12x20 -> 10x10x40 -> 5x5x40), with AVX-512.
//!
//! Each pooling window is one 2x2 output tile, computed from its 4x4 input tile `d` and the
//! filter `g` as `Y = A^T [ U . V ] A` with `U = G g G^T` and `V = B^T d B` (the products
//! `.` summed over the input channels): 16 multiply-adds per input and output channel and
//! window, where the direct convolution takes 36. The transforms are additions only. The
//! products run as 16 small matrix products, one per position `xi` of the 4x4 tile, with
//! channels as the vector lanes: `M[xi] = V[xi] U[xi]` (tiles by input channels, times input by output channels), then
//! `Y = A^T M A`, the bias, the pooling (the winner of each window is the first strictly
//! greatest value in scan order, as in the direct kernels) and the ReLU, in registers. A task
//! takes a few images, whose tiles go through in blocks of 6 or 8 (read in place, zeros
//! outside the images), so that a block's `V` and `M` stay in L1.
//!
//! The transforms round differently from the direct sum: the values differ in the last
//! places, which can change the winner of a window whose values tie to that precision.
//!
//! Only the forward pass: the backward pass needs only the winners
//! (`conv2d_direct::PooledBackward` visits a quarter of the patches), where the same
//! products over every tile (`dU[xi] = V[xi]^T Z[xi]` with `Z = A dY A^T`) measured slower.

mod avx512;
mod f4_avx512;
mod input_images;
pub(crate) mod plain;
mod plain_avx512;

use avx512::{Planes, PooledOut, LANES};
use input_images::InputImages;
use tensor::shape::ConvPoolSpec;

/// Images per task, whose tiles then go through in blocks: fewer blocks straddle two
/// images, and 128 images still make 32 tasks.
const IMAGES_PER_CHUNK: usize = 4;

/// Most registers of output channels: 64 channels.
const MAX_OUT_VECTORS: usize = 4;

/// `G`, the filter transform of F(2x2, 3x3) (`U = G g G^T`).
const G: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// A fused 3x3 convolution + 2x2 max pooling prepared for the Winograd kernels.
pub(crate) struct WinogradPool<'s> {
    spec: &'s ConvPoolSpec,
    /// Registers of output channels.
    out_vectors: usize,
}

impl<'s> WinogradPool<'s> {
    /// Whether these kernels compute `spec` (on a CPU with AVX-512F): a 3x3, stride-1
    /// convolution with at most 64 filters, pooled over disjoint 2x2 windows.
    pub(crate) fn takes(spec: &ConvPoolSpec) -> bool {
        let (conv, pool) = (&spec.conv, &spec.pool);
        (conv.kernel_h, conv.kernel_w, conv.stride_h, conv.stride_w) == (3, 3, 1, 1)
            && (pool.pool_h, pool.pool_w) == (2, 2)
            && spec.windows_disjoint()
            && conv.batch * conv.in_c * pool.out_h * pool.out_w > 0
            && (1..=MAX_OUT_VECTORS * LANES).contains(&conv.out_c)
    }

    /// The kernels prepared for `spec`, which they must take ([`WinogradPool::takes`]), on a
    /// CPU with AVX-512F.
    pub(crate) fn new(spec: &'s ConvPoolSpec) -> Self {
        assert!(Self::takes(spec), "the Winograd kernels do not take this layer");
        assert!(crate::isa::Build::Avx512.runs_here(), "the Winograd kernels need AVX-512F");
        WinogradPool { spec, out_vectors: spec.conv.out_c.div_ceil(LANES) }
    }

    /// Tiles (pooling windows) per image.
    fn tiles_per_image(&self) -> usize {
        self.spec.pool.out_h * self.spec.pool.out_w
    }

    /// Tiles per block (at most 24 accumulators in the product).
    fn tile_block(&self) -> usize {
        if self.out_vectors <= 3 {
            8
        } else {
            6
        }
    }

    fn in_planes(&self) -> Planes {
        Planes {
            tiles: self.tile_block(),
            lanes: self.spec.conv.in_c.next_multiple_of(LANES),
            xi_major: false,
            positions: 16,
        }
    }

    fn out_planes(&self) -> Planes {
        Planes { tiles: self.tile_block(), lanes: self.out_vectors * LANES, xi_major: false, positions: 16 }
    }

    /// `U = G g G^T` for every input and output channel: `[16, in_c, out_vectors * 16]`,
    /// unused output lanes zero.
    fn transform_filter(&self, filter: &[f32]) -> Vec<f32> {
        let conv = &self.spec.conv;
        let (in_c, out_c, lanes) = (conv.in_c, conv.out_c, self.out_planes().lanes);
        let mut u = vec![0.0; 16 * in_c * lanes];
        for (xi, plane) in u.chunks_exact_mut(in_c * lanes).enumerate() {
            for (a, b) in TAPS {
                let weight = G[xi / 4][a] * G[xi % 4][b];
                let taps = &filter[(a * 3 + b) * in_c * out_c..][..in_c * out_c];
                for (row, tap) in plane.chunks_exact_mut(lanes).zip(taps.chunks_exact(out_c)) {
                    row[..out_c].iter_mut().zip(tap).for_each(|(u, &g)| *u += weight * g);
                }
            }
        }
        u
    }

    /// Pooled values and winners of the whole batch (see the module's page).
    pub(crate) fn forward(&self, x: &[f32], filter: &[f32], bias: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
        let conv = &self.spec.conv;
        let u = self.transform_filter(filter);
        let (in_planes, out_planes) = (self.in_planes(), self.out_planes());
        let mut padded_bias = vec![0.0; out_planes.lanes];
        if let Some(bias) = bias {
            padded_bias[..conv.out_c].copy_from_slice(&bias[..conv.out_c]);
        }
        let per_image = self.tiles_per_image();
        crate::buffers::zeroed_chunk_pairs(
            conv.batch * per_image * conv.out_c,
            IMAGES_PER_CHUNK * per_image * conv.out_c,
            || (),
            |(), chunk, pooled, winners| {
                // One block's V and M. What the kernels read they wrote first, except rows
                // past a last partial block (which only produce rows of M that are not read).
                crate::buffers::with_scratch(in_planes.len() + out_planes.len(), |scratch| {
                    let (v, m) = scratch.split_at_mut(in_planes.len());
                    self.chunk(x, chunk, (v, m), (&u, &padded_bias), pooled, winners);
                })
            },
        )
    }

    /// The pooled values and winners of chunk `chunk` (`IMAGES_PER_CHUNK` images, fewer for
    /// the last).
    fn chunk(
        &self,
        x: &[f32],
        chunk: usize,
        (v, m): (&mut [f32], &mut [f32]),
        (u, bias): (&[f32], &[f32]),
        pooled: &mut [f32],
        winners: &mut [f32],
    ) {
        let conv = &self.spec.conv;
        let (in_planes, out_planes) = (self.in_planes(), self.out_planes());
        let (image_in, per_image) = (conv.in_h * conv.in_w * conv.in_c, self.tiles_per_image());
        let images = pooled.len() / (per_image * conv.out_c);
        let first = chunk * IMAGES_PER_CHUNK;
        let source = InputImages {
            x: &x[first * image_in..(first + images) * image_in],
            in_h: conv.in_h,
            in_w: conv.in_w,
            in_c: conv.in_c,
            pad_top: conv.pad_top,
            pad_left: conv.pad_left,
            tiles_h: self.spec.pool.out_h,
            tiles_w: self.spec.pool.out_w,
        };
        let relu = self.spec.relu;
        let tiles = images * per_image;
        for block in (0..tiles).step_by(in_planes.tiles) {
            let block = block..(block + in_planes.tiles).min(tiles);
            let rows = block.start * conv.out_c..block.end * conv.out_c;
            let out = PooledOut {
                pooled: &mut pooled[rows.clone()],
                winners: &mut winners[rows],
                out_c: conv.out_c,
                relu,
            };
            let count = block.len();
            // SAFETY: `new` checked AVX-512F; the kernels check their bounds.
            unsafe {
                avx512::input_tiles::<avx512::F2Input>(&source, block, in_planes, v);
                self.forward_products(v, u, m);
                avx512::output_tiles(m, out_planes, count, bias, out);
            }
        }
    }

    /// `M = V U` for one block of tiles.
    fn forward_products(&self, v: &[f32], u: &[f32], m: &mut [f32]) {
        let (planes, in_c) = (self.in_planes(), self.spec.conv.in_c);
        // SAFETY: `new` checked AVX-512F; the products check their bounds (a block is
        // `tile_block` tiles).
        unsafe {
            match self.out_vectors {
                1 => avx512::forward_products::<1, 8>(v, planes, in_c, u, m),
                2 => avx512::forward_products::<2, 8>(v, planes, in_c, u, m),
                3 => avx512::forward_products::<3, 8>(v, planes, in_c, u, m),
                4 => avx512::forward_products::<4, 6>(v, planes, in_c, u, m),
                _ => unreachable!("at most {MAX_OUT_VECTORS} registers of filters"),
            }
        }
    }
}

/// The filter's taps `(row, column)`.
const TAPS: [(usize, usize); 9] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)];

#[cfg(test)]
mod tests;
