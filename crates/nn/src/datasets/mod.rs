//! Datasets, as Keras' `keras.datasets`: [`mnist::load_data`] and [`fashion_mnist::load_data`];
//! and a user's own picture of a digit as MNIST's ([`image::mnist_digit`]).
//!
//! Both read the four IDX files of the MNIST format (raw or gzipped) from the first folder that
//! holds all four (see [`search_dirs`]), and download them when none does.

pub mod download;
mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod image;
pub mod mnist;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub use error::{DatasetError, DownloadAttempt, DownloadFailure};

/// Which dataset of the MNIST format to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatasetKind {
    /// Handwritten digits 0-9 (LeCun, Cortes and Burges).
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST: ten kinds of clothing, a drop-in replacement for MNIST.
    Fashion,
}

impl DatasetKind {
    /// The dataset's name in messages: "MNIST" or "Fashion-MNIST".
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::Fashion => "Fashion-MNIST",
        }
    }

    /// The environment variable naming a folder that holds the files: `MNIST_DIR` or
    /// `FASHION_MNIST_DIR`.
    pub fn env_var(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "MNIST_DIR",
            DatasetKind::Fashion => "FASHION_MNIST_DIR",
        }
    }

    /// The folder, relative to the workspace root, where the files are looked for and downloaded
    /// to: `data/mnist` or `data/fashion-mnist`.
    pub fn workspace_subdir(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "data/mnist",
            DatasetKind::Fashion => "data/fashion-mnist",
        }
    }

    /// Folders where system packages install the dataset, searched last. Debian's
    /// `dataset-fashion-mnist` puts the four `.gz` files in `/usr/share/datasets/fashion-mnist`;
    /// Debian has no MNIST package.
    pub fn system_dirs(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &[],
            DatasetKind::Fashion => &["/usr/share/datasets/fashion-mnist"],
        }
    }
}

/// How [`mnist::load_data_with`] finds the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// A folder to look in first (the `--data DIR` flag). If it lacks any of the four files the
    /// search goes on to the other folders, and a download still goes to the workspace folder.
    pub data_dir: Option<PathBuf>,
    /// Which dataset to load.
    pub dataset: DatasetKind,
    /// Whether to download the files when no folder holds them.
    pub download: bool,
}

impl Default for LoadOptions {
    /// No extra folder, MNIST, downloading allowed.
    fn default() -> Self {
        LoadOptions { data_dir: None, dataset: DatasetKind::Mnist, download: true }
    }
}

/// The four files of an MNIST-format dataset, without the optional `.gz`.
pub const FILE_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Number of classes in MNIST and Fashion-MNIST; labels must be below it.
pub const NUM_CLASSES: usize = 10;

/// Paths of the four files of an MNIST-format dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFiles {
    /// Training images (`train-images-idx3-ubyte[.gz]`).
    pub train_images: PathBuf,
    /// Training labels (`train-labels-idx1-ubyte[.gz]`).
    pub train_labels: PathBuf,
    /// Test images (`t10k-images-idx3-ubyte[.gz]`).
    pub test_images: PathBuf,
    /// Test labels (`t10k-labels-idx1-ubyte[.gz]`).
    pub test_labels: PathBuf,
}

impl DatasetFiles {
    /// The four files in `dir`, each found under its plain name or with `.gz` (the plain name
    /// wins when both exist); `None` unless all four are there.
    pub fn find_in(dir: &Path) -> Option<DatasetFiles> {
        let find = |stem: &str| {
            [dir.join(stem), dir.join(format!("{stem}.gz"))].into_iter().find(|path| path.is_file())
        };
        let [train_images, train_labels, test_images, test_labels] = FILE_STEMS.map(find);
        Some(DatasetFiles {
            train_images: train_images?,
            train_labels: train_labels?,
            test_images: test_images?,
            test_labels: test_labels?,
        })
    }
}

/// The folders searched for `kind`, in order: `data_dir` (the `--data` flag), then the folder in
/// the environment variable (`env_value`, the value of [`DatasetKind::env_var`]; empty counts as
/// unset), then [`DatasetKind::workspace_subdir`] under `workspace_root`, then
/// [`DatasetKind::system_dirs`].
///
/// A pure function of its arguments, so the order can be tested without touching the process'
/// environment.
pub fn search_dirs(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    env_value: Option<&OsStr>,
    workspace_root: &Path,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    dirs.extend(data_dir.map(Path::to_path_buf));
    dirs.extend(env_value.filter(|v| !v.is_empty()).map(PathBuf::from));
    dirs.push(workspace_root.join(kind.workspace_subdir()));
    dirs.extend(kind.system_dirs().iter().map(PathBuf::from));
    dirs
}

/// The first of `dirs` that holds all four files.
pub fn find_first(dirs: &[PathBuf]) -> Option<DatasetFiles> {
    dirs.iter().find_map(|dir| DatasetFiles::find_in(dir))
}

/// The workspace root: the nearest folder at or above the current directory whose `Cargo.toml`
/// has a `[workspace]` table, else the current directory (so a program run outside a Cargo
/// workspace keeps its data beside it).
pub fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_workspace_root(&cwd).unwrap_or(cwd)
}

/// The nearest folder at or above `start` whose `Cargo.toml` has a `[workspace]` table.
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|dir| is_workspace_manifest(&dir.join("Cargo.toml"))).map(Path::to_path_buf)
}

fn is_workspace_manifest(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
}

/// Finds the files for `options` (see [`search_dirs`]), downloading them into the workspace folder
/// when none is found and `options.download` is set.
pub fn locate(options: &LoadOptions) -> Result<DatasetFiles, DatasetError> {
    let kind = options.dataset;
    let root = workspace_root();
    let env_value = std::env::var_os(kind.env_var());
    let dirs = search_dirs(kind, options.data_dir.as_deref(), env_value.as_deref(), &root);
    if let Some(files) = find_first(&dirs) {
        return Ok(files);
    }
    let default_dir = root.join(kind.workspace_subdir());
    if options.download {
        download::download(kind, &default_dir)
    } else {
        Err(DatasetError::NotFound {
            dataset: kind.name(),
            searched: dirs,
            default_dir,
            files: FILE_STEMS.iter().map(|stem| format!("{stem}.gz")).collect(),
            env_var: kind.env_var(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch_all(dir: &Path, gz: bool) {
        for stem in FILE_STEMS {
            let name = if gz { format!("{stem}.gz") } else { stem.to_string() };
            std::fs::write(dir.join(name), b"").unwrap();
        }
    }

    #[test]
    fn search_order_is_flag_then_env_then_workspace() {
        let root = Path::new("/ws");
        let dirs = search_dirs(DatasetKind::Mnist, Some(Path::new("/flag")), Some(OsStr::new("/env")), root);
        assert_eq!(dirs, [PathBuf::from("/flag"), "/env".into(), "/ws/data/mnist".into()]);

        let dirs = search_dirs(DatasetKind::Mnist, None, Some(OsStr::new("")), root);
        assert_eq!(dirs, [PathBuf::from("/ws/data/mnist")], "an empty variable counts as unset");

        let dirs = search_dirs(DatasetKind::Fashion, None, Some(OsStr::new("/f")), root);
        assert_eq!(
            dirs,
            [
                PathBuf::from("/f"),
                "/ws/data/fashion-mnist".into(),
                "/usr/share/datasets/fashion-mnist".into()
            ]
        );
    }

    #[test]
    fn explicit_dir_beats_env_dir_which_beats_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let (flag, env, ws) = (tmp.path().join("flag"), tmp.path().join("env"), tmp.path().join("ws"));
        let ws_data = ws.join("data/mnist");
        for dir in [&flag, &env, &ws_data] {
            std::fs::create_dir_all(dir).unwrap();
            touch_all(dir, true);
        }
        let find = |flag: Option<&Path>, env: Option<&Path>| {
            find_first(&search_dirs(DatasetKind::Mnist, flag, env.map(Path::as_os_str), &ws)).unwrap()
        };
        assert_eq!(find(Some(&flag), Some(&env)).train_images, flag.join("train-images-idx3-ubyte.gz"));
        assert_eq!(find(None, Some(&env)).train_images, env.join("train-images-idx3-ubyte.gz"));
        assert_eq!(find(None, None).train_images, ws_data.join("train-images-idx3-ubyte.gz"));

        // A folder missing one file is skipped for the next one.
        std::fs::remove_file(flag.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(find(Some(&flag), Some(&env)).train_images, env.join("train-images-idx3-ubyte.gz"));
    }

    #[test]
    fn finds_raw_and_gz_names_preferring_raw() {
        let tmp = tempfile::tempdir().unwrap();
        touch_all(tmp.path(), true);
        std::fs::write(tmp.path().join("train-labels-idx1-ubyte"), b"").unwrap();
        let files = DatasetFiles::find_in(tmp.path()).unwrap();
        assert_eq!(files.train_labels, tmp.path().join("train-labels-idx1-ubyte"));
        assert_eq!(files.test_images, tmp.path().join("t10k-images-idx3-ubyte.gz"));
        assert!(DatasetFiles::find_in(&tmp.path().join("missing")).is_none());
    }

    #[test]
    fn workspace_root_is_the_folder_with_a_workspace_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let member = tmp.path().join("crates/member/src");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(tmp.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(tmp.path().join("crates/member/Cargo.toml"), "[package]\nname = \"m\"\n").unwrap();
        assert_eq!(find_workspace_root(&member).as_deref(), Some(tmp.path()));
    }

    #[test]
    fn not_found_error_says_where_to_put_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let options =
            LoadOptions { data_dir: Some(tmp.path().join("nowhere")), download: false, ..Default::default() };
        // The workspace's data/mnist may hold real files on a developer's machine; only check the
        // message when nothing is found.
        if let Err(err) = locate(&options) {
            let msg = err.to_string();
            assert!(matches!(err, DatasetError::NotFound { .. }), "{msg}");
            assert!(msg.contains("nowhere") && msg.contains("MNIST_DIR") && msg.contains("--data"), "{msg}");
            assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
        }
    }
}
