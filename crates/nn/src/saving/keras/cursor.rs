//! Little-endian fields read one after another from a slice of a file: the one bounds-checked
//! reader under the HDF5 (`hdf5/`) and zip (`zip/`) parsers. Running past the slice's end is a
//! [`CutShort`] naming what was being read, which each parser turns into its "malformed" error.

use std::fmt;

/// The slice ended before the field being read: `what` names the structure.
#[derive(Debug)]
pub(super) struct CutShort(String);

impl fmt::Display for CutShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is cut short", self.0)
    }
}

/// A position in `bytes`, read forward; `what` names the structure in errors.
pub(super) struct Cursor<'a, 'w> {
    bytes: &'a [u8],
    /// Bytes read so far.
    pub(super) pos: usize,
    what: &'w str,
}

impl<'a, 'w> Cursor<'a, 'w> {
    pub(super) fn new(bytes: &'a [u8], what: &'w str) -> Self {
        Cursor { bytes, pos: 0, what }
    }

    /// What the structure being read is (for errors beyond running short).
    pub(super) fn what(&self) -> &'w str {
        self.what
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], CutShort> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| CutShort(self.what.to_string()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), CutShort> {
        self.take(n).map(|_| ())
    }

    pub(super) fn u8(&mut self) -> Result<u8, CutShort> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, CutShort> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, CutShort> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}
