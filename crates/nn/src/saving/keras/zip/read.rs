//! Reading: the end of central directory record, the central directory and each entry's local
//! header when the archive is opened, an entry's data when asked for.

use std::io::Read;
use std::ops::Range;

use flate2::bufread::DeflateDecoder;

use super::{
    crc32, Cursor, Error, Method, Result, CENTRAL_HEADER, CENTRAL_HEADER_LEN, END, END_LEN, FLAG_ENCRYPTED,
    LOCAL_HEADER, LOCAL_HEADER_LEN, MAX_DEFLATE_RATIO, ZIP64_LOCATOR, ZIP64_LOCATOR_LEN,
};

/// A zip archive held in memory, its central directory read and every entry's data located.
pub struct Archive<'a> {
    data: &'a [u8],
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Archive<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("bytes", &self.data.len()).field("entries", &self.entries).finish()
    }
}

/// An entry of an archive, as its central directory record describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    name: String,
    method: Method,
    crc32: u32,
    size: u64,
    /// Where its data (compressed or not) lies in the archive: checked to be before the central
    /// directory when the archive was opened.
    data: Range<usize>,
}

impl Entry {
    /// The entry's name (a path with `/` separators).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its data is held.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Its size once inflated, as declared (checked when it is read).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The size of its data in the archive.
    pub fn compressed_size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The declared CRC-32 of its inflated bytes.
    pub fn crc32(&self) -> u32 {
        self.crc32
    }
}

impl<'a> Archive<'a> {
    /// Reads the central directory of the archive in `data`, and locates each entry's data
    /// through its local header; entries are inflated when asked for.
    pub fn new(data: &'a [u8]) -> Result<Archive<'a>> {
        let end = find_end(data)?;
        let mut c = Cursor::new(&data[end..], "end of central directory record");
        c.take(4)?;
        let (disk, central_disk, disk_entries, count) = (c.u16()?, c.u16()?, c.u16()?, c.u16()?);
        let (central_size, central_offset) = (c.u32()?, c.u32()?);
        // ZIP64 puts the real values in records before this one and sets these fields' bits.
        let locator = end.checked_sub(ZIP64_LOCATOR_LEN).and_then(|at| data.get(at..at + 4));
        if locator == Some(&ZIP64_LOCATOR.to_le_bytes()[..])
            || [disk_entries, count].contains(&u16::MAX)
            || [central_size, central_offset].contains(&u32::MAX)
        {
            return Err(Error::Unsupported("ZIP64 (an archive of 65,535 entries or 4 GiB or more)".into()));
        }
        if disk != 0 || central_disk != 0 || disk_entries != count {
            return Err(Error::Unsupported(format!(
                "an archive split over disks (this is disk {disk}, holding {disk_entries} of {count} \
                 entries; the central directory starts on disk {central_disk})"
            )));
        }
        let start = central_offset as usize;
        let central = start.checked_add(central_size as usize).filter(|&e| e <= end).ok_or_else(|| {
            Error::Malformed(format!(
                "a central directory of {central_size} bytes at {central_offset} runs past its end \
                 record at {end}"
            ))
        })?;
        let mut c = Cursor::new(&data[start..central], "central directory");
        // No more records than the directory's bytes can hold, whatever the count says.
        let mut entries = Vec::with_capacity((count as usize).min(c.remaining() / CENTRAL_HEADER_LEN));
        for _ in 0..count {
            entries.push(central_record(&mut c, data, start)?);
        }
        if c.remaining() != 0 {
            return Err(Error::Malformed(format!(
                "{} bytes after the {count} records of the central directory",
                c.remaining()
            )));
        }
        Ok(Archive { data, entries })
    }

    /// The entries, in the central directory's order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries' names, in the central directory's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The (first) entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The bytes of the entry named `name`, inflated and checked: see [`Archive::read_entry`].
    pub fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let entry = self.entry(name).ok_or_else(|| Error::NotFound(name.to_string()))?;
        self.read_entry(entry, limit)
    }

    /// The bytes of `entry`, inflated, or [`Error::TooLarge`] if it declares more than `limit`
    /// bytes. It is inflated no further than its declared size, which must be exactly what its
    /// data yields, with its declared CRC-32 ([`Error::Corrupt`] otherwise); a deflated entry
    /// cannot declare more than deflate's largest ratio allows from its compressed size, so no
    /// more memory is taken than its bytes could need.
    pub fn read_entry(&self, entry: &Entry, limit: u64) -> Result<Vec<u8>> {
        let corrupt = |reason: String| Error::Corrupt { name: entry.name.clone(), reason };
        if entry.size > limit {
            return Err(Error::TooLarge { name: entry.name.clone(), size: entry.size, limit });
        }
        let raw = self
            .data
            .get(entry.data.clone())
            .ok_or_else(|| Error::Malformed(format!("entry '{}' lies outside this archive", entry.name)))?;
        let out = match entry.method {
            // The stored size was checked against the declared one on opening.
            Method::Stored => raw.to_vec(),
            Method::Deflated => {
                if entry.size > (raw.len() as u64).saturating_mul(MAX_DEFLATE_RATIO) {
                    return Err(corrupt(format!(
                        "declares {} bytes, more than deflate yields from {} bytes",
                        entry.size,
                        raw.len()
                    )));
                }
                let size = usize::try_from(entry.size).map_err(|_| corrupt("too large to hold".into()))?;
                // Room for a usual ratio; beyond it the buffer grows only as bytes come.
                let mut out = Vec::with_capacity(size.min(raw.len().saturating_mul(4)));
                DeflateDecoder::new(raw)
                    .take(entry.size + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| corrupt(format!("bad deflate data: {e}")))?;
                if out.len() != size {
                    let more = if out.len() > size { "more than " } else { "" };
                    return Err(corrupt(format!(
                        "inflates to {more}{} bytes, not the {size} declared",
                        out.len().min(size)
                    )));
                }
                out
            }
        };
        let crc = crc32(&out);
        if crc != entry.crc32 {
            return Err(corrupt(format!("CRC-32 {crc:08x}, not the {:08x} declared", entry.crc32)));
        }
        Ok(out)
    }
}

/// Where the end of central directory record starts: the last place, in the 22 + 65,535 bytes
/// at the end of `data`, with its signature and a comment length that reaches the end exactly.
fn find_end(data: &[u8]) -> Result<usize> {
    let last = data.len().checked_sub(END_LEN).ok_or_else(|| {
        Error::Malformed(format!("{} bytes, too few for an end of central directory record", data.len()))
    })?;
    let first = last.saturating_sub(u16::MAX as usize);
    (first..=last)
        .rev()
        .find(|&at| {
            let record = &data[at..];
            record[..4] == END.to_le_bytes()
                && u16::from_le_bytes([record[20], record[21]]) as usize == record.len() - END_LEN
        })
        .ok_or_else(|| Error::Malformed("no end of central directory record".into()))
}

/// The central directory record at `c`, its entry's data located through its local header in
/// `data` (which must end before the central directory, at `central`).
fn central_record(c: &mut Cursor<'_, '_>, data: &[u8], central: usize) -> Result<Entry> {
    if c.u32()? != CENTRAL_HEADER {
        return Err(Error::Malformed("a central directory record without its signature".into()));
    }
    // Versions made by and needed (the fields below tell what is needed).
    c.take(4)?;
    let (flags, method) = (c.u16()?, c.u16()?);
    // Modification time and date.
    c.take(4)?;
    let (crc32, compressed, size) = (c.u32()?, c.u32()?, c.u32()?);
    let (name_len, extra_len, comment_len, disk) = (c.u16()?, c.u16()?, c.u16()?, c.u16()?);
    // Internal and external attributes.
    c.take(6)?;
    let header = c.u32()?;
    let raw_name = c.take(name_len as usize)?;
    c.take(extra_len as usize + comment_len as usize)?;
    let name = String::from_utf8_lossy(raw_name).into_owned();
    if flags & FLAG_ENCRYPTED != 0 {
        return Err(Error::Unsupported(format!("encryption (entry '{name}')")));
    }
    let method = match method {
        0 => Method::Stored,
        8 => Method::Deflated,
        m => return Err(Error::Unsupported(format!("compression method {m} (entry '{name}')"))),
    };
    if [compressed, size, header].contains(&u32::MAX) || disk == u16::MAX {
        return Err(Error::Unsupported(format!("ZIP64 (entry '{name}')")));
    }
    if disk != 0 {
        return Err(Error::Unsupported(format!(
            "an archive split over disks (entry '{name}' on disk {disk})"
        )));
    }
    if method == Method::Stored && compressed != size {
        return Err(Error::Malformed(format!(
            "stored entry '{name}' has {compressed} bytes and declares {size}"
        )));
    }
    // The local header's own name and extra field lengths (not the central ones) say where the
    // data starts; its CRC-32 and sizes are not used (zeros when a data descriptor follows).
    let header = header as usize;
    let outside = |what: String| {
        Error::Malformed(format!("entry '{name}': {what} runs into the central directory at {central}"))
    };
    let local = data.get(header..central).unwrap_or_default();
    let mut l = Cursor::new(local, "local header");
    let header_cut = |_| outside(format!("its local header at {header}"));
    let fixed = l.take(LOCAL_HEADER_LEN).map_err(header_cut)?;
    if fixed[..4] != LOCAL_HEADER.to_le_bytes() {
        return Err(Error::Malformed(format!("entry '{name}': no local header at {header}")));
    }
    let local_name_len = u16::from_le_bytes([fixed[26], fixed[27]]) as usize;
    let local_extra_len = u16::from_le_bytes([fixed[28], fixed[29]]) as usize;
    let local_name = l.take(local_name_len).map_err(header_cut)?;
    l.take(local_extra_len).map_err(header_cut)?;
    if local_name != raw_name {
        return Err(Error::Malformed(format!("entry '{name}': its local header names another entry")));
    }
    let start = header + l.pos;
    l.take(compressed as usize).map_err(|_| outside(format!("its {compressed} bytes of data")))?;
    Ok(Entry { name, method, crc32, size: size as u64, data: start..start + compressed as usize })
}
