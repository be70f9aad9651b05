//! Downloading MNIST and Fashion-MNIST from public mirrors, with checksums and a progress bar.
//!
//! Each file is tried on every mirror in turn until one delivers it with the right SHA-256 (of the
//! decompressed content, so a mirror that recompresses the same data still passes). It is written
//! to a temporary file in the destination folder, flushed to disk, verified, then renamed into
//! place, so an interrupted download never leaves a file that looks complete.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::idx::{open_decompressed, stream_error};
use super::{DatasetError, DatasetFiles, DatasetKind, DownloadAttempt, DownloadFailure};

/// MNIST mirrors, tried in order. LeCun's own site is last: it often refuses or throttles.
pub const MNIST_MIRRORS: [&str; 3] = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// Fashion-MNIST mirrors, tried in order: the copy Keras' `fashion_mnist.load_data` uses (HTTPS),
/// then Zalando's original bucket (plain HTTP only).
pub const FASHION_MIRRORS: [&str; 2] = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
];

/// SHA-256 of the decompressed MNIST files, in [`FILE_STEMS`](super::FILE_STEMS) order.
pub const MNIST_SHA256: [&str; 4] = [
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
];

/// SHA-256 of the decompressed Fashion-MNIST files, in [`FILE_STEMS`](super::FILE_STEMS) order.
///
/// Computed from Debian's `dataset-fashion-mnist` after checking it is the official set (60000
/// training and 10000 test items, 6000 and 1000 per class). Its `.gz` files are recompressed, so
/// only the decompressed content matches other mirrors' copies.
pub const FASHION_SHA256: [&str; 4] = [
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
];

/// The largest response accepted, so a misbehaving mirror cannot fill the disk. MNIST's largest
/// file is 47 MB even uncompressed.
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// One file to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile<'a> {
    /// Its name on the mirrors and on disk, e.g. `train-images-idx3-ubyte.gz`.
    pub name: &'a str,
    /// The SHA-256 of its decompressed content (of the file itself if it is not gzipped), hex.
    pub sha256: &'a str,
}

/// What to download, from where, and what to tell the user when it fails.
#[derive(Debug, Clone, Copy)]
pub struct DownloadSpec<'a> {
    /// The dataset's name in messages.
    pub dataset: &'static str,
    /// The environment variable a user can set instead, named in the error message.
    pub env_var: &'static str,
    /// Base URLs, tried in order; each file's URL is the base followed by its name.
    pub base_urls: &'a [&'a str],
    /// The files.
    pub files: &'a [RemoteFile<'a>],
}

impl DatasetKind {
    /// The mirrors and files of this dataset.
    pub fn download_spec(self) -> DownloadSpec<'static> {
        const fn files(sha256: &'static [&'static str; 4]) -> [RemoteFile<'static>; 4] {
            [
                RemoteFile { name: "train-images-idx3-ubyte.gz", sha256: sha256[0] },
                RemoteFile { name: "train-labels-idx1-ubyte.gz", sha256: sha256[1] },
                RemoteFile { name: "t10k-images-idx3-ubyte.gz", sha256: sha256[2] },
                RemoteFile { name: "t10k-labels-idx1-ubyte.gz", sha256: sha256[3] },
            ]
        }
        static MNIST_FILES: [RemoteFile<'static>; 4] = files(&MNIST_SHA256);
        static FASHION_FILES: [RemoteFile<'static>; 4] = files(&FASHION_SHA256);
        let (base_urls, files): (&'static [&'static str], _) = match self {
            DatasetKind::Mnist => (&MNIST_MIRRORS, &MNIST_FILES),
            DatasetKind::Fashion => (&FASHION_MIRRORS, &FASHION_FILES),
        };
        DownloadSpec { dataset: self.name(), env_var: self.env_var(), base_urls, files }
    }
}

/// Downloads `kind`'s four files into `dest_dir` (created if needed) from its public mirrors.
pub fn download(kind: DatasetKind, dest_dir: &Path) -> Result<DatasetFiles, DatasetError> {
    let paths = download_from(&kind.download_spec(), dest_dir)?;
    let [train_images, train_labels, test_images, test_labels]: [PathBuf; 4] =
        paths.try_into().expect("a dataset's download spec lists its four files");
    Ok(DatasetFiles { train_images, train_labels, test_images, test_labels })
}

/// Downloads each of `spec.files` into `dest_dir`, trying `spec.base_urls` in order, and returns
/// their paths in the same order.
///
/// A file already in `dest_dir` (gzipped under its name, or decompressed under its name without
/// `.gz`) with the right checksum is kept. If every mirror fails for a file, the error lists each
/// URL tried and why, and where the user can put the files by hand.
pub fn download_from(spec: &DownloadSpec<'_>, dest_dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let failed = |attempts| DatasetError::DownloadFailed {
        dataset: spec.dataset,
        dest_dir: dest_dir.to_path_buf(),
        files: spec.files.iter().map(|f| f.name.to_string()).collect(),
        env_var: spec.env_var,
        attempts,
    };
    fs::create_dir_all(dest_dir)
        .map_err(|source| DatasetError::Io { path: dest_dir.to_path_buf(), source })?;
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("nn-datasets/", env!("CARGO_PKG_VERSION")))
        // The system's TLS library and certificate store (ureq's `native-tls`).
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .new_agent();

    let mut paths = Vec::with_capacity(spec.files.len());
    for file in spec.files {
        if let Some(existing) = existing_verified(dest_dir, file) {
            paths.push(existing);
            continue;
        }
        let dest = dest_dir.join(file.name);
        let mut attempts = Vec::new();
        for base in spec.base_urls {
            let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
            match fetch_verified(&agent, &url, &dest, file.sha256) {
                Ok(()) => break,
                Err(failure) => {
                    // The final error lists every attempt; this line only explains a pause before
                    // the next mirror.
                    if attempts.len() + 1 < spec.base_urls.len() {
                        eprintln!("{url} failed ({failure}); trying the next mirror");
                    }
                    attempts.push(DownloadAttempt { url, failure });
                }
            }
        }
        if attempts.len() == spec.base_urls.len() {
            return Err(failed(attempts));
        }
        paths.push(dest);
    }
    Ok(paths)
}

/// The copy of `file` already in `dest_dir`, if one is there with the right checksum.
fn existing_verified(dest_dir: &Path, file: &RemoteFile<'_>) -> Option<PathBuf> {
    let decompressed_name = file.name.strip_suffix(".gz");
    [Some(file.name), decompressed_name]
        .into_iter()
        .flatten()
        .map(|name| dest_dir.join(name))
        .find(|path| path.is_file() && sha256_decompressed(path).is_ok_and(|sum| sum == file.sha256))
}

/// Downloads `url` to `dest` through a temporary file, keeping it only if its checksum matches.
fn fetch_verified(agent: &ureq::Agent, url: &str, dest: &Path, sha256: &str) -> Result<(), DownloadFailure> {
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => DownloadFailure::HttpStatus(code),
        other => DownloadFailure::Transport(other.to_string()),
    })?;
    let body = response.into_body();
    let total = body.content_length();
    let mut reader = body.into_with_config().limit(MAX_DOWNLOAD_BYTES).reader();

    let mut temp = TempFile::create_beside(dest).map_err(DownloadFailure::Io)?;
    let mut progress = Progress::start(url, total);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.finish("failed");
                return Err(DownloadFailure::Transport(e.to_string()));
            }
        };
        if let Err(e) = temp.file.write_all(&buf[..n]) {
            progress.finish("failed");
            return Err(DownloadFailure::Io(e));
        }
        progress.advance(n as u64);
    }
    if let Some(total) = total.filter(|&t| t != progress.done) {
        progress.finish("failed");
        return Err(DownloadFailure::Transport(format!(
            "connection closed after {} of {total} bytes",
            progress.done
        )));
    }
    // Flush to disk before verifying and renaming, so a crash cannot leave a renamed but empty file.
    temp.file.sync_all().map_err(DownloadFailure::Io)?;
    let actual = sha256_decompressed(&temp.path).map_err(|e| match e {
        DatasetError::Io { source, .. } => DownloadFailure::Io(source),
        other => DownloadFailure::CorruptGzip(other.to_string()),
    })?;
    if actual != sha256 {
        progress.finish("checksum mismatch");
        return Err(DownloadFailure::ChecksumMismatch { expected: sha256.to_string(), actual });
    }
    temp.persist(dest).map_err(DownloadFailure::Io)?;
    progress.finish("ok, checksum verified");
    Ok(())
}

/// A temporary file beside its destination (so the final rename stays on one file system); it is
/// removed when dropped unless [`TempFile::persist`] renamed it into place.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    fn create_beside(dest: &Path) -> io::Result<TempFile> {
        // The process id and a counter keep concurrent downloads (other processes, other threads)
        // from sharing a temporary file.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        let unique = format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = dest.with_file_name(format!(".{name}.{unique}.part"));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(TempFile { path, file, persisted: false })
    }

    fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        // Make the rename itself durable; only possible (and needed) where folders can be opened.
        #[cfg(unix)]
        if let Some(dir) = dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The SHA-256 of everything `reader` yields, as lowercase hex.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of a file's content, decompressed first if it is gzipped (told by its first bytes),
/// as lowercase hex.
pub fn sha256_decompressed(path: &Path) -> Result<String, DatasetError> {
    let opened = open_decompressed(path)?;
    sha256_hex(opened.reader).map_err(|source| stream_error(path, opened.gzip, source))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Download progress on stderr: a bar redrawn in place with `\r` when stderr is a terminal, else
/// (logs, pipes) one plain line per file, with no control characters.
struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    terminal: bool,
    last_draw: Option<Instant>,
}

impl Progress {
    fn start(url: &str, total: Option<u64>) -> Progress {
        let terminal = io::stderr().is_terminal();
        let label = url.rsplit('/').next().unwrap_or(url).to_string();
        if !terminal {
            let size = total.map(|t| format!(" ({})", human_bytes(t))).unwrap_or_default();
            eprintln!("Downloading {url}{size}");
        }
        let mut progress = Progress { label, total, done: 0, terminal, last_draw: None };
        progress.draw(false);
        progress
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        self.draw(false);
    }

    fn finish(&mut self, outcome: &str) {
        if self.terminal {
            self.draw(true);
            eprintln!(" {outcome}");
        }
    }

    fn draw(&mut self, force: bool) {
        // Redrawing every chunk would flood a slow terminal; ten times a second is smooth enough.
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.terminal && (force || due) {
            eprint!("\r{}", progress_line(&self.label, self.done, self.total));
            let _ = io::stderr().flush();
            self.last_draw = Some(Instant::now());
        }
    }
}

/// One progress line: name, a 30-column bar, bytes done of total and the percentage (bytes only
/// when the server did not send a length).
fn progress_line(label: &str, done: u64, total: Option<u64>) -> String {
    const WIDTH: u64 = 30;
    match total {
        Some(total) if total > 0 => {
            let done = done.min(total);
            let filled = (done * WIDTH / total) as usize;
            let percent = done * 100 / total;
            let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH as usize - filled));
            format!("{label} [{bar}] {} / {} {percent:3}%", human_bytes(done), human_bytes(total))
        }
        _ => format!("{label} {}", human_bytes(done)),
    }
}

/// A byte count for people: B, KiB or MiB.
fn human_bytes(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
