//! Reading: the superblock, then groups and datasets found by their paths from the root.

use std::collections::HashSet;

use super::header::{self, Layout, Message, Sizes};
use super::{Cursor, Datatype, Error, Result, Uint, UNDEFINED};

/// The 8 bytes an HDF5 file (its superblock) starts with.
pub(super) const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// An HDF5 file held in memory.
pub struct File {
    data: Vec<u8>,
    /// Where addresses count from: the superblock's base address (after any user block).
    base: u64,
    pub(super) sizes: Sizes,
    /// The root group's object header.
    root: u64,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File").field("bytes", &self.data.len()).field("root", &self.root).finish()
    }
}

impl File {
    /// Reads the superblock of the file in `data`; groups and datasets are read when asked for.
    pub fn from_bytes(data: Vec<u8>) -> Result<File> {
        // The superblock is at 0, or after a user block of 512, 1024, 2048, ... bytes.
        let mut start = 0usize;
        while data.get(start..start + 8) != Some(&SIGNATURE[..]) {
            start = if start == 0 { 512 } else { start * 2 };
            if start + 8 > data.len() {
                return Err(Error::Malformed("no HDF5 signature".into()));
            }
        }
        let mut c = Cursor::new(&data[start + 8..], "superblock");
        let version = c.u8()?;
        let (offset, length, base, root) = match version {
            0 | 1 => {
                // Versions of the free-space storage, root symbol table entry and shared header
                // formats, and a reserved byte.
                c.skip(4)?;
                let (offset, length) = (c.u8()? as usize, c.u8()? as usize);
                check_width(offset)?;
                check_width(length)?;
                // Reserved; group leaf and internal node K (not needed: nodes say how full they
                // are); consistency flags; version 1's indexed storage K and reserved bytes.
                c.skip(1 + 4 + 4 + if version == 1 { 4 } else { 0 })?;
                let base = c.uint(offset)?;
                // Free-space, end-of-file and driver information addresses, then the root
                // group's symbol table entry, which starts with a name offset.
                c.skip(4 * offset)?;
                (offset, length, base, c.uint(offset)?)
            }
            2 | 3 => {
                let (offset, length) = (c.u8()? as usize, c.u8()? as usize);
                check_width(offset)?;
                check_width(length)?;
                c.skip(1)?;
                let base = c.uint(offset)?;
                // Superblock extension and end-of-file addresses; the checksum is not verified.
                c.skip(2 * offset)?;
                (offset, length, base, c.uint(offset)?)
            }
            v => return Err(Error::Unsupported(format!("superblock version {v}"))),
        };
        if base == UNDEFINED || root == UNDEFINED {
            return Err(Error::Malformed("superblock without a base or root address".into()));
        }
        Ok(File { data, base, sizes: Sizes { offset, length }, root })
    }

    /// The `len` bytes at address `addr`, or an error naming `what` if they are not all in the
    /// file.
    pub(super) fn at(&self, addr: u64, len: u64, what: &str) -> Result<&[u8]> {
        let start = self.tail(addr, what)?;
        start.get(..usize::try_from(len).unwrap_or(usize::MAX)).ok_or_else(|| {
            Error::Malformed(format!("{what}: {len} bytes at {addr:#x} run past the end of the file"))
        })
    }

    /// The bytes from address `addr` to the end of the file.
    pub(super) fn tail(&self, addr: u64, what: &str) -> Result<&[u8]> {
        let start = self.base.checked_add(addr).filter(|_| addr != UNDEFINED);
        start.and_then(|s| usize::try_from(s).ok()).and_then(|s| self.data.get(s..)).ok_or_else(|| {
            Error::Malformed(format!(
                "{what}: address {addr:#x} is outside the file ({} bytes)",
                self.data.len()
            ))
        })
    }

    /// The root group.
    pub fn root(&self) -> Result<Group<'_>> {
        self.group("/")
    }

    /// The group at `path` (`a/b`; `""` or `"/"` is the root).
    pub fn group(&self, path: &str) -> Result<Group<'_>> {
        let messages = header::messages(self, self.resolve(path)?)?;
        if !is_group(&messages) {
            return Err(Error::WrongKind { path: path.to_string(), expected: "group" });
        }
        Ok(Group { file: self, messages })
    }

    /// The dataset at `path` (`a/b/vars/0`): its datatype and shape are read, its values when
    /// asked for.
    pub fn dataset(&self, path: &str) -> Result<Dataset<'_>> {
        let messages = header::messages(self, self.resolve(path)?)?;
        let find = |kind| messages.iter().find(|m| m.kind == kind);
        let (Some(layout), Some(space), Some(datatype)) =
            (find(header::LAYOUT), find(header::DATASPACE), find(header::DATATYPE))
        else {
            return Err(Error::WrongKind { path: path.to_string(), expected: "dataset" });
        };
        let shape = header::dataspace(space, self.sizes)?
            .ok_or_else(|| Error::Unsupported(format!("'{path}' has a null dataspace")))?;
        Ok(Dataset {
            file: self,
            datatype: header::datatype(datatype)?,
            shape,
            layout: *layout,
            filtered: find(header::FILTERS).is_some(),
        })
    }

    /// The object header that `path` names, followed link by link from the root.
    fn resolve(&self, path: &str) -> Result<u64> {
        let mut addr = self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let messages = header::messages(self, addr)?;
            if !is_group(&messages) {
                return Err(Error::NotFound(path.to_string()));
            }
            addr = match members(self, &messages)?.into_iter().find(|(name, _)| name == part) {
                Some((_, Some(addr))) => addr,
                Some((_, None)) => {
                    return Err(Error::Unsupported(format!(
                        "'{part}' in '{path}' is a soft or external link"
                    )))
                }
                None => return Err(Error::NotFound(path.to_string())),
            };
        }
        Ok(addr)
    }
}

fn check_width(size: usize) -> Result<()> {
    if matches!(size, 2 | 4 | 8) {
        Ok(())
    } else {
        Err(Error::Malformed(format!("superblock gives addresses or lengths {size} bytes")))
    }
}

fn is_group(messages: &[Message]) -> bool {
    messages.iter().any(|m| matches!(m.kind, header::SYMBOL_TABLE | header::LINK_INFO | header::LINK))
}

/// A group's members: each name with its object header's address (`None` for a soft or
/// external link), from its symbol table or its link messages.
fn members(file: &File, messages: &[Message]) -> Result<Vec<(String, Option<u64>)>> {
    if let Some(table) = messages.iter().find(|m| m.kind == header::SYMBOL_TABLE) {
        let (btree, heap) = header::symbol_table(table, file.sizes)?;
        return Ok(symbol_table(file, btree, heap)?.into_iter().map(|(n, a)| (n, Some(a))).collect());
    }
    if let Some(info) = messages.iter().find(|m| m.kind == header::LINK_INFO) {
        let mut c = Cursor::new(info.data, "link info message");
        c.skip(1)?;
        let flags = c.u8()?;
        c.skip(if flags & 0x01 != 0 { 8 } else { 0 })?;
        if c.uint(file.sizes.offset)? != UNDEFINED {
            return Err(Error::Unsupported("dense link storage (a fractal heap)".into()));
        }
    }
    messages.iter().filter(|m| m.kind == header::LINK).map(|m| header::link(m, file.sizes)).collect()
}

/// The entries of a symbol-table group: its version 1 B-tree walked from `btree` down to the
/// symbol table nodes it points to, names from the local heap at `heap`.
///
/// The walk is bounded: each node is read once, a child must be one level below its parent,
/// and the entries met cannot outnumber what the file could hold, so a damaged tree ends in an
/// error.
fn symbol_table(file: &File, btree: u64, heap: u64) -> Result<Vec<(String, u64)>> {
    let names = local_heap(file, heap)?;
    let (o, l) = (file.sizes.offset, file.sizes.length);
    // A B-tree child takes at least an address and a key, a symbol at least twice that.
    let mut budget = file.data.len() / (o + l);
    let mut spend = |n: usize| {
        budget = budget.checked_sub(n).ok_or_else(|| {
            Error::Malformed(format!("group B-tree at {btree:#x} has more entries than the file holds"))
        })?;
        Ok::<(), Error>(())
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Nodes still to read, each with the level it must have; children are pushed in reverse so
    // that entries come out in the tree's (name) order.
    let mut stack = vec![(btree, None)];
    while let Some((addr, level)) = stack.pop() {
        if !seen.insert(addr) {
            return Err(Error::Malformed(format!("group B-tree node {addr:#x} is reached twice")));
        }
        let what = format!("group B-tree node at {addr:#x}");
        let mut c = Cursor::new(file.tail(addr, &what)?, &what);
        if c.take(4)? != b"TREE" {
            return Err(Error::Malformed(format!("{what}: no TREE signature")));
        }
        let (kind, node_level, entries) = (c.u8()?, c.u8()?, c.u16()? as usize);
        if kind != 0 || level.is_some_and(|l| l != node_level) {
            return Err(Error::Malformed(format!("{what}: type {kind} at level {node_level}")));
        }
        spend(entries)?;
        // Left and right siblings, then a key before each child and after the last.
        c.skip(2 * o)?;
        let mut children = Vec::with_capacity(entries);
        for _ in 0..entries {
            c.skip(l)?;
            children.push(c.uint(o)?);
        }
        match node_level.checked_sub(1) {
            Some(below) => stack.extend(children.into_iter().rev().map(|child| (child, Some(below)))),
            None => {
                for child in children {
                    if !seen.insert(child) {
                        return Err(Error::Malformed(format!(
                            "symbol table node {child:#x} is reached twice"
                        )));
                    }
                    symbol_node(file, child, names, &mut out, &mut spend)?;
                }
            }
        }
    }
    Ok(out)
}

/// Appends the entries of the symbol table node at `addr` to `out`.
fn symbol_node(
    file: &File,
    addr: u64,
    names: &[u8],
    out: &mut Vec<(String, u64)>,
    spend: &mut impl FnMut(usize) -> Result<()>,
) -> Result<()> {
    let what = format!("symbol table node at {addr:#x}");
    let mut c = Cursor::new(file.tail(addr, &what)?, &what);
    if c.take(4)? != b"SNOD" || c.u8()? != 1 {
        return Err(Error::Malformed(format!("{what}: no SNOD signature or version 1")));
    }
    c.skip(1)?;
    let count = c.u16()? as usize;
    spend(count)?;
    for _ in 0..count {
        let name = c.uint(file.sizes.offset)?;
        let header = c.uint(file.sizes.offset)?;
        // Cache type, reserved, scratch pad.
        c.skip(24)?;
        let name = usize::try_from(name).ok().and_then(|n| names.get(n..)).ok_or_else(|| {
            Error::Malformed(format!("{what}: name offset {name:#x} is outside the local heap"))
        })?;
        let end = name.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::Malformed(format!("{what}: a name in the local heap is not NUL-terminated"))
        })?;
        out.push((String::from_utf8_lossy(&name[..end]).into_owned(), header));
    }
    Ok(())
}

/// The data segment of the local heap at `addr`, where a symbol table's names are.
fn local_heap(file: &File, addr: u64) -> Result<&[u8]> {
    let what = format!("local heap at {addr:#x}");
    let mut c = Cursor::new(file.tail(addr, &what)?, &what);
    if c.take(4)? != b"HEAP" || c.u8()? != 0 {
        return Err(Error::Malformed(format!("{what}: no HEAP signature or version 0")));
    }
    c.skip(3)?;
    let size = c.uint(file.sizes.length)?;
    // The free list is not needed to read.
    c.skip(file.sizes.length)?;
    file.at(c.uint(file.sizes.offset)?, size, &what)
}

/// A group of a [`File`].
pub struct Group<'f> {
    file: &'f File,
    messages: Vec<Message<'f>>,
}

impl Group<'_> {
    /// The names of the members that are datasets, in name order.
    pub fn datasets(&self) -> Result<Vec<String>> {
        self.members_where(|m| m.iter().any(|m| m.kind == header::LAYOUT))
    }

    /// The names of the members that are groups, in name order.
    pub fn groups(&self) -> Result<Vec<String>> {
        self.members_where(is_group)
    }

    fn members_where(&self, keep: impl Fn(&[Message]) -> bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (name, addr) in members(self.file, &self.messages)? {
            if let Some(addr) = addr {
                if keep(&header::messages(self.file, addr)?) {
                    out.push(name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The string attribute `name`: `None` when the group has no attribute of that name, or
    /// one that is not a single fixed-length string.
    pub fn attr_string(&self, name: &str) -> Result<Option<String>> {
        for m in self.messages.iter().filter(|m| m.kind == header::ATTRIBUTE) {
            let (attr, value) = header::string_attribute(m, self.file.sizes)?;
            if attr == name {
                return Ok(value);
            }
        }
        Ok(None)
    }
}

/// A dataset of a [`File`].
pub struct Dataset<'f> {
    file: &'f File,
    datatype: Datatype,
    shape: Vec<u64>,
    /// The layout message, decoded when the values are read (so that a dataset of unsupported
    /// storage still gives its type and shape).
    layout: Message<'f>,
    filtered: bool,
}

impl Dataset<'_> {
    /// The element type.
    pub fn datatype(&self) -> Datatype {
        self.datatype
    }

    /// The dimensions (none for a scalar).
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The values, if the elements are little-endian IEEE 32-bit floats ([`Error::NotF32`]
    /// otherwise).
    pub fn read_f32(&self) -> Result<Vec<f32>> {
        if !self.datatype.is_f32() {
            return Err(Error::NotF32 { found: self.datatype.label() });
        }
        let raw = self.raw_bytes()?;
        Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// The stored bytes of the values, of any datatype, unconverted. The shape is checked
    /// against the stored size, so a header that lies gives an error, not a large allocation.
    pub fn raw_bytes(&self) -> Result<&[u8]> {
        if self.filtered {
            return Err(Error::Unsupported("filtered (compressed) storage".into()));
        }
        let count = self.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let bytes = count.and_then(|n| n.checked_mul(self.datatype.size() as u64));
        let bytes = bytes.ok_or_else(|| Error::Malformed(format!("shape {:?} overflows", self.shape)))?;
        Ok(match header::layout(&self.layout, self.file.sizes)? {
            Layout::Compact(data) => {
                usize::try_from(bytes).ok().and_then(|n| data.get(..n)).ok_or_else(|| {
                    Error::Malformed(format!("{} compact bytes for shape {:?}", data.len(), self.shape))
                })?
            }
            Layout::Contiguous { .. } if bytes == 0 => &[],
            Layout::Contiguous { addr: UNDEFINED, .. } => {
                return Err(Error::Unsupported("a dataset whose storage was never written".into()))
            }
            Layout::Contiguous { addr, size } if size < bytes => {
                return Err(Error::Malformed(format!(
                    "{size} bytes stored at {addr:#x} for shape {:?}",
                    self.shape
                )))
            }
            Layout::Contiguous { addr, .. } => self.file.at(addr, bytes, "dataset values")?,
        })
    }
}
