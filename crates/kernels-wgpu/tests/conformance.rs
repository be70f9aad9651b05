//! The wgpu backend against the conformance suite every backend runs (`tensor::conformance`),
//! with every output buffer poisoned with NaN before its kernel writes it, so an element a
//! kernel fails to write shows; once with each GEMM tile, since matmul and the convolutions
//! run through them.

mod common;

use kernels_wgpu::GemmTile;
use tensor::conformance::{self, Tolerances};
use tensor::Device;

#[test]
fn the_wgpu_backend_conforms_with_every_gemm_tile() {
    for tile in [GemmTile::Auto, GemmTile::Small, GemmTile::Narrow, GemmTile::KGroups, GemmTile::Large] {
        let Some(backend) = common::backend_with(tile) else { return };
        let device = Device::new(backend.clone());
        let failures = conformance::run(&device, &Tolerances::default());
        assert!(failures.is_empty(), "{tile:?}: {} failures:\n{}", failures.len(), failures.join("\n"));
    }
}
