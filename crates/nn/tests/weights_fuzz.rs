//! Property tests of the weights loader (a stand-in for cargo-fuzz, which CI cannot run):
//! arbitrary bytes, hand-made safetensors headers and mutated saved files never panic, never make
//! an allocation larger than the file warrants, and a load either fully succeeds with the file's
//! values or fails leaving the model unchanged. A few seconds in all.

mod common;

use std::sync::OnceLock;

use nn::layers::Dense;
use nn::{Error, SavingError, Sequential};
use proptest::prelude::*;

#[global_allocator]
static ALLOC: common::LargestAllocation = common::LargestAllocation;

/// dense_1: kernel [3, 2], bias [2].
fn model() -> Sequential {
    let mut m = Sequential::new().seed(5);
    m.add(Dense::new(2).input_shape([3])).unwrap();
    m
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect()
}

/// Loads `bytes` into a fresh model and checks the properties every load must have.
fn check_load(bytes: &[u8]) -> Result<Vec<Vec<f32>>, SavingError> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let mut m = model();
    let before = weights(&m);
    let (result, largest) = common::largest_allocation_during(|| m.load_weights(&path));
    assert!(
        largest <= (64 << 10) + 16 * bytes.len(),
        "loading {} bytes allocated {largest} bytes at once: {result:?}",
        bytes.len()
    );
    let dims: Vec<Vec<usize>> = m.trainable_variables().iter().map(|v| v.dims().to_vec()).collect();
    assert_eq!(dims, [vec![3, 2], vec![2]], "a load never changes the model's shapes");
    match result {
        Ok(()) => Ok(weights(&m)),
        Err(Error::Saving(e)) => {
            assert_eq!(weights(&m), before, "a failed load changes nothing");
            assert!(e.to_string().contains(&path.display().to_string()), "the message names the file: {e}");
            Err(e)
        }
        Err(other) => panic!("not a saving error: {other:?}"),
    }
}

/// The file `save_weights` writes for [`model`], saved once: a save fsyncs, which is slow.
fn saved_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("saved.safetensors");
        model().save_weights(&path).unwrap();
        std::fs::read(&path).unwrap()
    })
}

/// A safetensors file from a JSON header and data, with a correct length prefix.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// One header entry: a name (mostly the model's), a dtype, a shape and offsets that are
/// sometimes consistent and sometimes wild.
fn entry() -> impl Strategy<Value = String> {
    let name = prop_oneof![Just("dense_1/kernel"), Just("dense_1/bias"), Just("dense_2/kernel"), Just("")];
    let dtype = prop_oneof![Just("F32"), Just("F64"), Just("BF16"), Just("I8"), Just("F4"), Just("NOPE")];
    let dim = prop_oneof![0u64..5, Just(u64::MAX), Just(1 << 32), Just(1 << 62)];
    let shape = prop::collection::vec(dim, 0..4);
    let offset = prop_oneof![0u64..40, Just(u64::MAX), Just(1 << 40)];
    (name, dtype, shape, offset.clone(), offset).prop_map(|(name, dtype, shape, start, end)| {
        format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{start},{end}]}}"#)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_rejected_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = check_load(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        entries in prop::collection::vec(entry(), 0..4),
        data in prop::collection::vec(any::<u8>(), 0..48),
        prefix in prop_oneof![Just(None), any::<u64>().prop_map(Some)],
    ) {
        let header = format!("{{{}}}", entries.join(","));
        let mut bytes = file(&header, &data);
        if let Some(n) = prefix {
            bytes[..8].copy_from_slice(&n.to_le_bytes());
        }
        if let Ok(loaded) = check_load(&bytes) {
            // Accepted: each variable holds its tensor's bytes, read as little-endian f32.
            let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            for (name, values) in ["dense_1/kernel", "dense_1/bias"].iter().zip(&loaded) {
                let expected: Vec<u32> = file.tensor(name).unwrap().data().chunks_exact(4)
                    .map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
                prop_assert_eq!(values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected);
            }
        }
    }

    #[test]
    fn mutated_saved_files_never_panic(mutations in prop::collection::vec(common::mutation(), 1..4)) {
        let original = saved_bytes();
        let mut bytes = original.to_vec();
        for m in &mutations {
            common::apply(&mut bytes, m);
        }
        if let Ok(loaded) = check_load(&bytes) {
            // Only changes to the data bytes or to the header's spacing can keep a file valid.
            prop_assert_eq!(loaded.concat().len(), 8);
            if bytes == *original {
                prop_assert_eq!(loaded, weights(&model()));
            }
        }
    }
}

#[test]
fn the_unmutated_file_loads() {
    assert_eq!(check_load(saved_bytes()).unwrap(), weights(&model()));
}

#[test]
fn a_length_prefix_of_2_pow_63_is_a_format_error() {
    let mut bytes = file("{}", &[]);
    bytes[..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    let err = check_load(&bytes).unwrap_err();
    assert!(matches!(err, SavingError::Format { .. }), "{err:?}");
    assert!(err.to_string().contains("not a valid safetensors file"), "{err}");
}
