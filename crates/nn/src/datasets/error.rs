//! [`DatasetError`]: why a dataset could not be found, read or downloaded.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a dataset could not be found, read or downloaded.
///
/// Every variant about a file names that file's path in its message, so that a user can tell which
/// of the four MNIST files is damaged.
#[derive(Debug)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file does not start with the IDX magic (two zero bytes).
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The IDX element type is not `0x08` (unsigned byte), the only type MNIST uses.
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code found in the header.
        type_code: u8,
    },
    /// The IDX header has the wrong number of dimensions (images need 3, labels 1).
    WrongRank {
        /// The file.
        path: PathBuf,
        /// The number of dimensions needed.
        expected: u8,
        /// The number of dimensions in the header.
        found: u8,
    },
    /// The product of the header's dimensions overflows a 64-bit integer.
    SizeOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header.
        dims: Vec<u32>,
    },
    /// The header promises more data than a gzip file of this size can decompress to.
    SizeExceedsFile {
        /// The file.
        path: PathBuf,
        /// Data bytes the header promises.
        claimed_bytes: u64,
        /// The most bytes the file can hold.
        max_bytes: u64,
    },
    /// The file (or its decompressed stream) ends before the data its header promises.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes needed (header and data).
        expected_bytes: u64,
        /// Bytes actually there.
        actual_bytes: u64,
        /// Whether the file is gzipped (then the counts are of decompressed bytes).
        gzip: bool,
    },
    /// The file holds more bytes after the data its header describes.
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Bytes the header accounts for (header and data).
        expected_bytes: u64,
    },
    /// The gzip stream is corrupt (bad deflate data, CRC or length check).
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor reported.
        reason: String,
    },
    /// A label is not a class index.
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Position of the label in the file (0-based).
        index: usize,
        /// The label value.
        label: u8,
        /// Number of classes; labels must be below it.
        num_classes: usize,
    },
    /// An image file and its label file hold different numbers of items.
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Images in it.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Labels in it.
        labels: usize,
    },
    /// The dataset's files were not found and downloading was turned off.
    NotFound {
        /// The dataset's name ("MNIST", "Fashion-MNIST").
        dataset: &'static str,
        /// The folders searched, in order.
        searched: Vec<PathBuf>,
        /// The folder a download would have used: the suggested place for the files.
        default_dir: PathBuf,
        /// The four file names needed (each may also be gzipped, with `.gz`).
        files: Vec<String>,
        /// The environment variable that can point at a folder holding them.
        env_var: &'static str,
    },
    /// Every mirror failed for one of the dataset's files.
    DownloadFailed {
        /// The dataset's name ("MNIST", "Fashion-MNIST").
        dataset: &'static str,
        /// Where the files were to be written, and so where a user can put them by hand.
        dest_dir: PathBuf,
        /// The file names needed.
        files: Vec<String>,
        /// The environment variable that can point at a folder holding them.
        env_var: &'static str,
        /// Each URL tried and why it failed, in order.
        attempts: Vec<DownloadAttempt>,
    },
}

/// One failed try at downloading one file from one mirror.
#[derive(Debug)]
pub struct DownloadAttempt {
    /// The URL tried.
    pub url: String,
    /// Why it failed.
    pub failure: DownloadFailure,
}

/// Why a download from one mirror failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DownloadFailure {
    /// The server answered with an HTTP error status (404, 503, ...).
    HttpStatus(u16),
    /// The request failed before or while the body arrived (DNS, connection, TLS, timeout).
    Transport(String),
    /// The file arrived but its decompressed content has the wrong SHA-256.
    ChecksumMismatch {
        /// The SHA-256 expected, hex.
        expected: String,
        /// The SHA-256 of what arrived, hex.
        actual: String,
    },
    /// The file arrived but is not valid gzip, so it could not be verified.
    CorruptGzip(String),
    /// Writing the file to disk failed.
    Io(io::Error),
}

impl fmt::Display for DownloadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadFailure::HttpStatus(code) => write!(f, "HTTP status {code}"),
            DownloadFailure::Transport(reason) => write!(f, "{reason}"),
            DownloadFailure::ChecksumMismatch { expected, actual } => {
                write!(f, "SHA-256 of the decompressed content is {actual}, expected {expected}")
            }
            DownloadFailure::CorruptGzip(reason) => write!(f, "not a valid gzip file: {reason}"),
            DownloadFailure::Io(e) => write!(f, "cannot write the file: {e}"),
        }
    }
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::Io { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            DatasetError::BadMagic { path, found } => write!(
                f,
                "{}: not an IDX file: it starts with bytes {found:02x?}, an IDX file starts with two zero bytes",
                path.display()
            ),
            DatasetError::UnsupportedType { path, type_code } => write!(
                f,
                "{}: unsupported IDX element type 0x{type_code:02x}, only 0x08 (unsigned byte) is supported",
                path.display()
            ),
            DatasetError::WrongRank { path, expected, found } => write!(
                f,
                "{}: IDX header has {found} dimension(s), expected {expected} \
                 (images have 3: count, rows, columns; labels have 1: count)",
                path.display()
            ),
            DatasetError::SizeOverflow { path, dims } => write!(
                f,
                "{}: IDX header dimensions {dims:?} multiply to more than 2^64 bytes",
                path.display()
            ),
            DatasetError::SizeExceedsFile { path, claimed_bytes, max_bytes } => write!(
                f,
                "{}: IDX header promises {claimed_bytes} data bytes, but this gzip file can decompress \
                 to at most {max_bytes} bytes",
                path.display()
            ),
            DatasetError::Truncated { path, expected_bytes, actual_bytes, gzip } => write!(
                f,
                "{}: truncated: the IDX header needs {expected_bytes} bytes (header and data) but the \
                 {}only holds {actual_bytes}",
                path.display(),
                if *gzip { "gzip stream ends early and " } else { "file " }
            ),
            DatasetError::TrailingData { path, expected_bytes } => write!(
                f,
                "{}: unexpected data after the {expected_bytes} bytes the IDX header describes",
                path.display()
            ),
            DatasetError::CorruptGzip { path, reason } => {
                write!(f, "{}: corrupt gzip stream: {reason}", path.display())
            }
            DatasetError::LabelOutOfRange { path, index, label, num_classes } => write!(
                f,
                "{}: label {label} at index {index} is not a class index (0..{num_classes})",
                path.display()
            ),
            DatasetError::CountMismatch { images_path, images, labels_path, labels } => write!(
                f,
                "{} holds {images} images but {} holds {labels} labels",
                images_path.display(),
                labels_path.display()
            ),
            DatasetError::NotFound { dataset, searched, default_dir, files, env_var } => {
                write!(f, "{dataset} not found and downloading is off. Searched:")?;
                for dir in searched {
                    write!(f, "\n  {}", dir.display())?;
                }
                write!(f, "\n{}", where_to_put(default_dir, files, env_var))
            }
            DatasetError::DownloadFailed { dataset, dest_dir, files, env_var, attempts } => {
                write!(f, "could not download {dataset}; every mirror failed:")?;
                for attempt in attempts {
                    write!(f, "\n  {}: {}", attempt.url, attempt.failure)?;
                }
                write!(f, "\n{}", where_to_put(dest_dir, files, env_var))
            }
        }
    }
}

/// The "how to fix it" paragraph of the not-found and download errors.
fn where_to_put(dir: &std::path::Path, files: &[String], env_var: &str) -> String {
    let dir = dir.display();
    format!(
        "To provide the files yourself, put these {} files in {dir} (gzipped as named, or decompressed \
         without the .gz):\n  {}\n\
         or point to a folder that holds them with --data DIR or the {env_var} environment variable.",
        files.len(),
        files.join("\n  ")
    )
}

impl std::error::Error for DatasetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DatasetError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
