//! Object headers (versions 1 and 2) split into their messages, and the messages this module
//! reads decoded: dataspace, datatype, layout, symbol table, link and attribute.

use std::collections::HashSet;

use super::read::File;
use super::{Cursor, Datatype, Error, Result, Uint};

pub(super) const DATASPACE: u16 = 0x0001;
pub(super) const LINK_INFO: u16 = 0x0002;
pub(super) const DATATYPE: u16 = 0x0003;
pub(super) const LINK: u16 = 0x0006;
pub(super) const LAYOUT: u16 = 0x0008;
pub(super) const FILTERS: u16 = 0x000B;
pub(super) const ATTRIBUTE: u16 = 0x000C;
const CONTINUATION: u16 = 0x0010;
pub(super) const SYMBOL_TABLE: u16 = 0x0011;

/// The most messages one header is read for: a version 1 header counts its messages in 16
/// bits, and the same bound keeps a damaged version 2 header's walk short.
const MAX_MESSAGES: usize = 1 << 16;

/// The widths of addresses ("offsets") and lengths, from the superblock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    pub offset: usize,
    pub length: usize,
}

/// One header message: its type, whether it is stored shared (its body then points elsewhere)
/// and its body.
#[derive(Clone, Copy)]
pub(super) struct Message<'a> {
    pub kind: u16,
    pub shared: bool,
    pub data: &'a [u8],
}

/// The messages of the object header at `addr`, all its continuation blocks followed.
pub(super) fn messages(file: &File, addr: u64) -> Result<Vec<Message<'_>>> {
    let what = format!("object header at {addr:#x}");
    let tail = file.tail(addr, &what)?;
    let mut c = Cursor::new(tail, &what);
    let v2 = tail.starts_with(b"OHDR");
    let mut creation_order = false;
    // The first block of messages follows the prefix: (its offset from `addr`, its size).
    let (first, size) = if v2 {
        c.skip(4)?;
        let version = c.u8()?;
        if version != 2 {
            return Err(Error::Malformed(format!("{what}: version {version}")));
        }
        let flags = c.u8()?;
        creation_order = flags & 0x04 != 0;
        c.skip(if flags & 0x20 != 0 { 16 } else { 0 } + if flags & 0x10 != 0 { 4 } else { 0 })?;
        let size = c.uint(1 << (flags & 3))?;
        (c.pos as u64, size)
    } else {
        let version = c.u8()?;
        if version != 1 {
            return Err(Error::Malformed(format!("{what}: version {version}")));
        }
        c.skip(7)?;
        // The prefix is 12 bytes, padded to 16.
        (16, c.u32()? as u64)
    };
    let start = addr.checked_add(first).ok_or_else(|| Error::Malformed(format!("{what}: past 2^64")))?;
    // Blocks of messages to read, in order: (address, size).
    let mut blocks = vec![(start, size)];
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut next = 0;
    while let Some(&(start, size)) = blocks.get(next) {
        if !seen.insert(start) {
            return Err(Error::Malformed(format!("{what}: continuation block {start:#x} read twice")));
        }
        let block = file.at(start, size, &what)?;
        // A version 2 continuation block starts "OCHK" and ends in a checksum (not verified).
        let body = if !v2 || next == 0 {
            block
        } else if block.len() >= 8 && block.starts_with(b"OCHK") {
            &block[4..block.len() - 4]
        } else {
            return Err(Error::Malformed(format!("{what}: continuation block {start:#x} without OCHK")));
        };
        next += 1;
        let mut m = Cursor::new(body, &what);
        // Fewer bytes than a message's prefix left at a block's end are a gap, not a message.
        let prefix = if v2 { 4 + 2 * creation_order as usize } else { 8 };
        while m.remaining() >= prefix {
            let (kind, size, flags) = if v2 {
                let (kind, size, flags) = (m.u8()? as u16, m.u16()?, m.u8()?);
                m.skip(prefix - 4)?;
                (kind, size, flags)
            } else {
                let (kind, size, flags) = (m.u16()?, m.u16()?, m.u8()?);
                m.skip(3)?;
                (kind, size, flags)
            };
            let data = m.take(size as usize)?;
            if out.len() == MAX_MESSAGES {
                return Err(Error::Malformed(format!("{what}: more than {MAX_MESSAGES} messages")));
            }
            if kind == CONTINUATION {
                let mut d = Cursor::new(data, &what);
                blocks.push((d.uint(file.sizes.offset)?, d.uint(file.sizes.length)?));
            }
            out.push(Message { kind, shared: flags & 0x02 != 0, data });
        }
    }
    Ok(out)
}

/// The body of a message of a type this module decodes, refusing a shared one (its body is a
/// reference to a message elsewhere: a committed datatype, a shared dataspace).
fn body<'a>(message: &Message<'a>, what: &str) -> Result<&'a [u8]> {
    if message.shared {
        return Err(Error::Unsupported(format!("a shared {what} message (a committed datatype?)")));
    }
    Ok(message.data)
}

/// HDF5's largest rank.
const MAX_RANK: u8 = 32;

/// A dataspace message: the dimensions (empty for a scalar), or `None` for a null dataspace
/// (no elements at all).
pub(super) fn dataspace(message: &Message, sizes: Sizes) -> Result<Option<Vec<u64>>> {
    let mut c = Cursor::new(body(message, "dataspace")?, "dataspace message");
    let version = c.u8()?;
    let rank = c.u8()?;
    let _flags = c.u8()?;
    match version {
        // Reserved bytes; no type field: a rank of 0 is a scalar.
        1 => c.skip(5)?,
        2 => match c.u8()? {
            0 | 1 => {}
            2 => return Ok(None),
            t => return Err(Error::Malformed(format!("dataspace type {t}"))),
        },
        v => return Err(Error::Unsupported(format!("dataspace message version {v}"))),
    }
    if rank > MAX_RANK {
        return Err(Error::Malformed(format!("dataspace of rank {rank}")));
    }
    // The maximum dimensions that may follow are not needed.
    (0..rank).map(|_| c.uint(sizes.length)).collect::<Result<Vec<u64>>>().map(Some)
}

/// A datatype message: the class and size, and for numbers the byte order and sign, and
/// whether a float's bit fields are IEEE 754's.
pub(super) fn datatype(message: &Message) -> Result<Datatype> {
    parse_datatype(&mut Cursor::new(body(message, "datatype")?, "datatype message"))
}

fn parse_datatype(c: &mut Cursor) -> Result<Datatype> {
    let class_version = c.u8()?;
    let bits = c.take(3)?;
    let size = c.u32()?;
    let class = class_version & 0x0F;
    Ok(match class {
        0 => Datatype::Integer { size, signed: bits[0] & 0x08 != 0, big_endian: bits[0] & 0x01 != 0 },
        1 => {
            let (offset, precision) = (c.u16()?, c.u16()?);
            let fields = c.take(4)?;
            let bias = c.u32()?;
            // (exponent location, exponent size, mantissa size, bias) of binary16, 32 and 64.
            let ieee = match size {
                2 => (10, 5, 10, 15),
                4 => (23, 8, 23, 127),
                8 => (52, 11, 52, 1023),
                _ => (0, 0, 0, 0),
            };
            let standard = offset == 0
                && precision as u64 == size as u64 * 8
                && (fields[0], fields[1], fields[2], fields[3], bias) == (ieee.0, ieee.1, 0, ieee.2, ieee.3)
                && bits[1] as u64 + 1 == size as u64 * 8;
            Datatype::Float { size, big_endian: bits[0] & 0x41 != 0, ieee: standard }
        }
        class => Datatype::Other { class, size },
    })
}

/// Where a dataset's values are.
pub(super) enum Layout<'a> {
    /// In the layout message itself.
    Compact(&'a [u8]),
    /// `size` bytes at `addr` ([`UNDEFINED`](super::UNDEFINED) when never written).
    Contiguous { addr: u64, size: u64 },
}

/// A data layout message (versions 3 and 4; compact and contiguous storage).
pub(super) fn layout<'a>(message: &Message<'a>, sizes: Sizes) -> Result<Layout<'a>> {
    let mut c = Cursor::new(body(message, "layout")?, "layout message");
    let version = c.u8()?;
    if !(3..=4).contains(&version) {
        return Err(Error::Unsupported(format!("data layout message version {version}")));
    }
    match c.u8()? {
        0 => {
            let size = c.u16()?;
            Ok(Layout::Compact(c.take(size as usize)?))
        }
        1 => Ok(Layout::Contiguous { addr: c.uint(sizes.offset)?, size: c.uint(sizes.length)? }),
        2 => Err(Error::Unsupported("chunked storage".into())),
        3 => Err(Error::Unsupported("virtual dataset".into())),
        class => Err(Error::Malformed(format!("layout class {class}"))),
    }
}

/// A symbol table message: the addresses of the group's B-tree and local heap.
pub(super) fn symbol_table(message: &Message, sizes: Sizes) -> Result<(u64, u64)> {
    let mut c = Cursor::new(body(message, "symbol table")?, "symbol table message");
    Ok((c.uint(sizes.offset)?, c.uint(sizes.offset)?))
}

/// A link message: the link's name and, for a hard link, the object header it points to
/// (`None` for a soft or external link).
pub(super) fn link(message: &Message, sizes: Sizes) -> Result<(String, Option<u64>)> {
    let mut c = Cursor::new(body(message, "link")?, "link message");
    let version = c.u8()?;
    if version != 1 {
        return Err(Error::Unsupported(format!("link message version {version}")));
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    c.skip(if flags & 0x04 != 0 { 8 } else { 0 } + if flags & 0x10 != 0 { 1 } else { 0 })?;
    let length = c.uint(1 << (flags & 3))?;
    let name = String::from_utf8_lossy(c.take(usize::try_from(length).unwrap_or(usize::MAX))?).into_owned();
    Ok((name, if kind == 0 { Some(c.uint(sizes.offset)?) } else { None }))
}

/// An attribute message: its name and, when it holds one fixed-length string, that string
/// (trailing NUL and space padding removed); `None` for any other type or shape.
pub(super) fn string_attribute(message: &Message, sizes: Sizes) -> Result<(String, Option<String>)> {
    let mut c = Cursor::new(body(message, "attribute")?, "attribute message");
    let version = c.u8()?;
    if !(1..=3).contains(&version) {
        return Err(Error::Unsupported(format!("attribute message version {version}")));
    }
    c.skip(1)?;
    let (name_size, type_size, space_size) = (c.u16()? as usize, c.u16()? as usize, c.u16()? as usize);
    c.skip(if version == 3 { 1 } else { 0 })?;
    // Version 1 pads each of the three parts to a multiple of 8 bytes.
    let padded = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
    let name = c.take(padded(name_size))?;
    let name = String::from_utf8_lossy(&name[..name_size.min(name.len())]);
    let name = name.trim_end_matches('\0').to_string();
    let datatype = c.take(padded(type_size))?;
    let space = c.take(padded(space_size))?;
    let scalar = Message { kind: DATASPACE, shared: false, data: space };
    let string =
        match (parse_datatype(&mut Cursor::new(datatype, "attribute datatype"))?, dataspace(&scalar, sizes)?)
        {
            (Datatype::Other { class: 3, size }, Some(dims)) if dims.iter().all(|&d| d == 1) => {
                let value = c.take(usize::try_from(size).unwrap_or(usize::MAX))?;
                Some(String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_string())
            }
            _ => None,
        };
    Ok((name, string))
}
