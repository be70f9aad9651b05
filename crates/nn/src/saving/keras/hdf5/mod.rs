//! The part of HDF5 that Keras 3 weights files (`model.weights.h5`) use, read and written here
//! rather than through a general HDF5 crate: Keras writes a small fixed subset (groups, 32-bit
//! float datasets, string attributes), and a complete implementation was the slowest crate of a
//! clean build.
//!
//! [`File`] reads what h5py writes by default (`libver="earliest"`, as Keras saves):
//!
//! - superblock version 0 or 1; version 2 or 3 too (h5py's `libver="latest"`, and this
//!   library's `.keras` files before this reader), checksums not verified;
//! - object headers version 1, and version 2 (`OHDR`), with their continuation blocks;
//! - groups as symbol tables (a version 1 B-tree of any depth, symbol table nodes, a local heap),
//!   or as hard links in the object header (compact link storage);
//! - datasets stored contiguously or compactly, unfiltered, of any datatype whose class and size
//!   it reports; values are read as little-endian IEEE 32-bit floats only.
//!
//! It refuses, with [`Error::Unsupported`], chunked or filtered storage, dense link storage (a
//! fractal heap: more than 8 links in a `libver="latest"` group), soft and external links, and
//! shared (committed) datatypes; Keras writes none of them. Every offset and length read from
//! the file is checked against its size before it is used, and every walk through linked
//! structures (B-trees, header continuations) is bounded, so a damaged or hostile file gives an
//! error, never a panic, a hang or a large allocation.
//!
//! [`FileBuilder`] writes the simplest layout h5py and the HDF5 library read: superblock 0,
//! version 1 object headers, symbol-table groups (B-trees of as many levels as the group's size
//! needs), contiguous little-endian `f32` datasets and fixed-length string attributes.

mod header;
mod read;
mod write;

#[cfg(test)]
mod tests;

use super::cursor::{Cursor, CutShort};
use std::fmt;

pub use read::{Dataset, File, Group};
pub use write::{FileBuilder, GroupBuilder};

/// The undefined address: all bits set.
const UNDEFINED: u64 = u64::MAX;

/// Why a file could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The path names nothing in the file.
    NotFound(String),
    /// The path names an object of the other kind (a group where a dataset is wanted, or the
    /// reverse).
    WrongKind {
        /// The path.
        path: String,
        /// What was wanted: `"group"` or `"dataset"`.
        expected: &'static str,
    },
    /// The bytes are not well-formed HDF5: cut short, a bad signature, a length or address
    /// pointing outside the file, a cycle.
    Malformed(String),
    /// Well-formed HDF5 outside the subset read here (see the module's documentation).
    Unsupported(String),
    /// The dataset's elements are not little-endian IEEE 32-bit floats.
    NotF32 {
        /// The element type found, as [`Datatype::label`] names it (`F64`, `I32`, ...).
        found: String,
    },
    /// The writer was given something HDF5 cannot hold (an empty name or one with `/`, a name
    /// used twice, values that do not fill the shape).
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(path) => write!(f, "no object at '{path}'"),
            Error::WrongKind { path, expected } => write!(f, "'{path}' is not a {expected}"),
            Error::Malformed(reason) => write!(f, "malformed HDF5: {reason}"),
            Error::Unsupported(what) => write!(f, "unsupported HDF5 feature: {what}"),
            Error::NotF32 { found } => write!(f, "elements are {found}, not F32"),
            Error::Invalid(reason) => write!(f, "cannot write: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Results of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A dataset's element type, as far as it is needed to read 32-bit floats and to name any
/// other type in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// Class 0, fixed-point: integers.
    Integer {
        /// Bytes per element.
        size: u32,
        /// Two's complement rather than unsigned.
        signed: bool,
        /// Most significant byte first.
        big_endian: bool,
    },
    /// Class 1, floating point.
    Float {
        /// Bytes per element.
        size: u32,
        /// Most significant byte first (or VAX order).
        big_endian: bool,
        /// Whether the bit fields (sign, exponent, mantissa, bias) are IEEE 754's for this size.
        ieee: bool,
    },
    /// Any other class (3 string, 6 compound, 9 variable-length, ...), by its number.
    Other {
        /// The class number.
        class: u8,
        /// Bytes per element.
        size: u32,
    },
}

impl Datatype {
    /// Bytes per element.
    pub fn size(&self) -> u32 {
        match *self {
            Datatype::Integer { size, .. } | Datatype::Float { size, .. } | Datatype::Other { size, .. } => {
                size
            }
        }
    }

    /// Whether elements are little-endian IEEE 754 binary32, the only type read as values.
    pub fn is_f32(&self) -> bool {
        matches!(self, Datatype::Float { size: 4, big_endian: false, ieee: true })
    }

    /// A short name as safetensors spells its types (`F32`, `F64`, `I64`, `U8`), with
    /// `(big-endian)` or `(non-IEEE)` appended where that is what differs, and the class's name
    /// for the rest (`string`, `compound`, ...).
    pub fn label(&self) -> String {
        let order = |big: bool| if big { " (big-endian)" } else { "" };
        match *self {
            Datatype::Integer { size, signed, big_endian } => {
                format!("{}{}{}", if signed { "I" } else { "U" }, size as u64 * 8, order(big_endian))
            }
            Datatype::Float { size, big_endian, ieee } => {
                format!("F{}{}{}", size as u64 * 8, if ieee { "" } else { " (non-IEEE)" }, order(big_endian))
            }
            Datatype::Other { class, .. } => match class {
                2 => "time",
                3 => "string",
                4 => "bitfield",
                5 => "opaque",
                6 => "compound",
                7 => "reference",
                8 => "enum",
                9 => "variable-length",
                10 => "array",
                _ => "unknown class",
            }
            .to_string(),
        }
    }
}

impl From<CutShort> for Error {
    fn from(cut: CutShort) -> Self {
        Error::Malformed(cut.to_string())
    }
}

/// HDF5's integers of a size the superblock gives (1 to 8 bytes: offsets and lengths), read
/// from a [`Cursor`].
trait Uint {
    /// An unsigned integer of `size` bytes, with all bits set mapped to [`UNDEFINED`] whatever
    /// the size.
    fn uint(&mut self, size: usize) -> Result<u64>;
}

impl Uint for Cursor<'_, '_> {
    fn uint(&mut self, size: usize) -> Result<u64> {
        let bytes = self.take(size)?;
        if bytes.len() > 8 {
            return Err(Error::Unsupported(format!("{}-byte integers in {}", bytes.len(), self.what())));
        }
        if !bytes.is_empty() && bytes.iter().all(|&b| b == 0xFF) {
            return Ok(UNDEFINED);
        }
        Ok(bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }
}
