//! Which GEMM kernel and tile a product runs with (`shaders/gemm_core.wgsl`), by its shape.

use crate::GemmTile;

/// A workgroup's output tile in the GEMM kernels (`gemm_core.wgsl`): 128x128 (the big
/// kernel), 64x64 or 128x32 (the small one, whose `BM`, `BN` are pipeline constants), or
/// 32x32 (the k-grouped one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

/// The big kernel's tile (`gemm_tile128`).
pub(crate) const BIG: Tile = Tile { rows: 128, cols: 128 };
const NARROW: Tile = Tile { rows: 128, cols: 32 };
const SQUARE: Tile = Tile { rows: 64, cols: 64 };
const KGROUPS: Tile = Tile { rows: 32, cols: 32 };

/// Workgroup memory of the big kernel: two 128x128 operand slices of 8 rows, double-buffered
/// and padded (`big_a`, `big_b` in gemm_core.wgsl).
const BIG_WORKGROUP_BYTES: u32 = 2 * 528 * 16;

impl Tile {
    /// The tile for `products` independent products (or split-K slices) of `m x n` under
    /// `policy`, on an adapter with `workgroup_bytes` of workgroup memory.
    pub(crate) fn choose(
        policy: GemmTile,
        workgroup_bytes: u32,
        products: usize,
        m: usize,
        n: usize,
    ) -> Tile {
        let big_fits = workgroup_bytes >= BIG_WORKGROUP_BYTES;
        match policy {
            GemmTile::Small => SQUARE,
            GemmTile::Narrow => NARROW,
            GemmTile::KGroups => KGROUPS,
            GemmTile::Large if big_fits => BIG,
            GemmTile::Large => SQUARE,
            // Big tiles pay off once there are enough of them to keep every core of a large
            // GPU busy, and when they are not mostly padding; narrow ones when a 64-wide
            // tile would be more than half padding; k-grouped ones when a 64x64 tile would
            // be more than three quarters padding.
            GemmTile::Auto => {
                if big_fits && products * m.div_ceil(128) * n.div_ceil(128) >= 48 && m.min(n) >= 96 {
                    BIG
                } else if m <= 32 && n <= 32 {
                    KGROUPS
                } else if n <= 32 && m >= 128 {
                    NARROW
                } else {
                    SQUARE
                }
            }
        }
    }

    /// Its entry point in every GEMM module.
    pub(crate) fn entry(self) -> &'static str {
        match self {
            BIG => "gemm_tile128",
            KGROUPS => "gemm_tile_kgroups",
            _ => "gemm_tile_small",
        }
    }

    /// The small kernel's pipeline constants (unused by the others).
    pub(crate) fn constants(self) -> [(&'static str, u32); 2] {
        [("BM", self.rows as u32), ("BN", self.cols as u32)]
    }

    /// Tiles covering `m x n`: (along m, along n).
    pub(crate) fn count(self, m: usize, n: usize) -> (usize, usize) {
        (m.div_ceil(self.rows), n.div_ceil(self.cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_pick_their_tiles() {
        let h100 = 48 * 1024;
        // A 1024^3 product: big tiles; a dense layer at batch 128: 64x64; a conv layer's 20
        // channels: 128x32; its 25 x 20 filter gradient: k-grouped.
        assert_eq!(Tile::choose(GemmTile::Auto, h100, 1, 1024, 1024), BIG);
        assert_eq!(Tile::choose(GemmTile::Auto, h100, 1, 128, 100), SQUARE);
        assert_eq!(Tile::choose(GemmTile::Auto, h100, 1, 73_728, 20), NARROW);
        assert_eq!(Tile::choose(GemmTile::Auto, h100, 2048, 25, 20), KGROUPS);
        // Without the workgroup memory for it, no big tile even when forced.
        assert_eq!(Tile::choose(GemmTile::Auto, 16 * 1024, 1, 1024, 1024), SQUARE);
        assert_eq!(Tile::choose(GemmTile::Large, 16 * 1024, 1, 1024, 1024), SQUARE);
        assert_eq!(BIG.entry(), "gemm_tile128");
        assert_eq!(KGROUPS.entry(), "gemm_tile_kgroups");
        assert_eq!(NARROW.count(300, 33), (3, 2));
    }
}
