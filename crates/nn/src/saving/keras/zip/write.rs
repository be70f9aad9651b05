//! Writing: each entry's local header and data, then the central directory and its end record.

use std::io::Write;

use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::{crc32, Error, Method, Result, CENTRAL_HEADER, END, FLAG_UTF8, LOCAL_HEADER};

/// Version 2.0, the first with deflate, needed to extract (and, in the high byte of the version
/// made by, Unix: the external attributes hold a mode).
const VERSION_NEEDED: u16 = 20;
const VERSION_MADE_BY: u16 = 3 << 8 | VERSION_NEEDED;
/// A regular file, `rw-r--r--`, as the external attributes' high half holds it on Unix.
const EXTERNAL_ATTRIBUTES: u32 = 0o100644 << 16;
/// 1980-01-01 00:00:00 in MS-DOS form (day 1, month 1, year 1980 + 0; time 0): a fixed date so
/// that the same entries give the same bytes.
const DOS_DATE: u16 = 1 << 5 | 1;
const DOS_TIME: u16 = 0;

/// A zip archive built in memory: entries are added whole, in order, and [`Writer::finish`]
/// returns the archive's bytes.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    central: Vec<u8>,
    names: Vec<String>,
}

/// `value` as a 32-bit field, or [`Error::Invalid`]: all bits set would mean ZIP64.
fn field32(value: usize, what: &str) -> Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|&v| v != u32::MAX)
        .ok_or_else(|| Error::Invalid(format!("{what} of {value} bytes (4 GiB or more needs ZIP64)")))
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

impl Writer {
    /// An empty archive.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Adds an entry named `name` (a path with `/` separators) holding `data`, stored or
    /// deflated (at flate2's default level). Fails with [`Error::Invalid`] for an empty name, a
    /// name already added or of more than 65,535 bytes, a 65,535th entry, or an entry or archive
    /// of 4 GiB or more.
    pub fn add(&mut self, name: &str, data: &[u8], method: Method) -> Result<()> {
        if name.is_empty() || self.names.iter().any(|n| n == name) {
            return Err(Error::Invalid(format!("the entry name '{name}' is empty or used twice")));
        }
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::Invalid(format!("an entry name of {} bytes", name.len())))?;
        if self.names.len() >= u16::MAX as usize - 1 {
            return Err(Error::Invalid(format!("more than {} entries", u16::MAX - 1)));
        }
        let size = field32(data.len(), "an entry")?;
        let deflated;
        let body = match method {
            Method::Stored => data,
            Method::Deflated => {
                let mut encoder =
                    DeflateEncoder::new(Vec::with_capacity(data.len() / 2), Compression::default());
                encoder.write_all(data).map_err(|e| Error::Invalid(format!("deflate: {e}")))?;
                deflated = encoder.finish().map_err(|e| Error::Invalid(format!("deflate: {e}")))?;
                &deflated[..]
            }
        };
        let compressed = field32(body.len(), "a compressed entry")?;
        let offset = field32(self.out.len(), "an archive")?;
        let crc = crc32(data);
        let flags = if name.is_ascii() { 0 } else { FLAG_UTF8 };
        // The fields from the version needed to the extra field's length, the same in the local
        // header and the central directory record.
        let mut common = Vec::with_capacity(26);
        for value in [VERSION_NEEDED, flags, method.code(), DOS_TIME, DOS_DATE] {
            put16(&mut common, value);
        }
        for value in [crc, compressed, size] {
            put32(&mut common, value);
        }
        put16(&mut common, name_len);
        put16(&mut common, 0);

        let out = &mut self.out;
        out.reserve(4 + common.len() + name.len() + body.len());
        put32(out, LOCAL_HEADER);
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);

        let central = &mut self.central;
        put32(central, CENTRAL_HEADER);
        put16(central, VERSION_MADE_BY);
        central.extend_from_slice(&common);
        // Comment length, disk number, internal attributes.
        for value in [0, 0, 0] {
            put16(central, value);
        }
        put32(central, EXTERNAL_ATTRIBUTES);
        put32(central, offset);
        central.extend_from_slice(name.as_bytes());
        self.names.push(name.to_string());
        Ok(())
    }

    /// The archive: the entries, their central directory and its end record.
    pub fn finish(self) -> Result<Vec<u8>> {
        let Writer { mut out, central, names } = self;
        let offset = field32(out.len(), "an archive")?;
        let size = field32(central.len(), "a central directory")?;
        // At most 65,534 entries (checked when added).
        let count = names.len() as u16;
        out.reserve(central.len() + 22);
        out.extend_from_slice(&central);
        put32(&mut out, END);
        // This disk and the central directory's, then the entries on this disk and in all.
        for value in [0, 0, count, count] {
            put16(&mut out, value);
        }
        put32(&mut out, size);
        put32(&mut out, offset);
        // No comment.
        put16(&mut out, 0);
        Ok(out)
    }
}
