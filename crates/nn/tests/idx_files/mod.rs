//! IDX files made in a test: shared by the typed-error tests and the property tests.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// An IDX file: magic (two zero bytes, the type code, the rank), big-endian dims, then `data`.
pub fn idx(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, type_code, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
    bytes.extend_from_slice(data);
    bytes
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
