//! Atomic file replacement: a save either fully replaces the old file or leaves it untouched.
//!
//! The bytes go to a new temporary file in the target's folder (same file system, so the rename
//! is atomic), which is flushed and fsynced before it is renamed over the target; then the folder
//! is fsynced so the rename itself survives a power cut. A failure at any step removes the
//! temporary file and leaves the target as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::SavingError;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SavingError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes to `path` atomically whatever `write` writes to the writer it is given.
///
/// `write` is the seam for fault injection: a test can wrap the writer in one that fails half-way
/// and check the previous file survives.
pub(crate) fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SavingError> {
    let err = |action, source| SavingError::Io { path: path.to_path_buf(), action, source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tmp_path, file) =
        create_temp_beside(path, &dir).map_err(|e| err("create a temporary file for", e))?;
    let written = (|| {
        let mut out = BufWriter::new(&file);
        write(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp_path);
        return Err(err("write", e));
    }
    if let Err(e) = fs::rename(&tmp_path, path) {
        let _ = fs::remove_file(&tmp_path);
        return Err(err("replace", e));
    }
    sync_dir(&dir).map_err(|e| err("sync the folder of", e))
}

/// Creates a new file `.NAME.tmp-PID-N` next to `path`. `create_new` makes sure no other
/// writer's temporary file (another thread or process saving to the same path) is reused.
fn create_temp_beside(path: &Path, dir: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| io::Error::other("the path has no file name"))?;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes a rename in `dir` durable. Only Unix can open and fsync a folder; elsewhere the rename
/// is as durable as the file system makes it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts `budget` bytes and then fails, as a full disk does.
    pub(crate) struct FailAfter<'a> {
        pub inner: &'a mut dyn Write,
        pub budget: usize,
    }

    impl Write for FailAfter<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "injected: no space left"));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(entries(tmp.path()), ["w.bin"]);
    }

    #[test]
    fn failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("w.bin");
        write_atomic(&path, b"old content").unwrap();
        let new = vec![7u8; 100_000];
        let err =
            write_atomic_with(&path, |w| FailAfter { inner: w, budget: 50_000 }.write_all(&new)).unwrap_err();
        assert!(
            matches!(&err, SavingError::Io { action: "write", source, .. } if source.kind() == io::ErrorKind::StorageFull),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("{}: cannot write: injected: no space left", path.display()));
        assert_eq!(fs::read(&path).unwrap(), b"old content");
        assert_eq!(entries(tmp.path()), ["w.bin"]);
    }

    #[test]
    fn missing_folder_is_an_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("no-such-dir").join("w.bin");
        let err = write_atomic(&path, b"x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}: cannot create a temporary file for:", path.display())),
            "{msg}"
        );
        assert!(
            matches!(err, SavingError::Io { ref source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
    }
}
