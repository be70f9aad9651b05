//! Writing: a tree of groups, string attributes and `f32` datasets laid out as HDF5 1.8's
//! earliest format (what h5py writes by default, and what any HDF5 reader opens).
//!
//! The file is one pass over the tree, children before their parents (a parent's symbol table
//! needs its children's addresses), then the superblock written at the start. Every structure
//! starts at a multiple of 8 bytes, as the HDF5 library aligns them.

use std::collections::BTreeMap;

use super::read::SIGNATURE;
use super::{Error, Result, UNDEFINED};

/// Half the capacity of a symbol table node (entries per leaf of a group's B-tree), the HDF5
/// default, recorded in the superblock.
const LEAF_K: usize = 4;
/// Half the number of children of a group B-tree node, the HDF5 default, recorded in the
/// superblock.
const INTERNAL_K: usize = 16;
/// Bytes of a symbol table entry with 8-byte addresses: name offset, object header, cache type,
/// reserved, scratch pad.
const ENTRY: usize = 40;
/// Bytes of the version 0 superblock with 8-byte addresses and its root symbol table entry.
const SUPERBLOCK: usize = 56 + ENTRY;

const DATASPACE: u16 = 0x0001;
const DATATYPE: u16 = 0x0003;
const FILL_VALUE: u16 = 0x0005;
const LAYOUT: u16 = 0x0008;
const ATTRIBUTE: u16 = 0x000C;
const SYMBOL_TABLE: u16 = 0x0011;

/// A group being built: its string attributes and members, each a group or a dataset.
#[derive(Debug, Default)]
pub struct GroupBuilder {
    attrs: BTreeMap<String, String>,
    /// By name: `String`'s order is the byte order HDF5 keeps symbol tables in.
    members: BTreeMap<String, Member>,
}

#[derive(Debug)]
enum Member {
    Group(GroupBuilder),
    Dataset { shape: Vec<u64>, values: Vec<f32> },
}

/// A name HDF5 can store as one link: not empty, not `.`, without `/` or NUL.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains(['/', '\0']) {
        return Err(Error::Invalid(format!("'{name}' cannot name a group member")));
    }
    Ok(())
}

impl GroupBuilder {
    /// The member group `name`, created empty if there is none.
    pub fn group(&mut self, name: &str) -> Result<&mut GroupBuilder> {
        check_name(name)?;
        match self.members.entry(name.to_string()).or_insert_with(|| Member::Group(GroupBuilder::default())) {
            Member::Group(group) => Ok(group),
            Member::Dataset { .. } => Err(Error::Invalid(format!("'{name}' is already a dataset"))),
        }
    }

    /// The group at `path` below this one (`a/b/c`), created with any missing parents.
    pub fn group_at(&mut self, path: &str) -> Result<&mut GroupBuilder> {
        path.split('/').filter(|p| !p.is_empty()).try_fold(self, |group, part| group.group(part))
    }

    /// Sets the string attribute `name` (a fixed-length string, ASCII or UTF-8 as `value` is).
    pub fn set_attr(&mut self, name: &str, value: &str) -> Result<()> {
        if name.is_empty() || name.contains('\0') || value.contains('\0') {
            return Err(Error::Invalid(format!("attribute '{name}': empty name or a NUL character")));
        }
        // The attribute must fit one header message, whose size is 16 bits.
        if name.len() + value.len() > 60_000 {
            return Err(Error::Invalid(format!("attribute '{name}' is longer than 60000 bytes")));
        }
        self.attrs.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Adds the dataset `name` of 32-bit floats with dimensions `shape` (none for a scalar),
    /// `values` in row-major order.
    pub fn add_f32(&mut self, name: &str, shape: &[u64], values: Vec<f32>) -> Result<()> {
        check_name(name)?;
        let count = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        if count != Some(values.len() as u64) || shape.len() > 32 {
            return Err(Error::Invalid(format!("{} values for shape {shape:?}", values.len())));
        }
        if self.members.contains_key(name) {
            return Err(Error::Invalid(format!("'{name}' is already a member")));
        }
        self.members.insert(name.to_string(), Member::Dataset { shape: shape.to_vec(), values });
        Ok(())
    }
}

/// An HDF5 file being built: a root group, then [`FileBuilder::finish`] for its bytes.
#[derive(Debug, Default)]
pub struct FileBuilder {
    root: GroupBuilder,
}

impl FileBuilder {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// The root group.
    pub fn root(&mut self) -> &mut GroupBuilder {
        &mut self.root
    }

    /// The file's bytes. Names, shapes and attributes were checked as they were added, so
    /// nothing can fail here.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Out(vec![0; SUPERBLOCK]);
        let root = out.group(&self.root);
        let end = out.0.len() as u64;
        let mut sb = Out(Vec::with_capacity(SUPERBLOCK));
        sb.0.extend_from_slice(SIGNATURE);
        // Versions of the superblock, free-space storage, root symbol table entry, a reserved
        // byte, the shared header version, 8-byte addresses and lengths, a reserved byte.
        sb.0.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0]);
        sb.u16(LEAF_K as u16);
        sb.u16(INTERNAL_K as u16);
        // Consistency flags, base address, free-space info (none), end of file, driver info (none).
        sb.u32(0);
        sb.u64s(&[0, UNDEFINED, end, UNDEFINED]);
        sb.entry(0, root.header, Some((root.btree, root.heap)));
        out.0[..SUPERBLOCK].copy_from_slice(&sb.0);
        out.0
    }
}

/// Where a written group's parts are: its object header, and (cached in the symbol table
/// entry that points to it, as the HDF5 library does) its B-tree and local heap.
struct Written {
    header: u64,
    btree: u64,
    heap: u64,
}

/// A member as its group's symbol table records it: name, object header, and for a group its
/// B-tree and heap.
struct Entry<'a> {
    name: &'a str,
    header: u64,
    group: Option<(u64, u64)>,
}

/// The file's bytes so far, appended to.
struct Out(Vec<u8>);

impl Out {
    /// Pads to a multiple of 8 bytes and gives the address there.
    fn aligned(&mut self) -> u64 {
        self.0.resize(self.0.len().next_multiple_of(8), 0);
        self.0.len() as u64
    }

    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64s(&mut self, values: &[u64]) {
        for v in values {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }

    /// A symbol table entry: a group's carries its B-tree and heap (cache type 1).
    fn entry(&mut self, name: u64, header: u64, group: Option<(u64, u64)>) {
        self.u64s(&[name, header]);
        self.u32(group.is_some() as u32);
        self.u32(0);
        let (btree, heap) = group.unwrap_or((0, 0));
        self.u64s(&[btree, heap]);
    }

    fn group(&mut self, group: &GroupBuilder) -> Written {
        let mut entries = Vec::with_capacity(group.members.len());
        for (name, member) in &group.members {
            entries.push(match member {
                Member::Group(child) => {
                    let w = self.group(child);
                    Entry { name, header: w.header, group: Some((w.btree, w.heap)) }
                }
                Member::Dataset { shape, values } => {
                    Entry { name, header: self.dataset(shape, values), group: None }
                }
            });
        }
        let (btree, heap) = self.symbol_table(&entries);
        let mut messages = vec![(SYMBOL_TABLE, [btree, heap].iter().flat_map(|a| a.to_le_bytes()).collect())];
        messages.extend(group.attrs.iter().map(|(name, value)| (ATTRIBUTE, attribute(name, value))));
        Written { header: self.header(&messages), btree, heap }
    }

    /// The local heap of `entries`' names and the B-tree over symbol table nodes holding the
    /// entries (sorted by name), as many levels of it as needed for one root; gives the B-tree's
    /// and the heap's addresses.
    fn symbol_table(&mut self, entries: &[Entry]) -> (u64, u64) {
        // Offset 0 holds the empty name, the left key of the first B-tree node.
        let mut names = vec![0u8; 8];
        let mut offsets = Vec::with_capacity(entries.len());
        for entry in entries {
            offsets.push(names.len() as u64);
            names.extend_from_slice(entry.name.as_bytes());
            names.resize((names.len() + 1).next_multiple_of(8), 0);
        }
        let heap = self.aligned();
        self.0.extend_from_slice(b"HEAP\0\0\0\0");
        // Segment size, free list (1 is the HDF5 library's "no free block"), segment address.
        self.u64s(&[names.len() as u64, 1, heap + 32]);
        self.0.extend_from_slice(&names);

        // (node address, heap offset of its last name), one level at a time.
        let mut level = Vec::new();
        for (chunk, offsets) in entries.chunks(2 * LEAF_K).zip(offsets.chunks(2 * LEAF_K)) {
            level.push((self.aligned(), offsets[offsets.len() - 1]));
            self.0.extend_from_slice(b"SNOD\x01\0");
            self.u16(chunk.len() as u16);
            for (entry, &name) in chunk.iter().zip(offsets) {
                self.entry(name, entry.header, entry.group);
            }
            self.zeros((2 * LEAF_K - chunk.len()) * ENTRY);
        }
        // Every node is written at full capacity, as the HDF5 library reads it.
        let node_size = 24 + (2 * INTERNAL_K + 1) * 8 + 2 * INTERNAL_K * 8;
        let mut height = 0u8;
        loop {
            let first = self.aligned();
            let nodes: Vec<&[(u64, u64)]> =
                if level.is_empty() { vec![&[]] } else { level.chunks(2 * INTERNAL_K).collect() };
            let mut above = Vec::with_capacity(nodes.len());
            // A node's left key is the right key of the node before it ("" for the first).
            let mut left_key = 0;
            for (i, children) in nodes.iter().enumerate() {
                let addr = first + (i * node_size) as u64;
                let left = if i == 0 { UNDEFINED } else { addr - node_size as u64 };
                let right = if i + 1 < nodes.len() { addr + node_size as u64 } else { UNDEFINED };
                self.0.extend_from_slice(b"TREE\0");
                self.0.push(height);
                self.u16(children.len() as u16);
                self.u64s(&[left, right, left_key]);
                for &(child, last) in children.iter() {
                    self.u64s(&[child, last]);
                }
                self.zeros((2 * INTERNAL_K - children.len()) * 16);
                left_key = children.last().map_or(left_key, |&(_, last)| last);
                above.push((addr, left_key));
            }
            if above.len() == 1 {
                return (above[0].0, heap);
            }
            level = above;
            height += 1;
        }
    }

    /// A contiguous dataset of little-endian `f32` (no storage at all when it has no values);
    /// gives its object header's address.
    fn dataset(&mut self, shape: &[u64], values: &[f32]) -> u64 {
        let (addr, size) = if values.is_empty() {
            (UNDEFINED, 0)
        } else {
            let addr = self.aligned();
            self.0.reserve(values.len() * 4);
            for v in values {
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            (addr, values.len() as u64 * 4)
        };
        // Version 1, rank, no maximum dimensions, reserved; a rank of 0 is a scalar.
        let mut space = vec![1, shape.len() as u8, 0, 0, 0, 0, 0, 0];
        space.extend(shape.iter().flat_map(|d| d.to_le_bytes()));
        // Class 1 version 1, little-endian with the sign at bit 31, 4 bytes; bit offset 0,
        // precision 32, exponent at 23 of 8 bits, mantissa at 0 of 23 bits, bias 127.
        let float = vec![0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0];
        // As h5py writes it: version 2, late allocation, fill when set, the default (zero) value.
        let fill = vec![2, 2, 2, 1, 0, 0, 0, 0];
        // Version 3, contiguous, address and size.
        let mut layout = vec![3, 1];
        layout.extend(addr.to_le_bytes().into_iter().chain(size.to_le_bytes()));
        self.header(&[(DATASPACE, space), (DATATYPE, float), (FILL_VALUE, fill), (LAYOUT, layout)])
    }

    /// A version 1 object header holding `messages`; gives its address.
    fn header(&mut self, messages: &[(u16, Vec<u8>)]) -> u64 {
        let addr = self.aligned();
        let size: usize = messages.iter().map(|(_, body)| 8 + body.len().next_multiple_of(8)).sum();
        // Version 1, reserved, message count, reference count, size, padding to 16 bytes.
        self.0.extend_from_slice(&[1, 0]);
        self.u16(messages.len() as u16);
        self.u32(1);
        self.u32(size as u32);
        self.u32(0);
        for (kind, body) in messages {
            let padded = body.len().next_multiple_of(8);
            self.u16(*kind);
            self.u16(padded as u16);
            // The datatype and fill value never change: flagged constant, as HDF5 does.
            self.0.extend_from_slice(&[matches!(*kind, DATATYPE | FILL_VALUE) as u8, 0, 0, 0]);
            self.0.extend_from_slice(body);
            self.zeros(padded - body.len());
        }
        addr
    }
}

/// A version 1 attribute message holding `value` as a scalar fixed-length string.
fn attribute(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![1, 0];
    out.extend_from_slice(&(name.len() as u16 + 1).to_le_bytes());
    // Datatype and dataspace sizes.
    out.extend_from_slice(&[8, 0, 8, 0]);
    out.extend_from_slice(name.as_bytes());
    out.resize((out.len() + 1).next_multiple_of(8), 0);
    // Class 3 version 1, NUL-padded, ASCII (0) or UTF-8 (1); at least one byte long.
    let size = value.len().max(1) as u32;
    out.extend_from_slice(&[0x13, 0x01 | ((!value.is_ascii() as u8) << 4), 0, 0]);
    out.extend_from_slice(&size.to_le_bytes());
    // A scalar dataspace, version 1.
    out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(value.as_bytes());
    out.resize(out.len() + (size as usize - value.len()), 0);
    out
}
