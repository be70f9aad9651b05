//! The reader on Keras' and Python's archives (entries identical to what the `zip` crate read),
//! the writer read back, and damaged, lying or unsupported archives giving errors.

use std::sync::OnceLock;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Entries' names and bytes.
type Entries = Vec<(String, Vec<u8>)>;

/// Every entry of `bytes`, read with no limit.
fn read_all(bytes: &[u8]) -> Result<Entries> {
    let archive = Archive::new(bytes)?;
    let entries = archive.entries().iter();
    entries.map(|e| Ok((e.name().to_string(), archive.read_entry(e, u64::MAX)?))).collect()
}

/// Each entry as `name size sha256`.
fn listing(bytes: &[u8]) -> Vec<String> {
    let entries = read_all(bytes).unwrap();
    entries.iter().map(|(name, data)| format!("{name} {} {}", data.len(), sha256(data))).collect()
}

/// The committed `.keras` fixtures, as the `zip` crate (9.9.0) read them before this reader
/// replaced it: names in order, sizes, SHA-256 of the bytes.
#[test]
fn keras_files_read_as_the_zip_crate_read_them() {
    assert_eq!(
        listing(&fixture("keras-model4.keras")),
        [
            "metadata.json 64 09e6f455921176547dc0db6ec0f592d56035646d133d2beef53603fabb6576a7",
            "config.json 3902 678214bf6e27526bffca3d5376db6095c660290d56b2cf83da870650599ffe81",
            "model.weights.h5 1177352 0783ede871aa09ff744c5daf3d8557e54d2bf0b1e949cf43f71c0c6f5ef50db8",
        ]
    );
    assert_eq!(
        listing(&fixture("keras-two-inputs.keras")),
        [
            "metadata.json 64 4379938306cce493635fb7fcca8ede823822982232e3562cc628914739f94b61",
            "config.json 6001 599b1b6767c040e6539be2c83e06a8f6a53bbaab6a93016ddd70eb653f084c53",
            "model.weights.h5 32500 8e1661a596aeb46a3faba1008a6145969a2508f3adb3ba1639707a77047b9edd",
        ]
    );
    assert_eq!(
        listing(&fixture("nn-hdf5-pure-two-inputs.keras")),
        [
            "metadata.json 48 8f85688ace692b84bda59ac22eb916cd128495780cc4b5d2289b93bdaed1db29",
            "config.json 2203 a07d15703e99d05a58ed01279e5e149dd4460a46a62164ebf6afaf46d3bfb15a",
            "model.weights.h5 2670 3fef03cb8cd829dc1e697f2da9aa17113d8a2d137f1f7f720a2a1ce7c50c7e38",
        ]
    );
    let bytes = fixture("keras-two-inputs.keras");
    let archive = Archive::new(&bytes).unwrap();
    assert!(matches!(archive.read("model.weights.h5", 32499), Err(Error::TooLarge { size: 32500, .. })));
    assert_eq!(archive.read("weights.h5", u64::MAX), Err(Error::NotFound("weights.h5".into())));
}

/// An archive Python's `zipfile` (3.11) wrote to an unseekable stream, so each entry's CRC-32 and
/// sizes follow its data in a descriptor (flag bit 3) and are zero in its local header: stored
/// and deflated entries, an empty one, a UTF-8 name (flag bit 11) and an archive comment. The
/// SHA-256 are `zipfile`'s reading. Made by, with `Z = ZipInfo`, `D = ZIP_DEFLATED` and `s` a
/// writable `io.RawIOBase` whose `seekable()` is false:
///
/// ```python
/// with ZipFile(s, "w") as z:
///     z.comment = b"written by Python's zipfile to a stream"
///     t = (1980, 1, 1, 0, 0, 0)
///     z.writestr(Z("empty.txt", t), b"")
///     lines = b"".join(b"line %d of a deflated entry\n" % i for i in range(100))
///     z.writestr(Z("deflated.txt", t), lines, D)
///     z.writestr(Z("stored.bin", t), bytes(range(256)) + bytes(44))
///     z.writestr(Z("naïve/ünïcode.txt", t), "ünïcode ✓\n".encode() * 20, D)
/// ```
#[test]
fn python_streamed_archives_read() {
    let bytes = fixture("python-zipfile-streamed.zip");
    assert_eq!(
        listing(&bytes),
        [
            "empty.txt 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "deflated.txt 2790 02d6c4f9cf705eb2bcba34e4e30798569aff6ad621f842e5a018cbee59171ab5",
            "stored.bin 300 4d2746b98a142f34f4e42335eace0932b1ebeea548ab97e8b163c8be6ea989cc",
            "naïve/ünïcode.txt 280 7b62c81509a81ef866d96d67a8bc0a1179a6bfb28653ce08262214872549ac47",
        ]
    );
    let archive = Archive::new(&bytes).unwrap();
    let methods: Vec<Method> = archive.entries().iter().map(Entry::method).collect();
    assert_eq!(methods, [Method::Stored, Method::Deflated, Method::Stored, Method::Deflated]);
    assert_eq!(archive.entry("deflated.txt").unwrap().compressed_size(), 260);
}

/// Entries of every kind: empty, small, a 3 MB one, a UTF-8 name; stored and deflated.
fn sample(method: Method) -> (Vec<u8>, Entries) {
    let mut state = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..3_000_000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Mostly a pattern, with noise: compressible, but not to nothing.
            if i % 7 == 0 {
                state as u8
            } else {
                (i / 1000) as u8
            }
        })
        .collect();
    let entries = vec![
        ("empty".to_string(), Vec::new()),
        ("metadata.json".to_string(), br#"{"keras_version": "3.15.1"}"#.to_vec()),
        ("dir/ünïcode ✓.bin".to_string(), (0..=255).collect()),
        ("model.weights.h5".to_string(), noise),
    ];
    let mut writer = Writer::new();
    for (name, data) in &entries {
        writer.add(name, data, method).unwrap();
    }
    (writer.finish().unwrap(), entries)
}

/// With `NN_ZIP_OUT=DIR`, the archives are also left in `DIR` (`Stored.zip`, `Deflated.zip`) for
/// other readers (Python's `zipfile`, `unzip -t`) to check.
#[test]
fn written_archives_read_back() {
    for method in [Method::Stored, Method::Deflated] {
        let (bytes, entries) = sample(method);
        if let Some(dir) = std::env::var_os("NN_ZIP_OUT") {
            std::fs::write(std::path::Path::new(&dir).join(format!("{method:?}.zip")), &bytes).unwrap();
        }
        assert_eq!(read_all(&bytes).unwrap(), entries, "{method:?}");
        let archive = Archive::new(&bytes).unwrap();
        let big = archive.entry("model.weights.h5").unwrap();
        assert_eq!((big.method(), big.size()), (method, 3_000_000));
        if method == Method::Deflated {
            assert!(big.compressed_size() < 1_000_000, "{}", big.compressed_size());
        }
        // The UTF-8 name's flag (bit 11), in its local header; none on ASCII names.
        let flags = |i: usize| {
            let local =
                u32::from_le_bytes(bytes[central(&bytes, i) + 42..][..4].try_into().unwrap()) as usize;
            u16::from_le_bytes([bytes[local + 6], bytes[local + 7]])
        };
        assert_eq!((flags(1), flags(2)), (0, FLAG_UTF8));
        // The same entries give the same bytes.
        assert_eq!(sample(method).0, bytes);
    }
    assert_eq!(read_all(&Writer::new().finish().unwrap()).unwrap(), []);
}

#[test]
fn the_writer_refuses_what_zip_cannot_hold() {
    let mut writer = Writer::new();
    assert!(matches!(writer.add("", b"x", Method::Stored), Err(Error::Invalid(_))));
    assert!(matches!(writer.add(&"n".repeat(70_000), b"x", Method::Stored), Err(Error::Invalid(_))));
    writer.add("a", b"x", Method::Stored).unwrap();
    assert!(matches!(writer.add("a", b"y", Method::Deflated), Err(Error::Invalid(_))));
}

/// A small archive: a stored entry of 100 bytes (`a`), a deflated one of 10,000 (`b`).
fn small() -> Vec<u8> {
    let mut writer = Writer::new();
    writer.add("a", &(0..100).collect::<Vec<u8>>(), Method::Stored).unwrap();
    writer.add("b", &b"0123456789".repeat(1000), Method::Deflated).unwrap();
    writer.finish().unwrap()
}

/// Where entry `i`'s central directory record starts, in an archive without a comment.
fn central(bytes: &[u8], i: usize) -> usize {
    let end = bytes.len() - 22;
    let mut at = u32::from_le_bytes(bytes[end + 16..end + 20].try_into().unwrap()) as usize;
    for _ in 0..i {
        let len = |k: usize| u16::from_le_bytes([bytes[at + k], bytes[at + k + 1]]) as usize;
        at += 46 + len(28) + len(30) + len(32);
    }
    at
}

/// `bytes` with the 16- or 32-bit field at `at` set to `value`.
fn set(bytes: &[u8], at: usize, value: u32, width: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    out
}

#[test]
fn every_truncation_fails() {
    let bytes = small();
    assert_eq!(read_all(&bytes).unwrap().len(), 2);
    for len in 0..bytes.len() {
        assert!(read_all(&bytes[..len]).is_err(), "cut at {len}");
    }
    assert!(matches!(Archive::new(b"not a zip archive at all"), Err(Error::Malformed(_))));
}

#[test]
fn lying_sizes_and_crcs_are_caught() {
    let bytes = small();
    let (a, b) = (central(&bytes, 0), central(&bytes, 1));
    let corrupt = |bytes: &[u8], name: &str| match Archive::new(bytes).unwrap().read(name, u64::MAX) {
        Err(Error::Corrupt { name: n, reason }) if n == name => reason,
        other => panic!("{other:?}"),
    };
    // A stored entry whose two sizes differ is malformed; one with both 1 byte longer reads a
    // byte of the next header, caught by the CRC-32.
    assert!(matches!(Archive::new(&set(&bytes, a + 24, 99, 4)), Err(Error::Malformed(_))));
    let longer = set(&set(&bytes, a + 24, 101, 4), a + 20, 101, 4);
    assert!(corrupt(&longer, "a").contains("CRC-32"));
    // A deflated entry declaring a byte more or less than it inflates to.
    let reason = corrupt(&set(&bytes, b + 24, 10_001, 4), "b");
    assert_eq!(reason, "inflates to 10000 bytes, not the 10001 declared");
    let reason = corrupt(&set(&bytes, b + 24, 9_999, 4), "b");
    assert_eq!(reason, "inflates to more than 9999 bytes, not the 9999 declared");
    // Or 4 GiB: more than its few bytes can yield, refused before anything is allocated, and
    // over a caller's limit.
    let huge = set(&bytes, b + 24, u32::MAX - 1, 4);
    assert!(corrupt(&huge, "b").contains("more than deflate yields"));
    let over = Archive::new(&huge).unwrap().read("b", 1 << 20);
    assert!(matches!(over, Err(Error::TooLarge { size: 4_294_967_294, limit: 1_048_576, .. })));
    // A flipped byte of data, a flipped CRC-32.
    let mut flipped = bytes.clone();
    flipped[30 + 1 + 50] ^= 1;
    let mut data: Vec<u8> = (0..100).collect();
    let declared = crc32(&data);
    data[50] ^= 1;
    let reason = format!("CRC-32 {:08x}, not the {declared:08x} declared", crc32(&data));
    assert_eq!(corrupt(&flipped, "a"), reason);
    let mut flipped = bytes.clone();
    flipped[b + 16] ^= 0x80;
    assert!(corrupt(&flipped, "b").contains("CRC-32"));
    // Deflated data that is not deflate.
    let start = 30 + 1 + 100 + 30 + 1;
    let mut garbage = bytes.clone();
    garbage[start..start + 8].fill(0xFF);
    assert!(corrupt(&garbage, "b").contains("deflate"));
}

#[test]
fn data_outside_the_file_is_malformed() {
    let bytes = small();
    let (a, b) = (central(&bytes, 0), central(&bytes, 1));
    let malformed = |bytes: &[u8]| matches!(Archive::new(bytes), Err(Error::Malformed(_)));
    // A local header past the end, in the central directory, or not a local header.
    assert!(malformed(&set(&bytes, b + 42, bytes.len() as u32, 4)));
    assert!(malformed(&set(&bytes, b + 42, a as u32, 4)));
    assert!(malformed(&set(&bytes, b + 42, 10, 4)));
    // Data running into the central directory.
    assert!(malformed(&set(&bytes, b + 20, 1 << 30, 4)));
    // A local header naming another entry.
    assert!(malformed(&set(&bytes, 30, u32::from(b'z'), 1)));
    // A central directory past its end record, or with a byte too many or too few.
    let end = bytes.len() - 22;
    assert!(malformed(&set(&bytes, end + 16, a as u32 + 1, 4)));
    assert!(malformed(&set(&bytes, end + 12, (end - a) as u32 - 1, 4)));
    for count in [1, 3] {
        assert!(malformed(&set(&set(&bytes, end + 8, count, 2), end + 10, count, 2)), "{count} entries");
    }
}

#[test]
fn unsupported_features_are_refused() {
    let bytes = small();
    let (a, b) = (central(&bytes, 0), central(&bytes, 1));
    let end = bytes.len() - 22;
    let unsupported = |bytes: &[u8]| match Archive::new(bytes) {
        Err(Error::Unsupported(what)) => what,
        other => panic!("{other:?}"),
    };
    assert!(unsupported(&set(&bytes, a + 8, 1, 2)).contains("encryption"));
    assert!(unsupported(&set(&bytes, b + 8, 1 << 6 | 1, 2)).contains("encryption"));
    assert_eq!(unsupported(&set(&bytes, b + 10, 12, 2)), "compression method 12 (entry 'b')");
    assert!(unsupported(&set(&bytes, b + 20, u32::MAX, 4)).starts_with("ZIP64"));
    assert!(unsupported(&set(&bytes, b + 42, u32::MAX, 4)).starts_with("ZIP64"));
    assert!(unsupported(&set(&set(&bytes, end + 8, 0xFFFF, 2), end + 10, 0xFFFF, 2)).starts_with("ZIP64"));
    assert!(unsupported(&set(&bytes, end + 16, u32::MAX, 4)).starts_with("ZIP64"));
    assert!(unsupported(&set(&bytes, end + 4, 1, 2)).contains("disks"));
    assert!(unsupported(&set(&bytes, end + 8, 1, 2)).contains("disks"));
    assert!(unsupported(&set(&bytes, b + 34, 1, 2)).contains("disks"));
    // A ZIP64 end of central directory locator before the end record.
    let mut zip64 = bytes[..end].to_vec();
    zip64.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
    zip64.extend_from_slice(&[0; 16]);
    zip64.extend_from_slice(&bytes[end..]);
    assert!(unsupported(&zip64).starts_with("ZIP64"));
}

/// The local header's own name and extra field lengths place the data (its extra field can
/// differ from the central one, as Python's ZIP64 extra does); an archive comment, even one
/// holding an end record's signature, is skipped.
#[test]
fn local_extra_fields_and_comments() {
    let mut writer = Writer::new();
    writer.add("x", b"hello", Method::Stored).unwrap();
    let bytes = writer.finish().unwrap();
    let end = bytes.len() - 22;
    let extra = [0xFE, 0xCA, 5, 0, 1, 2, 3, 4, 5];
    let mut moved = bytes[..31].to_vec();
    moved[28] = extra.len() as u8;
    moved.extend_from_slice(&extra);
    moved.extend_from_slice(&bytes[31..]);
    // The central directory, after the entry's header, name and 5 bytes, moves too.
    let moved = set(&moved, end + extra.len() + 16, (30 + 1 + 5 + extra.len()) as u32, 4);
    assert_eq!(read_all(&moved).unwrap(), [("x".to_string(), b"hello".to_vec())]);

    let comment = b"PK\x05\x06 is not an end record here";
    let mut commented = set(&bytes, end + 20, comment.len() as u32, 2);
    commented.extend_from_slice(comment);
    assert_eq!(read_all(&commented).unwrap(), [("x".to_string(), b"hello".to_vec())]);
    // A comment whose length does not reach the end exactly: no end record is found.
    assert!(matches!(Archive::new(&commented[..commented.len() - 1]), Err(Error::Malformed(_))));
}

/// Keras' model4 archive (stored) and the same entries deflated, and those entries.
fn sources() -> &'static ([Vec<u8>; 2], Entries) {
    static SOURCES: OnceLock<([Vec<u8>; 2], Entries)> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let stored = fixture("keras-model4.keras");
        let entries = read_all(&stored).unwrap();
        let mut writer = Writer::new();
        for (name, data) in &entries {
            writer.add(name, data, Method::Deflated).unwrap();
        }
        ([stored, writer.finish().unwrap()], entries)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Keras' model4 archive, stored or deflated, with bytes flipped (most in its headers and
    /// central directory) and cut anywhere: the reader returns, and whatever it reads under an
    /// entry's name is that entry's bytes (the CRC-32 catches the rest).
    #[test]
    fn damaged_archives_never_panic(
        source in 0..2usize,
        flips in proptest::collection::vec((0..3usize, any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (archives, expected) = sources();
        let mut bytes = archives[source].clone();
        let len = bytes.len();
        for (region, at, xor) in flips {
            // The local headers of the first two entries and the start of the third's data, the
            // central directory and end record, or anywhere.
            let at = match region {
                0 => at.index(4200),
                1 => len - 1 - at.index(300),
                _ => at.index(len),
            };
            bytes[at] ^= xor;
        }
        if truncate {
            bytes.truncate(cut.index(len));
        }
        if let Ok(archive) = Archive::new(&bytes) {
            for entry in archive.entries() {
                if let Ok(data) = archive.read_entry(entry, 1 << 31) {
                    if let Some((_, want)) = expected.iter().find(|(name, _)| name == entry.name()) {
                        prop_assert!(&data == want, "{} read other bytes", entry.name());
                    }
                }
            }
        }
    }
}
