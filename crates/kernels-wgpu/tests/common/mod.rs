//! Shared test helpers: finding an adapter (skipping politely without one, failing on CI),
//! random data and tolerant comparison.

#![allow(dead_code)]

use kernels_wgpu::{GemmTile, WgpuBackend, WgpuOptions};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::OnceLock;

/// The shared test backend (outputs poisoned with NaN), or `None` with a notice when this
/// machine has no adapter. On CI (`CI=true`) a missing adapter fails the test instead: CI
/// installs Mesa's software Vulkan driver, so no adapter there means a broken setup.
pub fn backend() -> Option<&'static WgpuBackend> {
    backend_with(GemmTile::Auto)
}

/// Like [`backend`], with the GEMM tile forced (one shared backend per choice).
pub fn backend_with(gemm_tile: GemmTile) -> Option<&'static WgpuBackend> {
    static BACKENDS: [OnceLock<Result<WgpuBackend, String>>; 5] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match gemm_tile {
        GemmTile::Auto => &BACKENDS[0],
        GemmTile::Small => &BACKENDS[1],
        GemmTile::Large => &BACKENDS[2],
        GemmTile::Narrow => &BACKENDS[3],
        GemmTile::KGroups => &BACKENDS[4],
    };
    let found = slot.get_or_init(|| {
        WgpuBackend::with_options(WgpuOptions { poison_outputs: true, gemm_tile, adapter: None })
            .map_err(|e| e.to_string())
    });
    match found {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "no wgpu adapter found on CI (CI=true): {e}. CI needs a Vulkan driver, e.g. Mesa's \
             lavapipe (apt-get install mesa-vulkan-drivers libvulkan1)"
        ),
        Err(e) => {
            eprintln!("skipping: no wgpu adapter found ({e})");
            None
        }
    }
}

/// Uniform values in `[lo, hi)` from a seeded generator.
pub fn random(len: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// Asserts `max |got - want| / max(1, max |want|) < tol`, non-finite values matching exactly.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().filter(|v| v.is_finite()).fold(1.0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    let mut worst_at = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !w.is_finite() {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{what}: element {i} is {g}, want {w}");
            continue;
        }
        let err = (g - w).abs();
        assert!(!err.is_nan(), "{what}: element {i} is {g}, want {w} (unwritten output?)");
        if err > worst {
            worst = err;
            worst_at = i;
        }
    }
    let rel = worst / scale;
    assert!(
        rel < tol,
        "{what}: relative error {rel:e} at element {worst_at}: got {}, want {}",
        got[worst_at],
        want[worst_at]
    );
}
