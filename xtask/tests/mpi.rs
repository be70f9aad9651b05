//! `train-mnist --distributed` under `mpirun`: 2 and 3 ranks train model4 to a single process's
//! weights, resume a checkpoint with another number of ranks, and stop together on a fault;
//! gradient buckets of any size train the bits of one fused all-reduce.
//! Needs the `mpi` feature, Open MPI's `mpirun` and MNIST (`MNIST_DIR`, else
//! `../shared/data/mnist`); `.ci/run` runs it as
//! `cargo test --release -p xtask --features mpi --test mpi`.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn data_dir() -> String {
    std::env::var("MNIST_DIR").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist").display().to_string()
    })
}

/// `xtask train-mnist` with `args`, as one process or under `mpirun -np ranks`; fails the test
/// if it runs longer than `limit`.
fn train(ranks: Option<usize>, args: &[&str], limit: Duration) -> (Output, Duration) {
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let data = data_dir();
    let mut train_args =
        vec!["train-mnist", "--model", "model4", "--normalize", "--verbose", "0", "--seed", "1"];
    train_args.extend(["--data", &data]);
    train_args.extend(args);
    let mut command = match ranks {
        None => Command::new(xtask),
        Some(n) => {
            let mut c = Command::new("mpirun");
            c.args(["--oversubscribe", "-np", &n.to_string(), xtask]);
            train_args.push("--distributed");
            c
        }
    };
    // One thread per rank: the ranks share this machine's cores.
    command.args(&train_args).env("RAYON_NUM_THREADS", "1");
    command.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    let start = Instant::now();
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start xtask or mpirun");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{ranks:?} ranks ran past {limit:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}

fn train_ok(ranks: Option<usize>, args: &[&str]) {
    let (out, _) = train(ranks, args, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "{ranks:?} ranks failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The weights in `path`, loaded into model4.
fn weights(path: &Path) -> Vec<nn::Array> {
    let mut model = nn::zoo::model4(&nn::device::cpu(), 0).unwrap();
    model.load_weights(path).unwrap();
    model.get_weights().unwrap()
}

/// How far weights `a` are from `b`: the relative L2 difference of all of them together
/// (`|a - b| / |b|`), and of the tensor that differs most. Both are printed, with each tensor's.
fn relative_gaps(a: &[nn::Array], b: &[nn::Array]) -> (f64, f64) {
    let squares = |v: &mut dyn Iterator<Item = f32>| v.map(|x| (x as f64).powi(2)).sum::<f64>();
    let (mut diff_total, mut norm_total, mut worst) = (0.0, 0.0, 0f64);
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let diff = squares(&mut a.data().iter().zip(b.data()).map(|(x, y)| x - y));
        let norm = squares(&mut b.data().iter().copied());
        let relative = (diff / norm.max(f64::MIN_POSITIVE)).sqrt();
        eprintln!("  weight {i} ({:?}): relative L2 difference {relative:.2e}", b.dims());
        worst = worst.max(relative);
        diff_total += diff;
        norm_total += norm;
    }
    let total = (diff_total / norm_total).sqrt();
    eprintln!("  all weights: relative L2 difference {total:.2e}; worst tensor {worst:.2e}");
    (total, worst)
}

/// The weights within 1e-4 (relative L2) of `b` as a whole. A single tensor may differ more:
/// the first convolution's small bias drifts to about 4e-4, the shares' sums rounding
/// differently from the whole batch's and the difference growing over the epoch's steps where
/// it moves a ReLU's or a max pooling's choice; 1e-3 bounds it.
fn assert_close(a: &[nn::Array], b: &[nn::Array], what: &str) {
    let (total, worst) = relative_gaps(a, b);
    assert!(total <= 1e-4, "{what}: weights {total:e} (relative L2) from the single process's");
    assert!(worst <= 1e-3, "{what}: a weight tensor {worst:e} (relative L2) from the single process's");
}

fn test_accuracy(report: &Path) -> f64 {
    let text = std::fs::read_to_string(report).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["test_accuracy"].as_f64().unwrap()
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn two_and_three_ranks_train_a_single_process_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| file(dir.path(), name).display().to_string();
    let run = |ranks: Option<usize>, tag: &str, extra: &[&str]| {
        let (w, r) = (path(&format!("{tag}.weights")), path(&format!("{tag}.json")));
        let mut args = vec!["--save-weights", &w, "--report", &r];
        args.extend(extra);
        train_ok(ranks, &args);
    };
    run(None, "single", &["--epochs", "1"]);
    let single = weights(&file(dir.path(), "single.weights"));
    let single_accuracy = test_accuracy(&file(dir.path(), "single.json"));
    for ranks in [2, 3] {
        let tag = format!("ranks{ranks}");
        run(Some(ranks), &tag, &["--epochs", "1"]);
        eprintln!("{ranks} ranks against one process:");
        assert_close(
            &weights(&file(dir.path(), &format!("{tag}.weights"))),
            &single,
            &format!("{ranks} ranks"),
        );
        let report = file(dir.path(), &format!("{tag}.json"));
        let accuracy = test_accuracy(&report);
        assert!(
            (accuracy - single_accuracy).abs() <= 0.001,
            "{ranks} ranks: test accuracy {accuracy} vs the single process's {single_accuracy}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["ranks"], ranks, "the report counts the ranks");
    }

    // A checkpoint written by 2 ranks resumes on 3 as an uninterrupted run would continue.
    let checkpoint = path("checkpoint.safetensors");
    train_ok(Some(2), &["--epochs", "1", "--checkpoint", &checkpoint]);
    run(Some(3), "resumed", &["--epochs", "2", "--resume", &checkpoint]);
    run(None, "straight", &["--epochs", "2"]);
    eprintln!("2 ranks, then resumed on 3, against 2 epochs in one process:");
    assert_close(
        &weights(&file(dir.path(), "resumed.weights")),
        &weights(&file(dir.path(), "straight.weights")),
        "resumed on 3 ranks",
    );
}

#[test]
fn a_rank_failing_in_its_third_step_stops_the_job_within_seconds() {
    // The default buckets, and one per variable (model4: 6 all-reduces a step).
    for buckets in ["1024", "0"] {
        let args = ["--epochs", "1", "--fail-at", "1:3", "--bucket-kb", buckets];
        let (out, took) = train(Some(3), &args, Duration::from_secs(120));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "mpirun must exit non-zero: {stderr}");
        assert!(
            stderr.contains("injected fault (--fail-at) on rank 1 at step 3"),
            "the rank's error is printed: {stderr}"
        );
        // Loading MNIST takes most of it; the stop itself is immediate.
        assert!(took < Duration::from_secs(60), "{buckets} KiB buckets: stopped after {took:?}");
    }
}

#[test]
fn gradient_buckets_of_any_size_train_the_bits_of_one_fused_all_reduce() {
    let dir = tempfile::tempdir().unwrap();
    let run = |buckets: &str| {
        let path = file(dir.path(), &format!("buckets-{buckets}.weights"));
        let w = path.display().to_string();
        train_ok(Some(2), &["--epochs", "1", "--save-weights", &w, "--bucket-kb", buckets]);
        weights(&path)
    };
    let fused = run("fused");
    // One bucket per variable (6 all-reduces a step); model4's 1.15 MB dense kernel alone with
    // the default 1 MiB (3).
    for buckets in ["0", "1024"] {
        for (i, (a, b)) in run(buckets).iter().zip(&fused).enumerate() {
            assert_eq!(a.data(), b.data(), "{buckets} KiB buckets: weight {i} differs from the fused run's");
        }
    }
}
