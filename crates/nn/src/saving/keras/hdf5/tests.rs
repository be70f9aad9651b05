//! The reader on Keras' own files (values identical to what `hdf5-pure` read from them), the
//! writer read back, and damaged files giving errors.

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

/// The `model.weights.h5` of a committed `.keras` fixture.
fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    let bytes = std::fs::read(path).unwrap();
    crate::saving::zip::Archive::new(&bytes).unwrap().read("model.weights.h5", u64::MAX).unwrap()
}

/// Every dataset below `group`, as `path label shape hash` (the first 8 bytes of the SHA-256 of
/// its stored bytes), in name order; groups visited to `depth` levels.
fn listing(file: &File, group: &str, depth: usize, out: &mut Vec<String>) -> Result<()> {
    let g = file.group(group)?;
    let join = |name: &str| if group.is_empty() { name.to_string() } else { format!("{group}/{name}") };
    for name in g.datasets()? {
        let d = file.dataset(&join(&name))?;
        let hash: String = Sha256::digest(d.raw_bytes()?)[..8].iter().map(|b| format!("{b:02x}")).collect();
        out.push(format!("{} {} {:?} {hash}", join(&name), d.datatype().label(), d.shape()));
    }
    if depth > 0 {
        for name in g.groups()? {
            listing(file, &join(&name), depth - 1, out)?;
        }
    }
    Ok(())
}

fn list(file: &File) -> Vec<String> {
    let mut out = Vec::new();
    listing(file, "", 8, &mut out).unwrap();
    out
}

/// What `hdf5-pure` 0.47 read from the fixtures (names, element types, shapes, SHA-256 of the
/// bytes), recorded before this reader replaced it.
const MODEL4: &[&str] = &[
    "layers/conv2d/vars/0 F32 [5, 5, 1, 20] 5d87a671ba2fc970",
    "layers/conv2d/vars/1 F32 [20] 9bf186d1bd56ba0a",
    "layers/dense/vars/0 F32 [2880, 100] a38c1b0588568389",
    "layers/dense/vars/1 F32 [100] 0cb9de4a106c00e3",
    "layers/dense_1/vars/0 F32 [100, 10] 6a36a64a1a26457d",
    "layers/dense_1/vars/1 F32 [10] 3ccaaf1b69008382",
];

const TWO_INPUTS_LAYERS: &[&str] = &[
    "layers/dense/vars/0 F32 [6, 5] c0bd20766de0655c",
    "layers/dense/vars/1 F32 [5] b796f255d9949e6e",
    "layers/dense_1/vars/0 F32 [4, 3] 80edecb5b29c8f44",
    "layers/dense_1/vars/1 F32 [3] 06f8891ec78f0fdc",
    "layers/dense_2/vars/0 F32 [8, 4] 9c10e7d98a43960a",
    "layers/dense_2/vars/1 F32 [4] 0e4eddc72c360fcc",
    "layers/dense_3/vars/0 F32 [8, 1] 2b8fb8fda377ecbf",
    "layers/dense_3/vars/1 F32 [1] caa0170f25583a5f",
];

/// The Adam state of the two-input fixture (its iteration count is a scalar `int32`).
const TWO_INPUTS_OPTIMIZER: &[&str] = &[
    "optimizer/vars/0 I32 [] df3f619804a92fdb",
    "optimizer/vars/1 F32 [] 0835a5c87ba00a93",
    "optimizer/vars/10 F32 [8, 4] 38723a2e5e8a17aa",
    "optimizer/vars/11 F32 [8, 4] 38723a2e5e8a17aa",
    "optimizer/vars/12 F32 [4] 374708fff7719dd5",
    "optimizer/vars/13 F32 [4] 374708fff7719dd5",
    "optimizer/vars/14 F32 [8, 1] 66687aadf862bd77",
    "optimizer/vars/15 F32 [8, 1] 66687aadf862bd77",
    "optimizer/vars/16 F32 [1] df3f619804a92fdb",
    "optimizer/vars/17 F32 [1] df3f619804a92fdb",
    "optimizer/vars/2 F32 [6, 5] 6edd9f6f9cc92cde",
    "optimizer/vars/3 F32 [6, 5] 6edd9f6f9cc92cde",
    "optimizer/vars/4 F32 [5] de47c9b27eb8d300",
    "optimizer/vars/5 F32 [5] de47c9b27eb8d300",
    "optimizer/vars/6 F32 [4, 3] 17b0761f87b081d5",
    "optimizer/vars/7 F32 [4, 3] 17b0761f87b081d5",
    "optimizer/vars/8 F32 [3] 15ec7bf0b50732b4",
    "optimizer/vars/9 F32 [3] 15ec7bf0b50732b4",
];

#[test]
fn keras_files_read_as_hdf5_pure_read_them() {
    let model4 = File::from_bytes(fixture("keras-model4.keras")).unwrap();
    assert_eq!(list(&model4), MODEL4);
    assert_eq!(
        model4.group("layers").unwrap().groups().unwrap(),
        ["conv2d", "dense", "dense_1", "flatten", "max_pooling2d"]
    );
    let two = File::from_bytes(fixture("keras-two-inputs.keras")).unwrap();
    assert_eq!(list(&two), [TWO_INPUTS_LAYERS, TWO_INPUTS_OPTIMIZER].concat());
    let iterations = two.dataset("optimizer/vars/0").unwrap();
    let int32 = Datatype::Integer { size: 4, signed: true, big_endian: false };
    assert_eq!((iterations.datatype(), iterations.shape()), (int32, &[][..]));
    assert_eq!(iterations.read_f32(), Err(Error::NotF32 { found: "I32".into() }));
    assert!(matches!(two.dataset("layers/dense/vars/7"), Err(Error::NotFound(_))));
    assert!(matches!(two.dataset("layers/dense/vars/0/x"), Err(Error::NotFound(_))));
    assert!(matches!(two.dataset("layers/dense"), Err(Error::WrongKind { expected: "dataset", .. })));
    assert!(matches!(two.group("layers/dense/vars/0"), Err(Error::WrongKind { expected: "group", .. })));
}

/// This library's `.keras` files before this reader (`hdf5-pure`'s layout: superblock 3, version
/// 2 object headers, links in the headers) still read, with the same values.
#[test]
fn files_written_by_hdf5_pure_still_read() {
    let file = File::from_bytes(fixture("nn-hdf5-pure-two-inputs.keras")).unwrap();
    assert_eq!(list(&file), TWO_INPUTS_LAYERS);
    assert_eq!(
        file.group("layers/dense/vars").unwrap().attr_string("name").unwrap().as_deref(),
        Some("dense_a")
    );
}

/// Datasets by path: shape and values.
type Datasets = Vec<(String, Vec<u64>, Vec<f32>)>;

/// A file with nested groups, a group of 300 members (a B-tree of two levels), scalars, empty
/// datasets and attributes.
fn sample() -> (FileBuilder, Datasets) {
    let mut file = FileBuilder::new();
    let mut datasets = Vec::new();
    let shapes: [&[u64]; 6] = [&[], &[0], &[3, 0], &[1], &[2, 3], &[2, 1, 2, 2]];
    for (i, shape) in shapes.iter().enumerate() {
        let n = shape.iter().product::<u64>() as usize;
        let values: Vec<f32> = (0..n).map(|k| (i * 100 + k) as f32 * 0.25 - 3.0).collect();
        datasets.push((format!("a/b/c/d{i}"), shape.to_vec(), values));
    }
    for i in 0..300 {
        datasets.push((format!("wide/m{i:03}"), vec![2], vec![i as f32, -(i as f32)]));
    }
    for (path, shape, values) in &datasets {
        let (group, name) = path.rsplit_once('/').unwrap();
        file.root().group_at(group).unwrap().add_f32(name, shape, values.clone()).unwrap();
    }
    file.root().group_at("a/b").unwrap().set_attr("name", "dense_1").unwrap();
    file.root().group_at("a").unwrap().set_attr("name", "").unwrap();
    file.root().group_at("a").unwrap().set_attr("other", "ünïcode").unwrap();
    file.root().group_at("empty/vars").unwrap();
    (file, datasets)
}

#[test]
fn written_files_read_back() {
    let (builder, datasets) = sample();
    let file = File::from_bytes(builder.finish()).unwrap();
    for (path, shape, values) in &datasets {
        let d = file.dataset(path).unwrap();
        assert_eq!(d.shape(), &shape[..], "{path}");
        assert!(d.datatype().is_f32());
        assert_eq!(&d.read_f32().unwrap(), values, "{path}");
    }
    assert_eq!(file.root().unwrap().groups().unwrap(), ["a", "empty", "wide"]);
    let wide = file.group("wide").unwrap().datasets().unwrap();
    assert_eq!(wide, (0..300).map(|i| format!("m{i:03}")).collect::<Vec<_>>());
    assert_eq!(file.group("a/b/c").unwrap().datasets().unwrap(), ["d0", "d1", "d2", "d3", "d4", "d5"]);
    assert!(file.group("empty/vars").unwrap().datasets().unwrap().is_empty());
    assert!(file.group("empty/vars").unwrap().groups().unwrap().is_empty());
    let attr = |group: &str, name: &str| file.group(group).unwrap().attr_string(name).unwrap();
    assert_eq!(attr("a/b", "name").as_deref(), Some("dense_1"));
    assert_eq!(attr("a", "name").as_deref(), Some(""));
    assert_eq!(attr("a", "other").as_deref(), Some("ünïcode"));
    assert_eq!(attr("a", "missing"), None);
    // The same tree gives the same bytes.
    assert_eq!(sample().0.finish(), builder.finish());
}

#[test]
fn the_writer_refuses_what_hdf5_cannot_hold() {
    let mut file = FileBuilder::new();
    let root = file.root();
    assert!(matches!(root.add_f32("x", &[2, 2], vec![1.0; 3]), Err(Error::Invalid(_))));
    assert!(matches!(root.add_f32("a/b", &[1], vec![1.0]), Err(Error::Invalid(_))));
    assert!(matches!(root.group(""), Err(Error::Invalid(_))));
    assert!(matches!(root.group("."), Err(Error::Invalid(_))));
    root.add_f32("x", &[1], vec![1.0]).unwrap();
    assert!(matches!(root.add_f32("x", &[1], vec![1.0]), Err(Error::Invalid(_))));
    assert!(matches!(root.group("x"), Err(Error::Invalid(_))));
    assert!(matches!(root.set_attr("name", "a\0b"), Err(Error::Invalid(_))));
    assert!(matches!(root.set_attr("name", &"x".repeat(70_000)), Err(Error::Invalid(_))));
}

/// The offset of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn other_element_types_are_named() {
    let mut builder = FileBuilder::new();
    builder.root().add_f32("x", &[2], vec![1.0, 2.0]).unwrap();
    let bytes = builder.finish();
    let float = [0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0];
    let at = find(&bytes, &float);
    let retyped = |datatype: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + 20].copy_from_slice(datatype);
        File::from_bytes(b).unwrap().dataset("x").unwrap().read_f32().unwrap_err()
    };
    let f64 = [0x11, 0x20, 63, 0, 8, 0, 0, 0, 0, 0, 64, 0, 52, 11, 0, 52, 0xFF, 3, 0, 0];
    assert_eq!(retyped(&f64), Error::NotF32 { found: "F64".into() });
    let big_endian = [0x11, 0x21, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0];
    assert_eq!(retyped(&big_endian), Error::NotF32 { found: "F32 (big-endian)".into() });
    let u8_type = [0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(retyped(&u8_type), Error::NotF32 { found: "U8".into() });
    let string = [0x13, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(retyped(&string), Error::NotF32 { found: "string".into() });
}

#[test]
fn damaged_files_give_errors() {
    let mut builder = FileBuilder::new();
    builder.root().add_f32("x", &[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let bytes = builder.finish();
    assert!(matches!(File::from_bytes(b"not hdf5".to_vec()), Err(Error::Malformed(_))));
    for len in 0..bytes.len() {
        let result = File::from_bytes(bytes[..len].to_vec()).and_then(|f| f.dataset("x")?.read_f32());
        assert!(result.is_err(), "cut at {len}");
    }
    // A layout that claims 2^60 bytes at an address past the end: an error, nothing allocated.
    let layout = find(&bytes, &[3, 1]);
    let mut lying = bytes.clone();
    lying[layout + 2..layout + 10].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let file = File::from_bytes(lying).unwrap();
    assert!(matches!(file.dataset("x").unwrap().read_f32(), Err(Error::Malformed(_))));
    // A shape whose element count overflows.
    let space = find(&bytes, &[1, 2, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    let mut huge = bytes.clone();
    huge[space + 8..space + 24].fill(0xF0);
    let file = File::from_bytes(huge).unwrap();
    assert!(matches!(file.dataset("x").unwrap().read_f32(), Err(Error::Malformed(_))));
    // Superblocks 2 and 3 are read; 4 is not a version.
    let mut future = bytes.clone();
    future[8] = 4;
    assert!(matches!(File::from_bytes(future), Err(Error::Unsupported(_))));
}

#[test]
fn cycles_end_in_errors() {
    // A B-tree node whose child is the node itself.
    let (builder, _) = sample();
    let mut bytes = builder.finish();
    let file = File::from_bytes(bytes.clone()).unwrap();
    assert_eq!(file.group("wide").unwrap().datasets().unwrap().len(), 300);
    // The two-level B-tree of `wide` is the only node of level 1.
    let root = find(&bytes, b"TREE\0\x01");
    bytes[root + 32..root + 40].copy_from_slice(&(root as u64).to_le_bytes());
    let file = File::from_bytes(bytes).unwrap();
    assert!(matches!(file.group("wide").unwrap().datasets(), Err(Error::Malformed(_))));

    // An object header whose continuation is its own block, made the root.
    let mut bytes = FileBuilder::new().finish();
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&[1, 0, 1, 0, 1, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x10, 0, 16, 0, 0, 0, 0, 0]);
    bytes.extend((at + 16).to_le_bytes().into_iter().chain(24u64.to_le_bytes()));
    bytes[64..72].copy_from_slice(&at.to_le_bytes());
    let file = File::from_bytes(bytes).unwrap();
    assert!(matches!(file.root(), Err(Error::Malformed(_))));
}

/// Reads everything in `bytes` it can; only whether this returns matters.
fn read_all(bytes: Vec<u8>) {
    let Ok(file) = File::from_bytes(bytes) else { return };
    let mut out = Vec::new();
    let _ = listing(&file, "", 4, &mut out);
    for path in ["layers/dense/vars/0", "optimizer/vars/1", "wide/m150", "a/b/c/d4"] {
        if let Ok(d) = file.dataset(path) {
            let _ = (d.read_f32(), d.datatype().label());
        }
    }
    if let Ok(g) = file.group("a/b") {
        let _ = g.attr_string("name");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bytes of Keras' file, an `hdf5-pure` one or a written one flipped, and the file cut anywhere: the reader
    /// returns, with values or an error.
    #[test]
    fn damaged_files_never_panic(
        source in 0..3usize,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = match source {
            0 => fixture("keras-two-inputs.keras"),
            1 => fixture("nn-hdf5-pure-two-inputs.keras"),
            _ => sample().0.finish(),
        };
        // Most of a file is values; aim the flips at the metadata in the first 8 KiB.
        let metadata = bytes.len().min(8192);
        for (at, xor) in flips {
            bytes[at.index(metadata)] ^= xor;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        read_all(bytes);
    }
}
