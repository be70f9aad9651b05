//! Shared by the tests that compare with Keras (`benches/keras/*.py` fixtures in `tests/data`):
//! reading a fixture's numbers and comparing within a relative tolerance.

// Each test file uses the part it needs.
#![allow(dead_code)]

/// The numbers of the fixture line that starts with `tag` and a space.
pub fn fixture_values(text: &str, tag: &str) -> Vec<f64> {
    let prefix = format!("{tag} ");
    let line =
        text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no fixture line '{tag}'"));
    line[prefix.len()..].split_whitespace().map(|v| v.parse().unwrap()).collect()
}

/// Asserts `|got - want| <= tolerance * (1 + |want|)` element by element; returns the largest
/// `|got - want| / (1 + |want|)`.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tolerance: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut largest = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w).abs() / (1.0 + w.abs());
        assert!(d <= tolerance, "{what}[{i}]: {g} vs {w}");
        largest = largest.max(d);
    }
    largest
}

/// The wgpu device, or `None` (with a note) where the machine has no adapter, so a wgpu test
/// can skip rather than fail there.
#[cfg(feature = "wgpu")]
pub fn wgpu_or_skip() -> Option<nn::Device> {
    let device = nn::device::wgpu().ok();
    if device.is_none() {
        eprintln!("note: no wgpu adapter; skipped");
    }
    device
}
