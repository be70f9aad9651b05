//! The part of the zip format that Keras 3 `.keras` files use, read and written here rather
//! than through the `zip` crate: a `.keras` file is a handful of entries, stored or deflated
//! (through `flate2`, already a dependency), and the general crate with what it alone pulled in
//! cost about 10 s of CPU in a clean release build.
//!
//! [`Archive`] reads what Keras (Python's `zipfile`) and this library write:
//!
//! - archives on one disk, without ZIP64 (so fewer than 65,535 entries, each and the archive
//!   under 4 GiB), found from the end of central directory record, searched for backwards past
//!   an archive comment of up to 65,535 bytes;
//! - entries stored (method 0) or deflated (method 8), with the sizes and CRC-32 of their central
//!   directory record: they are there also when the writer streamed the entry and put them in a
//!   data descriptor after its data (flag bit 3), as `zipfile` does on an unseekable file;
//! - names as UTF-8 (flag bit 11, or ASCII); other bytes are replaced by U+FFFD, since names
//!   are only looked up.
//!
//! It refuses, with [`Error::Unsupported`], encryption, other compression methods, ZIP64 and
//! archives split over disks. Every offset and length read from the archive is checked against
//! its size before it is used; an entry is inflated no further than its declared size (itself
//! bounded by deflate's largest ratio and the caller's limit), then checked against that size and
//! its CRC-32; so a damaged or hostile archive gives an error, never a panic or a large
//! allocation.
//!
//! [`Writer`] writes entries stored or deflated, with a fixed date (1980-01-01 00:00, the
//! earliest a zip can hold) so that the same entries give the same bytes.

mod read;
mod write;

#[cfg(test)]
mod tests;

use super::cursor::{Cursor, CutShort};
use std::fmt;

pub use read::{Archive, Entry};
pub use write::Writer;

/// The signatures that start a local file header, a central directory record, the end of
/// central directory record and the ZIP64 end of central directory locator.
const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;

/// The fixed parts of those records, in bytes.
const LOCAL_HEADER_LEN: usize = 30;
const CENTRAL_HEADER_LEN: usize = 46;
const END_LEN: usize = 22;
const ZIP64_LOCATOR_LEN: usize = 20;

/// General purpose flags: encrypted (bit 0, with bit 6 for strong encryption and bit 13 for an
/// encrypted central directory), and UTF-8 name. Bit 3 (sizes and CRC-32 in a data descriptor
/// after the data) needs nothing: the central directory has them too.
const FLAG_ENCRYPTED: u16 = 1 | 1 << 6 | 1 << 13;
const FLAG_UTF8: u16 = 1 << 11;

/// Deflate's largest ratio: a length 258, distance 1 match can take two bits (one for its
/// length code, one for its distance code), so a deflated byte yields at most 4 * 258 bytes.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// How an entry's data is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Method 0: as is (how Keras writes its entries).
    Stored,
    /// Method 8: raw DEFLATE.
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// Why an archive could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a well-formed zip archive: cut short, a bad signature, a record or an
    /// entry's data lying outside the file.
    Malformed(String),
    /// A well-formed archive outside the subset read here (see the module's documentation).
    Unsupported(String),
    /// The archive has no entry of this name.
    NotFound(String),
    /// An entry's data does not match its central directory record: another size or CRC-32,
    /// or a deflate stream that does not decode.
    Corrupt {
        /// The entry's name.
        name: String,
        /// What did not match.
        reason: String,
    },
    /// An entry declares more bytes than the reader was allowed to return.
    TooLarge {
        /// The entry's name.
        name: String,
        /// Its declared (uncompressed) size.
        size: u64,
        /// The limit it is over.
        limit: u64,
    },
    /// The writer was given what a zip archive without ZIP64 cannot hold (an empty name or one
    /// used twice, a name of more than 65,535 bytes, 65,535 entries, 4 GiB).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(reason) => write!(f, "malformed zip archive: {reason}"),
            Error::Unsupported(what) => write!(f, "unsupported zip feature: {what}"),
            Error::NotFound(name) => write!(f, "no entry '{name}'"),
            Error::Corrupt { name, reason } => write!(f, "entry '{name}': {reason}"),
            Error::TooLarge { name, size, limit } => {
                write!(f, "entry '{name}' declares {size} bytes, over the limit of {limit}")
            }
            Error::Invalid(reason) => write!(f, "cannot write: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Results of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The CRC-32 (ISO-HDLC, as zip uses) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

impl From<CutShort> for Error {
    fn from(cut: CutShort) -> Self {
        Error::Malformed(cut.to_string())
    }
}
