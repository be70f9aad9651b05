//! Reading IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped.
//!
//! An IDX file is a 4-byte magic (two zero bytes, an element-type byte, a dimension-count byte),
//! then one big-endian `u32` per dimension, then the elements in row-major order. Only unsigned
//! bytes (type `0x08`) are supported, the only type the MNIST family uses.
//!
//! Every check that can fail on a damaged or hostile file runs before the data is allocated, and
//! each failure is a [`DatasetError`] naming the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use byteorder::{BigEndian, ReadBytesExt};
use flate2::bufread::GzDecoder;

use super::DatasetError;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// IDX element type code for unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// Deflate needs at least 2 bits (a length and a distance symbol) to emit 258 bytes, so no gzip
/// file can decompress to more than 1032 times its own size. A header promising more is lying,
/// and is rejected before anything is decompressed.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The most memory reserved up front for a gzipped file's data. The header's size is only a claim
/// until the stream delivers it, so beyond this the buffer grows only as real data arrives.
/// (MNIST's largest file, 47 MB, still fits in one allocation.)
const GZIP_PREALLOC_CAP: usize = 64 << 20;

/// Up front, a gzipped file's data gets at most this many times the file's size: MNIST's files
/// compress about 5:1 (zero-heavy label files more, but they are small), so real files still get
/// one allocation while a small file whose header claims the deflate maximum gets a small buffer.
const GZIP_PREALLOC_RATIO: u64 = 8;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxU8 {
    /// The dimensions from the header, outermost first (items, then rows and columns for images).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

impl IdxU8 {
    /// Number of items: the first dimension.
    pub fn len(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for reading its (decompressed) content.
pub struct OpenedFile {
    /// The decompressed content, buffered.
    pub reader: Box<dyn Read>,
    /// Whether the file is gzipped, as told by its first two bytes (not its name).
    pub gzip: bool,
    /// The size of the file on disk (compressed size for gzip).
    pub file_len: u64,
}

/// Opens `path` and, when its first two bytes are the gzip magic, decompresses it on the fly.
pub fn open_decompressed(path: &Path) -> Result<OpenedFile, DatasetError> {
    let io_err = |source| DatasetError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    // A BufReader's first fill reads far more than 2 bytes unless the file is tiny, so peeking
    // like this sees the magic of any file long enough to have one.
    let gzip = buffered.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> =
        if gzip { Box::new(BufReader::new(GzDecoder::new(buffered))) } else { Box::new(buffered) };
    Ok(OpenedFile { reader, gzip, file_len })
}

/// Reads an IDX image file: 3 dimensions (count, rows, columns).
pub fn read_images(path: &Path) -> Result<IdxU8, DatasetError> {
    read_idx_u8(path, 3)
}

/// Reads an IDX label file (1 dimension) and checks every label is below `num_classes`.
pub fn read_labels(path: &Path, num_classes: usize) -> Result<IdxU8, DatasetError> {
    let labels = read_idx_u8(path, 1)?;
    if let Some((index, &label)) =
        labels.data.iter().enumerate().find(|(_, &l)| usize::from(l) >= num_classes)
    {
        return Err(DatasetError::LabelOutOfRange { path: path.to_path_buf(), index, label, num_classes });
    }
    Ok(labels)
}

/// Reads an IDX file of unsigned bytes with exactly `rank` dimensions, raw or gzipped.
///
/// Fails on a bad magic, another element type or rank, dimensions whose product overflows or
/// exceeds what the file can hold, a file or gzip stream that ends early, a corrupt gzip stream,
/// or bytes after the data.
pub fn read_idx_u8(path: &Path, rank: u8) -> Result<IdxU8, DatasetError> {
    let OpenedFile { mut reader, gzip, file_len } = open_decompressed(path)?;
    let path_buf = || path.to_path_buf();
    let stream_err = |source: io::Error| stream_error(path, gzip, source);

    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic).map_err(stream_err)?;
    if got < magic.len() {
        // Too short to tell; a non-IDX file gets the clearer "bad magic" when its bytes show it.
        if magic[..got.min(2)].iter().any(|&b| b != 0) {
            return Err(DatasetError::BadMagic { path: path_buf(), found: magic });
        }
        return Err(truncated(path, gzip, 4, got as u64));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DatasetError::BadMagic { path: path_buf(), found: magic });
    }
    if magic[2] != TYPE_U8 {
        return Err(DatasetError::UnsupportedType { path: path_buf(), type_code: magic[2] });
    }
    if magic[3] != rank {
        return Err(DatasetError::WrongRank { path: path_buf(), expected: rank, found: magic[3] });
    }

    let header_len = 4 + 4 * u64::from(rank);
    let mut dims_raw = Vec::with_capacity(usize::from(rank));
    for _ in 0..rank {
        match reader.read_u32::<BigEndian>() {
            Ok(dim) => dims_raw.push(dim),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // read_u32 does not say how much it got; the dims read so far are a lower bound.
                let got = 4 + 4 * dims_raw.len() as u64;
                return Err(truncated(path, gzip, header_len, got));
            }
            Err(e) => return Err(stream_err(e)),
        }
    }
    let data_len = dims_raw
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .ok_or_else(|| DatasetError::SizeOverflow { path: path_buf(), dims: dims_raw.clone() })?;
    let expected_total = header_len + data_len;

    // Compare the claim with what the file can hold before allocating anything for it.
    if gzip {
        let max_bytes = file_len.saturating_mul(MAX_DEFLATE_RATIO);
        if expected_total > max_bytes {
            return Err(DatasetError::SizeExceedsFile {
                path: path_buf(),
                claimed_bytes: data_len,
                max_bytes,
            });
        }
    } else if expected_total > file_len {
        return Err(truncated(path, gzip, expected_total, file_len));
    } else if expected_total < file_len {
        return Err(DatasetError::TrailingData { path: path_buf(), expected_bytes: expected_total });
    }
    let data_len_usize = usize::try_from(data_len)
        .map_err(|_| DatasetError::SizeOverflow { path: path_buf(), dims: dims_raw.clone() })?;

    let prealloc = if gzip {
        let by_file = usize::try_from(file_len.saturating_mul(GZIP_PREALLOC_RATIO)).unwrap_or(usize::MAX);
        data_len_usize.min(GZIP_PREALLOC_CAP).min(by_file)
    } else {
        data_len_usize
    };
    let mut data = Vec::with_capacity(prealloc);
    match (&mut reader).take(data_len).read_to_end(&mut data) {
        Ok(_) => {}
        // A deflate stream cut short surfaces as an early end; keep what arrived for the message.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(truncated(path, gzip, expected_total, header_len + data.len() as u64));
        }
        Err(e) => return Err(stream_err(e)),
    }
    if (data.len() as u64) < data_len {
        return Err(truncated(path, gzip, expected_total, header_len + data.len() as u64));
    }
    // One more read must hit the end. For gzip this also makes the decoder check the trailer's CRC
    // and length, which it only does once the deflate stream is finished.
    let mut probe = [0u8; 1];
    match read_full(&mut reader, &mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(DatasetError::TrailingData { path: path_buf(), expected_bytes: expected_total }),
        Err(e) => return Err(stream_err(e)),
    }

    let dims = dims_raw.iter().map(|&d| d as usize).collect();
    Ok(IdxU8 { dims, data })
}

fn truncated(path: &Path, gzip: bool, expected_bytes: u64, actual_bytes: u64) -> DatasetError {
    DatasetError::Truncated { path: path.to_path_buf(), expected_bytes, actual_bytes, gzip }
}

/// Classifies an I/O error from the (possibly decompressing) reader: in a gzip stream anything
/// but an OS error means the compressed data is bad.
pub(crate) fn stream_error(path: &Path, gzip: bool, source: io::Error) -> DatasetError {
    let reason = match source.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => source.to_string(),
        // A stream cut short where the decoder notices it, e.g. inside the trailer (CRC, length).
        io::ErrorKind::UnexpectedEof => format!("the stream ends early ({source})"),
        _ => String::new(),
    };
    if gzip && !reason.is_empty() {
        DatasetError::CorruptGzip { path: path.to_path_buf(), reason }
    } else {
        DatasetError::Io { path: path.to_path_buf(), source }
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    /// An IDX file's bytes: magic for `type_code` and `dims.len()` dimensions, the dims, `data`.
    pub(crate) fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, type_code, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Asserts `result` failed with a message naming `path`, and returns the error.
    fn err_naming(result: Result<IdxU8, DatasetError>, path: &Path) -> DatasetError {
        let err = result.expect_err("reading should fail");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(err.to_string().contains(name), "message should name {name}: {err}");
        err
    }

    /// Two 2x3 images with pixel values 0..12.
    fn image_bytes() -> Vec<u8> {
        idx_bytes(8, &[2, 2, 3], &(0..12).collect::<Vec<u8>>())
    }

    #[test]
    fn reads_raw_and_gzipped_images_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = write(tmp.path(), "images-raw", &image_bytes());
        // Gzip is told by the content: this one has no .gz in its name.
        let gz = write(tmp.path(), "images-compressed", &gzip(&image_bytes()));
        for path in [raw, gz] {
            let images = read_images(&path).unwrap();
            assert_eq!(images.dims, [2, 2, 3]);
            assert_eq!(images.data, (0..12).collect::<Vec<u8>>());
            assert_eq!(images.len(), 2);
        }
    }

    #[test]
    fn reads_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "labels.gz", &gzip(&idx_bytes(8, &[3], &[7, 0, 9])));
        let labels = read_labels(&path, 10).unwrap();
        assert_eq!((labels.dims, labels.data), (vec![3], vec![7, 0, 9]));
    }

    #[test]
    fn empty_dataset_is_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "empty", &idx_bytes(8, &[0, 28, 28], &[]));
        assert!(read_images(&path).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_magic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "not-idx.txt", b"hello, world, this is text");
        let err = err_naming(read_images(&path), &path);
        assert!(matches!(err, DatasetError::BadMagic { found, .. } if found == *b"hell"), "{err:?}");
        // Gzipped text: the check is on the decompressed content.
        let path = write(tmp.path(), "not-idx.gz", &gzip(b"hello, world"));
        assert!(matches!(err_naming(read_images(&path), &path), DatasetError::BadMagic { .. }));
    }

    #[test]
    fn rejects_unsupported_type() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "floats", &idx_bytes(0x0d, &[1], &[0, 0, 0, 0]));
        let err = err_naming(read_labels(&path, 10), &path);
        assert!(matches!(err, DatasetError::UnsupportedType { type_code: 0x0d, .. }), "{err:?}");
    }

    #[test]
    fn rejects_wrong_rank() {
        let tmp = tempfile::tempdir().unwrap();
        // Labels where images are expected, and the other way round.
        let labels = write(tmp.path(), "labels-file", &idx_bytes(8, &[2], &[1, 2]));
        let err = err_naming(read_images(&labels), &labels);
        assert!(matches!(err, DatasetError::WrongRank { expected: 3, found: 1, .. }), "{err:?}");
        let images = write(tmp.path(), "images-file", &image_bytes());
        let err = err_naming(read_labels(&images, 10), &images);
        assert!(matches!(err, DatasetError::WrongRank { expected: 1, found: 3, .. }), "{err:?}");
    }

    #[test]
    fn header_of_2_pow_93_bytes_fails_fast() {
        let tmp = tempfile::tempdir().unwrap();
        let huge = 1u32 << 31;
        for (name, bytes) in [
            ("huge-raw", idx_bytes(8, &[huge, huge, huge], &[1, 2, 3])),
            ("huge.gz", gzip(&idx_bytes(8, &[huge, huge, huge], &[1, 2, 3]))),
        ] {
            let path = write(tmp.path(), name, &bytes);
            let started = std::time::Instant::now();
            let err = err_naming(read_images(&path), &path);
            assert!(
                matches!(err, DatasetError::SizeOverflow { ref dims, .. } if dims == &[huge; 3]),
                "{err:?}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn header_larger_than_the_file_fails_before_allocating() {
        let tmp = tempfile::tempdir().unwrap();
        // 2^50 bytes: no overflow, but far beyond the file. Allocating it would abort the test.
        let dims = [1 << 20, 1 << 20, 1 << 10];
        let raw = write(tmp.path(), "claims-a-petabyte", &idx_bytes(8, &dims, &[0; 64]));
        let err = err_naming(read_images(&raw), &raw);
        assert!(matches!(err, DatasetError::Truncated { actual_bytes: 80, gzip: false, .. }), "{err:?}");
        let gz = write(tmp.path(), "claims-a-petabyte.gz", &gzip(&idx_bytes(8, &dims, &[0; 64])));
        let err = err_naming(read_images(&gz), &gz);
        assert!(
            matches!(err, DatasetError::SizeExceedsFile { claimed_bytes, .. } if claimed_bytes == 1 << 50)
        );
    }

    #[test]
    fn gzip_claim_within_the_deflate_bound_is_read_incrementally() {
        let tmp = tempfile::tempdir().unwrap();
        // 200 MB claimed, plausible for the compressed size (zeros compress ~1000:1), but only
        // 1 MB present: reading must stop at the real end with a typed error.
        let dims = [200_000, 1000, 1];
        let mut bytes = idx_bytes(8, &dims, &[]);
        bytes.resize(bytes.len() + (1 << 20), 0);
        let mut compressed = gzip(&bytes);
        // Pad the file (after the gzip stream) so the deflate bound does not reject the claim.
        let padding = (200_000_000 / MAX_DEFLATE_RATIO as usize + 1).saturating_sub(compressed.len());
        compressed.resize(compressed.len() + padding, 0);
        let path = write(tmp.path(), "short.gz", &compressed);
        let err = err_naming(read_images(&path), &path);
        assert!(
            matches!(err, DatasetError::Truncated { actual_bytes, gzip: true, .. } if actual_bytes == 16 + (1 << 20)),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_truncated_raw_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = image_bytes();
        bytes.truncate(bytes.len() - 5);
        let path = write(tmp.path(), "cut-short", &bytes);
        let err = err_naming(read_images(&path), &path);
        assert!(
            matches!(err, DatasetError::Truncated { expected_bytes: 28, actual_bytes: 23, gzip: false, .. }),
            "{err:?}"
        );
        // Cut inside the header.
        let path = write(tmp.path(), "cut-in-header", &image_bytes()[..10]);
        let err = err_naming(read_images(&path), &path);
        assert!(matches!(err, DatasetError::Truncated { expected_bytes: 16, .. }), "{err:?}");
        let path = write(tmp.path(), "two-bytes", &[0, 0]);
        assert!(matches!(err_naming(read_images(&path), &path), DatasetError::Truncated { .. }));
    }

    #[test]
    fn rejects_gzip_stream_cut_mid_stream() {
        let tmp = tempfile::tempdir().unwrap();
        // Incompressible-ish data so the cut lands inside the deflate data, not the trailer.
        let pixels: Vec<u8> = (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let compressed = gzip(&idx_bytes(8, &[10, 20, 20], &pixels));
        for cut in [compressed.len() / 2, compressed.len() - 4, 12] {
            let path = write(tmp.path(), &format!("cut-at-{cut}.gz"), &compressed[..cut]);
            let err = err_naming(read_images(&path), &path);
            assert!(
                matches!(err, DatasetError::Truncated { gzip: true, .. } | DatasetError::CorruptGzip { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn rejects_corrupt_gzip_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let mut compressed = gzip(&image_bytes());
        let crc_at = compressed.len() - 8;
        compressed[crc_at] ^= 0xff;
        let path = write(tmp.path(), "bad-crc.gz", &compressed);
        let err = err_naming(read_images(&path), &path);
        assert!(matches!(err, DatasetError::CorruptGzip { .. }), "{err:?}");
    }

    #[test]
    fn rejects_trailing_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = image_bytes();
        bytes.extend_from_slice(b"junk");
        let raw = write(tmp.path(), "with-junk", &bytes);
        let err = err_naming(read_images(&raw), &raw);
        assert!(matches!(err, DatasetError::TrailingData { expected_bytes: 28, .. }), "{err:?}");
        let gz = write(tmp.path(), "with-junk.gz", &gzip(&bytes));
        let err = err_naming(read_images(&gz), &gz);
        assert!(matches!(err, DatasetError::TrailingData { expected_bytes: 28, .. }), "{err:?}");
    }

    #[test]
    fn rejects_label_out_of_range() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "labels-with-10", &idx_bytes(8, &[4], &[0, 9, 10, 3]));
        let err = read_labels(&path, 10).expect_err("label 10 is not a digit");
        assert!(
            matches!(err, DatasetError::LabelOutOfRange { index: 2, label: 10, num_classes: 10, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("labels-with-10"), "{err}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("no-such-file");
        let err = err_naming(read_images(&path), &path);
        assert!(
            matches!(err, DatasetError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
    }
}
