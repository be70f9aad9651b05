//! Where the Winograd kernels read their input tiles: the NHWC images themselves, with zeros
//! where a tile hangs over an image's edge (the convolution's padding). Reading in place
//! replaced a zero-padded copy of every image (the copies were about a twentieth of model6's
//! CPU time in `perf`); the values read, and so every result, are the same.

use std::arch::x86_64::*;
use std::ops::Range;

/// A few NHWC images (`[in_h, in_w, in_c]` each, the first at the start of `x`), tiled for a
/// 3x3 correlation at stride 1: tile `(ty, tx)` of an image covers `alpha` x `alpha` pixels
/// from row `step * ty - pad_top` and column `step * tx - pad_left`, and tile `t` is tile
/// `t % (tiles_h * tiles_w)` (scan order) of image `t / (tiles_h * tiles_w)`.
#[derive(Clone, Copy)]
pub(super) struct InputImages<'a> {
    pub(super) x: &'a [f32],
    pub(super) in_h: usize,
    pub(super) in_w: usize,
    pub(super) in_c: usize,
    pub(super) pad_top: usize,
    pub(super) pad_left: usize,
    pub(super) tiles_h: usize,
    pub(super) tiles_w: usize,
}

impl InputImages<'_> {
    fn per_image(&self) -> usize {
        self.tiles_h * self.tiles_w
    }

    /// Checks that tiles `tiles` belong to images inside `x`, which [`TileAt::load`] relies on.
    pub(super) fn check(&self, tiles: &Range<usize>) {
        assert!(self.per_image() > 0 && self.in_c > 0, "no tiles or no channels");
        if let Some(last) = tiles.clone().last() {
            let images = last / self.per_image() + 1;
            assert!(images * self.in_h * self.in_w * self.in_c <= self.x.len(), "tile outside the images");
        }
    }

    /// One past the last tile of `tile`'s row of tiles (tiles `tile..row_end` are neighbours,
    /// left to right).
    pub(super) fn row_end(&self, tile: usize) -> usize {
        (tile / self.tiles_w + 1) * self.tiles_w
    }

    /// Where tile `tile`'s pixels are, for tiles of `alpha` pixels `step` apart.
    #[inline(always)]
    pub(super) fn tile(&self, tile: usize, step: usize, alpha: usize) -> TileAt {
        let (image, at) = (tile / self.per_image(), tile % self.per_image());
        let top = (step * (at / self.tiles_w)) as isize - self.pad_top as isize;
        let left = (step * (at % self.tiles_w)) as isize - self.pad_left as isize;
        // Bit i: pixel `start + i` of an axis of `n` lies inside.
        let inside = |start: isize, n: usize| {
            (0..alpha)
                .filter(|&i| (0..n as isize).contains(&(start + i as isize)))
                .fold(0u32, |m, i| m | 1 << i)
        };
        let (rows, cols) = (inside(top, self.in_h), inside(left, self.in_w));
        let all = (1u32 << alpha) - 1;
        let c = self.in_c as isize;
        let offset = (((image * self.in_h) as isize + top) * self.in_w as isize + left) * c;
        TileAt {
            // Wrapping: the corner may lie outside `x`, where it is never read.
            corner: self.x.as_ptr().wrapping_offset(offset),
            row_stride: self.in_w * self.in_c,
            pixel_stride: self.in_c,
            rows,
            cols,
            inside: rows == all && cols == all,
        }
    }
}

/// One tile's pixels (see [`InputImages::tile`]).
#[derive(Clone, Copy)]
pub(super) struct TileAt {
    /// Pixel `(0, 0)` of the tile, which may lie outside its image.
    corner: *const f32,
    row_stride: usize,
    pixel_stride: usize,
    /// Bit `r` (`s`): row `r` (column `s`) of the tile lies inside the image.
    rows: u32,
    cols: u32,
    /// Every pixel of the tile lies inside the image.
    pub(super) inside: bool,
}

impl TileAt {
    /// Channels `lane..lane + 16` of pixel `(r, s)` of the tile, those of `mask` (the others
    /// zero), and zeros outside the image. `INSIDE`: the caller knows the tile is
    /// [`TileAt::inside`], and no pixel is tested.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the tile comes from [`InputImages::tile`] of images that passed
    /// [`InputImages::check`] for it, `r` and `s` are below its `alpha`, and `mask` holds only
    /// channels below `in_c - lane`.
    #[inline(always)]
    pub(super) unsafe fn load<const INSIDE: bool>(
        &self,
        r: usize,
        s: usize,
        lane: usize,
        mask: __mmask16,
    ) -> __m512 {
        if INSIDE || (self.rows >> r) & (self.cols >> s) & 1 != 0 {
            // SAFETY: pixel (r, s) lies inside an image inside `x` (the caller's contract),
            // and the mask keeps the load to its channels.
            unsafe {
                let pixel = self.corner.wrapping_add(r * self.row_stride + s * self.pixel_stride + lane);
                _mm512_maskz_loadu_ps(mask, pixel)
            }
        } else {
            // SAFETY: the CPU has AVX-512F (the caller's contract).
            unsafe { _mm512_setzero_ps() }
        }
    }
}
