//! Property tests of the IDX reader (a stand-in for cargo-fuzz, which CI cannot run): arbitrary
//! and mutated files, raw and gzipped, never panic, never make an allocation sized by a header
//! that lies, and whatever is accepted is self-consistent. A few seconds in all.

mod common;
mod idx_files;

use std::path::Path;

use idx_files::{gzip, idx};
use nn::datasets::idx::{read_idx_u8, read_labels, IdxU8};
use nn::datasets::DatasetError;
use proptest::prelude::*;

#[global_allocator]
static ALLOC: common::LargestAllocation = common::LargestAllocation;

/// The largest single allocation reading a file of `file_len` bytes may make: fixed buffers (the
/// 64 KiB file buffer, the inflater's window and state) plus a small multiple of the file's real
/// size. A buffer sized from a lying header (up to 1032x the file for gzip) exceeds it.
fn allocation_budget(file_len: usize) -> usize {
    (256 << 10) + 16 * file_len
}

/// Reads `bytes` as an IDX file of `rank` dimensions, checking the properties every read must
/// have, whatever the input.
fn check_read(dir: &Path, bytes: &[u8], rank: u8) -> Result<IdxU8, DatasetError> {
    let path = dir.join("input");
    std::fs::write(&path, bytes).unwrap();
    let (result, largest) = common::largest_allocation_during(|| read_idx_u8(&path, rank));
    assert!(
        largest <= allocation_budget(bytes.len()),
        "reading {} bytes allocated {largest} bytes at once: {result:?}",
        bytes.len()
    );
    match &result {
        Ok(idx) => {
            assert_eq!(idx.dims.len(), usize::from(rank));
            assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
            if !bytes.starts_with(&[0x1f, 0x8b]) {
                assert_eq!(bytes.len(), 4 + 4 * usize::from(rank) + idx.data.len(), "raw size");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "the message names the file: {msg}");
        }
    }
    result
}

/// A small valid IDX file: rank 1 (labels) or 3 (images), up to 4x5x5 bytes.
fn valid_idx() -> impl Strategy<Value = (u8, Vec<u32>, Vec<u8>)> {
    prop_oneof![Just(1u8), Just(3u8)]
        .prop_flat_map(|rank| (Just(rank), prop::collection::vec(0u32..5, usize::from(rank))))
        .prop_flat_map(|(rank, dims)| {
            let len = dims.iter().product::<u32>() as usize;
            (Just(rank), Just(dims), prop::collection::vec(any::<u8>(), len))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), rank in 0u8..5) {
        let tmp = tempfile::tempdir().unwrap();
        let _ = check_read(tmp.path(), &bytes, rank);
        // The same bytes behind a valid gzip layer reach the IDX checks too.
        let _ = check_read(tmp.path(), &gzip(&bytes), rank);
    }

    #[test]
    fn valid_files_read_back_exactly((rank, dims, data) in valid_idx(), gz in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let raw = idx(8, &dims, &data);
        let bytes = if gz { gzip(&raw) } else { raw };
        let read = check_read(tmp.path(), &bytes, rank).unwrap();
        prop_assert_eq!(read.dims, dims.iter().map(|&d| d as usize).collect::<Vec<_>>());
        prop_assert_eq!(read.data, data);
    }

    #[test]
    fn mutated_files_never_panic(
        (rank, dims, data) in valid_idx(),
        mutations in prop::collection::vec(common::mutation(), 1..4),
        gz in any::<bool>(),
        mutate_compressed in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = idx(8, &dims, &data);
        if gz && mutate_compressed {
            bytes = gzip(&bytes);
        }
        for m in &mutations {
            common::apply(&mut bytes, m);
        }
        if gz && !mutate_compressed {
            bytes = gzip(&bytes);
        }
        let _ = check_read(tmp.path(), &bytes, rank);
    }

    #[test]
    fn accepted_labels_are_below_the_class_count(
        labels in prop::collection::vec(any::<u8>(), 0..40),
        num_classes in 1usize..300,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("labels");
        std::fs::write(&path, idx(8, &[labels.len() as u32], &labels)).unwrap();
        match read_labels(&path, num_classes) {
            Ok(read) => prop_assert!(read.data.iter().all(|&l| usize::from(l) < num_classes)),
            Err(DatasetError::LabelOutOfRange { index, label, .. }) => {
                prop_assert_eq!(labels[index], label);
                prop_assert!(usize::from(label) >= num_classes);
                prop_assert!(labels[..index].iter().all(|&l| usize::from(l) < num_classes), "the first one");
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

/// The gzip case the allocation budget guards: a tiny file whose header claims the most its size
/// allows. Before the up-front buffer was bounded by the file's size, this reserved the full claim.
#[test]
fn regression_gzip_claim_does_not_size_the_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&idx(8, &[1, 1000, 4000], &[7; 16]));
    bytes.resize(4000, 0); // the deflate bound now allows the 4 MB claim
    let err = check_read(tmp.path(), &bytes, 3).unwrap_err();
    assert!(matches!(err, DatasetError::Truncated { actual_bytes: 32, gzip: true, .. }), "{err:?}");
}
