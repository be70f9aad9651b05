//! Saving tests that need the crate's internals: a save killed half-way by an injected write
//! error.

use std::io::{self, Write};

use super::weights::save_weights_with;
use crate::layers::{Conv2D, Dense, Flatten};
use crate::{Error, SavingError, Sequential};

fn model(seed: u64) -> Sequential {
    let mut m = Sequential::new().seed(seed);
    m.add(Conv2D::new(4, (3, 3)).input_shape([6, 6, 1])).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(3)).unwrap();
    m
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.trainable_variables().iter().map(|v| v.to_vec().unwrap()).collect()
}

#[test]
fn save_killed_half_way_leaves_the_old_file_loadable() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    let old = model(1);
    old.save_weights(&path).unwrap();
    let old_bytes = std::fs::read(&path).unwrap();

    let new = model(2);
    assert_ne!(weights(&old), weights(&new), "the two saves must differ for the test to mean anything");
    let mut written = 0;
    let err = save_weights_with(new.model().unwrap(), &path, None, |w, bytes| {
        // Half the file reaches the disk, then the disk is full.
        written = bytes.len() / 2;
        w.write_all(&bytes[..written])?;
        Err(io::Error::new(io::ErrorKind::StorageFull, "injected: no space left on device"))
    })
    .unwrap_err();
    assert!(written > 500, "the save was cut after {written} bytes");
    assert!(
        matches!(&err, Error::Saving(SavingError::Io { action: "write", source, .. })
            if source.kind() == io::ErrorKind::StorageFull),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{}: cannot write: injected: no space left on device", path.display())
    );

    // The old file is byte for byte intact, no temporary is left, and it loads.
    assert_eq!(std::fs::read(&path).unwrap(), old_bytes);
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["model.safetensors"]);
    let mut loaded = model(3);
    loaded.load_weights(&path).unwrap();
    assert_eq!(weights(&loaded), weights(&old));
}

#[test]
fn a_failing_flush_also_keeps_the_old_file() {
    // A writer whose bytes all "go through" but whose flush fails, as on a network file system
    // that reports the error late.
    struct FlushFails<'a>(&'a mut dyn Write);
    impl Write for FlushFails<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::other("injected: flush failed"))
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.safetensors");
    model(1).save_weights(&path).unwrap();
    let err = save_weights_with(model(2).model().unwrap(), &path, None, |w, bytes| {
        let mut f = FlushFails(w);
        f.write_all(bytes)?;
        f.flush()
    })
    .unwrap_err();
    assert!(err.to_string().ends_with("cannot write: injected: flush failed"), "{err}");
    let mut loaded = model(3);
    loaded.load_weights(&path).unwrap();
    assert_eq!(weights(&loaded), weights(&model(1)));
}
