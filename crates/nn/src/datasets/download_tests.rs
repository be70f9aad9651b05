//! Download tests against a tiny HTTP server on 127.0.0.1 in a thread (never another address).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;
use crate::datasets::idx::tests::{gzip, idx_bytes};
use crate::datasets::mnist;

/// An HTTP/1.1 server on 127.0.0.1 answering GETs from a fixed table (404 for anything else). It
/// stops when dropped, or by itself after 60 seconds.
struct TestServer {
    base_url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn serve(files: HashMap<String, Vec<u8>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}/data/", listener.local_addr().unwrap());
        let (requests, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (thread_requests, thread_stop) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !thread_stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread_requests.fetch_add(1, Ordering::Relaxed);
                        let _ = answer(stream, &files);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer { base_url, requests, stop, thread: Some(thread) }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let name = path.strip_prefix("/data/").unwrap_or("");
    let (status, body) = match files.get(name) {
        Some(body) => ("200 OK", body.as_slice()),
        None => ("404 Not Found", b"not found".as_slice()),
    };
    let mut stream = stream;
    write!(stream, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    stream.write_all(body)?;
    stream.flush()
}

/// A small dataset in MNIST format: 3 training and 2 test images of 2x2 pixels, gzipped.
fn small_dataset() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "train-images-idx3-ubyte.gz",
            gzip(&idx_bytes(8, &[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255])),
        ),
        ("train-labels-idx1-ubyte.gz", gzip(&idx_bytes(8, &[3], &[5, 0, 4]))),
        ("t10k-images-idx3-ubyte.gz", gzip(&idx_bytes(8, &[2, 2, 2], &[9, 9, 9, 9, 1, 1, 1, 1]))),
        ("t10k-labels-idx1-ubyte.gz", gzip(&idx_bytes(8, &[2], &[7, 2]))),
    ]
}

fn serve_small_dataset() -> TestServer {
    TestServer::serve(small_dataset().into_iter().map(|(name, bytes)| (name.to_string(), bytes)).collect())
}

/// The small dataset's names and the SHA-256 of each decompressed file.
fn small_dataset_checksums() -> Vec<(&'static str, String)> {
    small_dataset()
        .into_iter()
        .map(|(name, bytes)| (name, sha256_hex(flate2::read::GzDecoder::new(bytes.as_slice())).unwrap()))
        .collect()
}

fn download_small(base_urls: &[&str], dest: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let checksums = small_dataset_checksums();
    let files: Vec<RemoteFile<'_>> =
        checksums.iter().map(|(name, sha256)| RemoteFile { name, sha256 }).collect();
    let spec = DownloadSpec { dataset: "MNIST", env_var: "MNIST_DIR", base_urls, files: &files };
    download_from(&spec, dest)
}

/// Names in `dir` that look like leftover temporary files.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sha256_hex_of_known_input() {
    assert_eq!(
        sha256_hex(b"abc".as_slice()).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn downloads_verifies_and_loads() {
    let server = serve_small_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("data/mnist");
    let paths = download_small(&[&server.base_url], &dest).unwrap();
    assert_eq!(paths[0], dest.join("train-images-idx3-ubyte.gz"));
    for (path, (_, bytes)) in paths.iter().zip(small_dataset()) {
        assert_eq!(fs::read(path).unwrap(), bytes);
    }
    assert!(leftovers(&dest).is_empty(), "{:?}", leftovers(&dest));

    let ((x_train, y_train), (x_test, y_test)) = mnist::load_dir(&dest).unwrap();
    assert_eq!(x_train.dims(), &[3, 2, 2]);
    assert_eq!(x_train.data()[11], 255.0);
    assert_eq!(y_train.data(), &[5.0, 0.0, 4.0]);
    assert_eq!(x_test.dims(), &[2, 2, 2]);
    assert_eq!(y_test.data(), &[7.0, 2.0]);

    // A second call finds the verified files and asks the server for nothing.
    let served = server.requests();
    assert_eq!(download_small(&[&server.base_url], &dest).unwrap(), paths);
    assert_eq!(server.requests(), served);
}

#[test]
fn falls_back_from_a_404_mirror_to_the_next() {
    let empty = TestServer::serve(HashMap::new());
    let good = serve_small_dataset();
    let tmp = tempfile::tempdir().unwrap();
    let paths = download_small(&[&empty.base_url, &good.base_url], tmp.path()).unwrap();
    assert_eq!(paths.len(), 4);
    assert!(paths.iter().all(|p| p.is_file()));
    assert_eq!(empty.requests(), 4, "each file is tried on the first mirror first");
    assert_eq!(good.requests(), 4);
}

#[test]
fn rejects_a_file_with_the_wrong_checksum() {
    let mut files: HashMap<String, Vec<u8>> =
        small_dataset().into_iter().map(|(name, bytes)| (name.to_string(), bytes)).collect();
    // Valid gzip and IDX, but not the content the checksum was taken of.
    files.insert("train-images-idx3-ubyte.gz".into(), gzip(&idx_bytes(8, &[1, 1, 1], &[42])));
    let server = TestServer::serve(files);
    let tmp = tempfile::tempdir().unwrap();
    let err = download_small(&[&server.base_url], tmp.path()).unwrap_err();
    let DatasetError::DownloadFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert_eq!(attempts.len(), 1);
    assert!(matches!(attempts[0].failure, DownloadFailure::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert!(!tmp.path().join("train-images-idx3-ubyte.gz").exists(), "a bad file must not be kept");
    assert!(leftovers(tmp.path()).is_empty(), "{:?}", leftovers(tmp.path()));
}

#[test]
fn all_mirrors_failing_gives_a_helpful_error() {
    let empty = TestServer::serve(HashMap::new());
    // A port nothing listens on: bind one, then close it.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/data/", listener.local_addr().unwrap())
    };
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("data/mnist");
    let err = download_small(&[&empty.base_url, &closed], &dest).unwrap_err();
    let DatasetError::DownloadFailed { attempts, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(attempts[0].failure, DownloadFailure::HttpStatus(404)), "{err:?}");
    assert!(matches!(attempts[1].failure, DownloadFailure::Transport(_)), "{err:?}");

    let msg = err.to_string();
    eprintln!("{msg}");
    for needle in [
        format!("{}train-images-idx3-ubyte.gz", empty.base_url),
        format!("{closed}train-images-idx3-ubyte.gz"),
        "HTTP status 404".to_string(),
        dest.display().to_string(),
        "t10k-labels-idx1-ubyte.gz".to_string(),
        "MNIST_DIR".to_string(),
        "--data".to_string(),
    ] {
        assert!(msg.contains(&needle), "message should contain {needle:?}:\n{msg}");
    }
}

#[test]
fn progress_line_shows_bytes_and_percentage() {
    let line = progress_line("t.gz", 3 << 20, Some(12 << 20));
    assert_eq!(line, "t.gz [#######-----------------------] 3.0 MiB / 12.0 MiB  25%");
    assert_eq!(progress_line("t.gz", 1 << 19, None), "t.gz 512.0 KiB");
    assert_eq!(
        progress_line("t.gz", 0, Some(1000)),
        "t.gz [------------------------------] 0 B / 1000 B   0%"
    );
    assert!(!line.contains('\u{1b}') && !line.contains('\r'));
}

#[test]
fn dataset_specs_name_the_four_files() {
    for kind in [DatasetKind::Mnist, DatasetKind::Fashion] {
        let spec = kind.download_spec();
        let names: Vec<_> = spec.files.iter().map(|f| f.name.trim_end_matches(".gz")).collect();
        assert_eq!(names, crate::datasets::FILE_STEMS);
        assert!(spec.files.iter().all(|f| f.sha256.len() == 64));
        assert!(spec.base_urls.iter().all(|url| url.ends_with('/')));
    }
}
