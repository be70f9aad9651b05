//! Data-parallel training (`nn::distributed`) with ranks as threads of this process: the
//! same `fit` loop MPI ranks run, checked against a single process's numbers (`buckets.rs`:
//! the gradient buckets against one fused all-reduce). (The MPI transport itself is tested with
//! `mpirun` in xtask's tests.)

mod buckets;
mod threads;

use std::sync::{Arc, Mutex};

use nn::callbacks::{Callback, CallbackContext, SharedCallback};
use nn::distributed::Communicator;
use nn::layers::{BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D};
use nn::training::Logs;
use nn::{Activation, Array, Error, FitOptions, Loss, Metric, Model, Sequential, Sgd};
use threads::ThreadGroup;

/// Eight classes of 8x8 images: a bright 2x2 square at a class's place, plus noise.
fn data(n: usize, seed: u64) -> (Array, Array) {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut x = Vec::with_capacity(n * 64);
    let mut y = vec![0.0; n * 8];
    for i in 0..n {
        let class = (i * 5 + 3) % 8;
        let (row, col) = (2 * (class / 4) + 1, 2 * (class % 4));
        for p in 0..64 {
            let on = (p / 8 == row || p / 8 == row + 1) && (p % 8 == col || p % 8 == col + 1);
            x.push(if on { 1.0 } else { 0.0 } + 0.3 * noise());
        }
        y[i * 8 + class] = 1.0;
    }
    (Array::new(x, [n, 8, 8, 1]).unwrap(), Array::new(y, [n, 8]).unwrap())
}

/// A small model4: a convolution, pooling, two dense layers; optionally BatchNormalization.
fn model(seed: u64, batch_norm: bool) -> Model {
    let mut m = Sequential::new().seed(seed);
    m.add(Conv2D::new(6, (3, 3)).activation(Activation::Relu).input_shape([8, 8, 1])).unwrap();
    if batch_norm {
        m.add(BatchNormalization::new()).unwrap();
    }
    m.add(MaxPooling2D::new()).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(16).activation(Activation::Tanh)).unwrap();
    m.add(Dense::new(8).activation(Activation::Softmax)).unwrap();
    let mut model = m.into_model().unwrap();
    model.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy, Metric::Auc]).unwrap();
    model
}

struct Run {
    weights: Vec<Array>,
    history: nn::History,
    scores: Logs,
}

/// Trains `model(seed)` for 2 epochs of 100 samples (batches of 32, the last of 4) with
/// validation, then evaluates; with `communicator`, as one of its ranks.
fn train(
    communicator: Option<Arc<dyn Communicator>>,
    seed: u64,
    batch_norm: bool,
    callback: Option<SharedCallback>,
) -> nn::Result<Run> {
    train_with_buckets(communicator, None, seed, batch_norm, callback)
}

/// [`train`] with gradient buckets of `bucket_bytes` (`None`: the default size).
fn train_with_buckets(
    communicator: Option<Arc<dyn Communicator>>,
    bucket_bytes: Option<usize>,
    seed: u64,
    batch_norm: bool,
    callback: Option<SharedCallback>,
) -> nn::Result<Run> {
    let mut model = model(seed, batch_norm);
    match (communicator, bucket_bytes) {
        (Some(c), Some(bytes)) => model.distribute_with_buckets(c, bytes),
        (Some(c), None) => model.distribute(c),
        (None, _) => {}
    }
    let (x, y) = data(100, 1);
    let (vx, vy) = data(70, 2);
    let mut options =
        FitOptions::new().epochs(2).batch_size(32).seed(7).verbose(0).validation_data(vx.clone(), vy.clone());
    if let Some(c) = callback {
        options = options.shared_callback(c);
    }
    let history = model.fit(&x, &y, &options)?;
    let scores = model.evaluate(&vx, &vy, 16)?;
    Ok(Run { weights: model.get_weights()?, history, scores })
}

/// Each rank's run, the rank's seed `1 + rank` (rank 0's weights are broadcast).
fn train_ranks(
    size: usize,
    batch_norm: bool,
    callback: impl Fn(usize) -> Option<SharedCallback> + Sync,
) -> Vec<nn::Result<Run>> {
    let ranks = ThreadGroup::ranks(size);
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, c)| {
                let callback = &callback;
                s.spawn(move || train(Some(c), 1 + r as u64, batch_norm, callback(r)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Largest difference between two weight lists, relative to the largest weight.
fn relative_gap(a: &[Array], b: &[Array]) -> f32 {
    let scale = b.iter().flat_map(|w| w.data()).fold(0f32, |m, v| m.max(v.abs()));
    let gap = a
        .iter()
        .zip(b)
        .flat_map(|(a, b)| a.data().iter().zip(b.data()))
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    gap / scale
}

#[test]
fn two_and_three_ranks_train_the_single_process_weights() {
    let single = train(None, 1, false, None).unwrap();
    for size in [2, 3] {
        let runs: Vec<Run> = train_ranks(size, false, |_| None).into_iter().map(Result::unwrap).collect();
        for (r, run) in runs.iter().enumerate() {
            // Every rank holds the same model, bit for bit.
            for (a, b) in run.weights.iter().zip(&runs[0].weights) {
                assert_eq!(a.data(), b.data(), "{size} ranks: rank {r}'s weights differ from rank 0's");
            }
            assert_eq!(run.history.history, runs[0].history.history, "{size} ranks: rank {r}'s history");
        }
        let gap = relative_gap(&runs[0].weights, &single.weights);
        assert!(gap < 1e-4, "{size} ranks: weights {gap:e} (relative) from the single process's");
        assert!(
            gap > 0.0 || size == 2,
            "3 ranks round the shares' sum differently, or the test is not distributed"
        );
        for (key, values) in &single.history.history {
            let got = &runs[0].history.history[key];
            for (g, w) in got.iter().zip(values) {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{size} ranks: {key} {got:?} vs {values:?}"
                );
            }
        }
        for (key, want) in &single.scores {
            let got = runs[0].scores[key];
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{size} ranks: evaluate {key} {got} vs {want}"
            );
        }
    }
}

/// Fails in `on_train_batch_begin` of the third batch.
struct FailAtThirdBatch;

impl Callback for FailAtThirdBatch {
    fn on_train_batch_begin(&mut self, batch: usize, _ctx: &mut CallbackContext<'_>) -> nn::Result<()> {
        if batch == 2 {
            return Err(Error::Data("injected fault".into()));
        }
        Ok(())
    }
}

#[test]
fn a_failing_rank_stops_every_rank_with_an_error() {
    let runs =
        train_ranks(3, false, |r| (r == 1).then(|| Arc::new(Mutex::new(FailAtThirdBatch)) as SharedCallback));
    let errors: Vec<String> =
        runs.into_iter().map(|r| r.err().expect("every rank fails").to_string()).collect();
    assert!(errors[1].contains("injected fault"), "the failed rank keeps its error: {}", errors[1]);
    for r in [0, 2] {
        assert!(
            errors[r].contains("rank 1 failed in batch 3 of epoch 1"),
            "rank {r} names the failed rank and step: {}",
            errors[r]
        );
    }
}

/// Asks to stop after the first epoch, on one rank only.
struct StopAfterFirstEpoch;

impl Callback for StopAfterFirstEpoch {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        ctx: &mut CallbackContext<'_>,
    ) -> nn::Result<()> {
        ctx.stop_training();
        Ok(())
    }
}

#[test]
fn a_stop_on_one_rank_stops_all_together() {
    let runs = train_ranks(2, false, |r| {
        (r == 1).then(|| Arc::new(Mutex::new(StopAfterFirstEpoch)) as SharedCallback)
    });
    for run in runs {
        assert_eq!(run.unwrap().history.get("loss").unwrap().len(), 1, "every rank stops after epoch 1");
    }
}

#[test]
fn batch_normalization_statistics_stay_the_same_on_every_rank() {
    let runs: Vec<Run> = train_ranks(2, true, |_| None).into_iter().map(Result::unwrap).collect();
    for (a, b) in runs[1].weights.iter().zip(&runs[0].weights) {
        assert_eq!(a.data(), b.data(), "rank 1's weights (moving statistics included) differ from rank 0's");
    }
}

/// BatchNormalization's moving mean after one step of the whole batch (a learning rate too
/// small to move the weights): each rank's share moves it by its own mean, and the average of
/// those is the batch's mean, as in one process. (The moving variance misses the spread
/// between the shares' means, as Keras' MirroredStrategy without SyncBatchNormalization does.)
fn moving_statistics_after_one_step(communicator: Option<Arc<dyn Communicator>>) -> (Vec<f32>, Vec<f32>) {
    let mut model = model(1, true);
    model.compile(Loss::CategoricalCrossentropy, Sgd::new(1e-9), &[]).unwrap();
    if let Some(c) = communicator {
        model.distribute(c);
    }
    let (x, y) = data(64, 3);
    model.fit(&x, &y, &FitOptions::new().epochs(1).batch_size(64).seed(7).verbose(0)).unwrap();
    let weights = model.get_weights().unwrap();
    // Conv2D kernel and bias, then gamma, beta, moving mean, moving variance.
    (weights[4].data().to_vec(), weights[5].data().to_vec())
}

#[test]
fn the_moving_mean_averages_the_shares_into_the_batch_mean() {
    let (mean, variance) = moving_statistics_after_one_step(None);
    let ranks = ThreadGroup::ranks(2);
    let per_rank: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            ranks.into_iter().map(|c| s.spawn(move || moving_statistics_after_one_step(Some(c)))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (got_mean, got_variance) = &per_rank[0];
    assert_eq!(per_rank[1], per_rank[0], "both ranks hold the same statistics");
    for (g, w) in got_mean.iter().zip(&mean) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "moving mean {got_mean:?} vs {mean:?}");
    }
    // Less than the batch's by the spread of the shares' means, and never more.
    for (g, w) in got_variance.iter().zip(&variance) {
        assert!(*g <= w + 1e-6 && *g > 0.9 * w, "moving variance {got_variance:?} vs {variance:?}");
    }
}
