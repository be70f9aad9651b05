//! Each kind of bad IDX / MNIST input gives its own typed error, whose message names the file and
//! says what is wrong, before anything large is allocated. Files are made here, a few bytes each.

mod idx_files;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use idx_files::{gzip, idx};
use nn::datasets::idx::{read_images, read_labels};
use nn::datasets::{mnist, DatasetError};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `path` shown as in the messages.
fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn wrong_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "image.png", b"\x89PNG\r\n\x1a\n and more");
    let err = read_images(&path).unwrap_err();
    assert!(matches!(err, DatasetError::BadMagic { found: [0x89, b'P', b'N', b'G'], .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: not an IDX file: it starts with bytes [89, 50, 4e, 47], an IDX file starts with two zero bytes", p(&path))
    );
}

#[test]
fn wrong_dimension_count() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "two-dims", &idx(8, &[2, 3], &[0; 6]));
    let err = read_images(&path).unwrap_err();
    assert!(matches!(err, DatasetError::WrongRank { expected: 3, found: 2, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: IDX header has 2 dimension(s), expected 3 (images have 3: count, rows, columns; labels have 1: count)",
            p(&path)
        )
    );
}

#[test]
fn unsupported_element_type() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "int32-labels", &idx(0x0c, &[1], &[0, 0, 0, 1]));
    let err = read_labels(&path, 10).unwrap_err();
    assert!(matches!(err, DatasetError::UnsupportedType { type_code: 0x0c, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: unsupported IDX element type 0x0c, only 0x08 (unsigned byte) is supported", p(&path))
    );
}

#[test]
fn dimensions_whose_product_overflows() {
    let tmp = tempfile::tempdir().unwrap();
    let dims = [u32::MAX, u32::MAX, 3];
    let path = write(tmp.path(), "overflow", &idx(8, &dims, &[1, 2, 3]));
    let err = read_images(&path).unwrap_err();
    assert!(matches!(&err, DatasetError::SizeOverflow { dims: d, .. } if d == &dims), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: IDX header dimensions [4294967295, 4294967295, 3] multiply to more than 2^64 bytes",
            p(&path)
        )
    );
}

#[test]
fn dimensions_beyond_the_raw_file_size_fail_fast() {
    let tmp = tempfile::tempdir().unwrap();
    // 60000 x 28 x 28 = 47 MB promised by a 26-byte file: reported without allocating it.
    let path = write(tmp.path(), "lying-header", &idx(8, &[60000, 28, 28], &[0; 10]));
    let started = Instant::now();
    let err = read_images(&path).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            err,
            DatasetError::Truncated { expected_bytes: 47_040_016, actual_bytes: 26, gzip: false, .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated: the IDX header needs 47040016 bytes (header and data) but the file only holds 26",
            p(&path)
        )
    );
}

#[test]
fn dimensions_beyond_what_a_gzip_file_can_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let compressed = gzip(&idx(8, &[60000, 28, 28], &[0; 10]));
    let path = write(tmp.path(), "lying-header.gz", &compressed);
    let err = read_images(&path).unwrap_err();
    let max = compressed.len() as u64 * 1032;
    assert!(
        matches!(err, DatasetError::SizeExceedsFile { claimed_bytes: 47_040_000, max_bytes, .. } if max_bytes == max),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: IDX header promises 47040000 data bytes, but this gzip file can decompress to at most {max} bytes",
            p(&path)
        )
    );
}

#[test]
fn truncated_raw_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "cut", &idx(8, &[2, 2, 2], &[1, 2, 3, 4, 5]));
    let err = read_images(&path).unwrap_err();
    assert!(matches!(err, DatasetError::Truncated { expected_bytes: 24, actual_bytes: 21, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated: the IDX header needs 24 bytes (header and data) but the file only holds 21",
            p(&path)
        )
    );
}

#[test]
fn gzip_stream_that_ends_early() {
    let tmp = tempfile::tempdir().unwrap();
    // A complete, valid gzip stream whose content stops after 3 of the 8 promised data bytes.
    let path = write(tmp.path(), "short-stream.gz", &gzip(&idx(8, &[2, 2, 2], &[1, 2, 3])));
    let err = read_images(&path).unwrap_err();
    assert!(
        matches!(err, DatasetError::Truncated { expected_bytes: 24, actual_bytes: 19, gzip: true, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated: the IDX header needs 24 bytes (header and data) but the gzip stream ends early \
             and only holds 19",
            p(&path)
        )
    );

    // The compressed file itself cut short, inside the deflate data.
    let pixels: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let whole = gzip(&idx(8, &[10, 20, 20], &pixels));
    let path = write(tmp.path(), "cut-file.gz", &whole[..whole.len() / 2]);
    let err = read_images(&path).unwrap_err();
    let msg = err.to_string();
    match err {
        DatasetError::Truncated { expected_bytes: 4016, actual_bytes, gzip: true, .. } => {
            assert!(actual_bytes < 4016, "{msg}");
            assert!(msg.starts_with(&format!("{}: truncated: ", p(&path))), "{msg}");
        }
        DatasetError::CorruptGzip { .. } => {
            assert!(msg.starts_with(&format!("{}: corrupt gzip stream: ", p(&path))), "{msg}");
        }
        other => panic!("expected a truncated or corrupt gzip stream, got {other:?}"),
    }
}

#[test]
fn label_not_below_the_class_count() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "labels", &idx(8, &[5], &[0, 1, 9, 200, 3]));
    let err = read_labels(&path, 10).unwrap_err();
    assert!(
        matches!(err, DatasetError::LabelOutOfRange { index: 3, label: 200, num_classes: 10, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("{}: label 200 at index 3 is not a class index (0..10)", p(&path)));
    // The same labels are fine with 201 classes: the bound is the caller's.
    assert_eq!(read_labels(&path, 201).unwrap().data, [0, 1, 9, 200, 3]);
}

#[test]
fn image_and_label_counts_that_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let images = write(tmp.path(), "imgs", &idx(8, &[3, 1, 2], &[0; 6]));
    let labels = write(tmp.path(), "lbls.gz", &gzip(&idx(8, &[2], &[4, 5])));
    let err = mnist::load_split(&images, &labels).unwrap_err();
    assert!(
        matches!(err, nn::Error::Dataset(DatasetError::CountMismatch { images: 3, labels: 2, .. })),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("{} holds 3 images but {} holds 2 labels", p(&images), p(&labels)));
}

#[test]
fn small_gzip_file_with_a_big_plausible_claim_reads_incrementally() {
    // 1 MB of zeros compresses to ~1 KB, so a claim of 1 MB per KB is within the deflate bound;
    // the stream delivers only 1000 bytes. The reader must stop there without having reserved
    // the claimed size (a lying header must not cost memory): checked here by time only, and by
    // the allocation-counting property tests in idx_fuzz.rs.
    let tmp = tempfile::tempdir().unwrap();
    let compressed = gzip(&idx(8, &[1000, 1000, 1], &[0; 1000]));
    let mut padded = compressed.clone();
    padded.resize(1000, 0); // bytes after the gzip stream raise the deflate bound to ~1 MB
    let path = write(tmp.path(), "plausible.gz", &padded);
    let err = read_images(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::Truncated { expected_bytes: 1_000_016, actual_bytes: 1016, gzip: true, .. }
        ),
        "{err:?}"
    );
}
