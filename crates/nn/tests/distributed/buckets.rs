//! The gradient buckets: whatever their size, every rank ends with the bits of one fused
//! all-reduce after the backward pass, the buckets are started during the pass, and a rank
//! that fails halfway through it still ends every rank with an error.

use std::sync::Arc;

use nn::distributed::Communicator;

use super::threads::{ThreadGroup, ThreadRank};
use super::{train_with_buckets, Run};

/// Each rank's run with buckets of `bucket_bytes`, and its communicator.
fn train_ranks_with_buckets(
    ranks: Vec<Arc<ThreadRank>>,
    bucket_bytes: usize,
    batch_norm: bool,
) -> Vec<(nn::Result<Run>, Arc<ThreadRank>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, c)| {
                s.spawn(move || {
                    let comm = c.clone() as Arc<dyn Communicator>;
                    (train_with_buckets(Some(comm), Some(bucket_bytes), 1 + r as u64, batch_norm, None), c)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The test model's variables, last first (as backward finishes them), in floats: Dense(8)'s
/// bias and kernel, Dense(16)'s, Conv2D's; then, with BatchNormalization after the
/// convolution, its beta and gamma before Conv2D's. The step's head adds 3 values and the
/// moving statistics (2 x 6 with BatchNormalization).
fn expected_reductions(bucket_bytes: usize, batch_norm: bool) -> Vec<usize> {
    let mut floats = vec![8, 128, 16, 864];
    if batch_norm {
        floats.extend([6, 6]);
    }
    floats.extend([6, 54]);
    let mut buckets: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for f in floats {
        match buckets.last_mut() {
            Some(b) if bytes + 4 * f <= bucket_bytes => {
                *b += f;
                bytes += 4 * f;
            }
            _ => {
                buckets.push(f);
                bytes = 4 * f;
            }
        }
    }
    *buckets.last_mut().unwrap() += 3 + if batch_norm { 12 } else { 0 };
    buckets
}

#[test]
fn bucket_sizes_follow_the_cap() {
    assert_eq!(expected_reductions(usize::MAX, false), vec![1076 + 3]);
    assert_eq!(expected_reductions(0, false), vec![8, 128, 16, 864, 6, 54 + 3]);
    // 608 bytes, then 3456, then 240.
    assert_eq!(expected_reductions(1024, false), vec![152, 864, 60 + 3]);
}

#[test]
fn buckets_of_any_size_train_the_bits_of_one_fused_all_reduce() {
    // 8 steps: 2 epochs of 4 batches.
    let steps = 8;
    for batch_norm in [false, true] {
        for size in [2, 3] {
            let fused: Vec<Run> =
                train_ranks_with_buckets(ThreadGroup::counted(size, false, |_| None), usize::MAX, batch_norm)
                    .into_iter()
                    .map(|(run, c)| {
                        assert_eq!(
                            *c.started.lock().unwrap(),
                            vec![expected_reductions(usize::MAX, batch_norm)[0]; steps]
                        );
                        run.unwrap()
                    })
                    .collect();
            for bucket_bytes in [0, 100, 1024, 4096] {
                for deferred in [false, true] {
                    let runs = train_ranks_with_buckets(
                        ThreadGroup::counted(size, deferred, |_| None),
                        bucket_bytes,
                        batch_norm,
                    );
                    let expected = expected_reductions(bucket_bytes, batch_norm);
                    assert!(expected.len() > 1 || bucket_bytes == 4096, "{expected:?}");
                    for (r, (run, comm)) in runs.into_iter().enumerate() {
                        let case = format!("{size} ranks, rank {r}, {bucket_bytes}-byte buckets, deferred {deferred}, batch norm {batch_norm}");
                        let run = run.unwrap_or_else(|e| panic!("{case}: {e}"));
                        let started = comm.started.lock().unwrap();
                        assert_eq!(started.len(), steps * expected.len(), "{case}: {started:?}");
                        for step in started.chunks(expected.len()) {
                            assert_eq!(step, expected, "{case}: the buckets' lengths, in order");
                        }
                        for (i, (a, b)) in run.weights.iter().zip(&fused[r].weights).enumerate() {
                            assert_eq!(
                                a.data(),
                                b.data(),
                                "{case}: weight {i} differs from the fused exchange's"
                            );
                        }
                        assert_eq!(run.history.history, fused[r].history.history, "{case}: history");
                    }
                }
            }
        }
    }
}

#[test]
fn a_rank_failing_halfway_through_backward_stops_every_rank_with_an_error() {
    // One bucket per variable: 6 reductions a step. Rank 1 fails at the second reduction of
    // the third step, with one bucket summed and four still to start.
    for deferred in [false, true] {
        let ranks = ThreadGroup::counted(3, deferred, |r| (r == 1).then_some(2 * 6 + 2));
        let runs = train_ranks_with_buckets(ranks, 0, false);
        let errors: Vec<String> =
            runs.iter().map(|(run, _)| run.as_ref().err().expect("every rank fails").to_string()).collect();
        assert!(
            errors[1].contains("injected fault at reduction 14"),
            "the failed rank keeps its error: {}",
            errors[1]
        );
        for r in [0, 2] {
            assert!(errors[r].contains("rank 1 failed in batch 3 of epoch 1"), "rank {r}: {}", errors[r]);
        }
        for (r, (_, comm)) in runs.iter().enumerate() {
            // Every rank took part in all 6 of the step's reductions, the failed one included.
            assert_eq!(comm.started.lock().unwrap().len(), 3 * 6, "rank {r}, deferred {deferred}");
        }
    }
}

/// Sets the weights (to themselves, halved) before every batch, as a callback restoring or
/// averaging weights would: the step's buckets must follow the new variables.
struct HalveWeightsBeforeEachBatch;

impl nn::callbacks::Callback for HalveWeightsBeforeEachBatch {
    fn on_train_batch_begin(
        &mut self,
        _batch: usize,
        ctx: &mut nn::callbacks::CallbackContext<'_>,
    ) -> nn::Result<()> {
        let model = ctx.model_mut();
        let halved: Vec<nn::Array> = model.get_weights()?.into_iter().map(|w| w.map(|v| v * 0.5)).collect();
        model.set_weights(&halved)
    }
}

#[test]
fn weights_set_by_a_callback_before_the_batch_are_the_ones_summed() {
    let callback = || {
        Some(Arc::new(std::sync::Mutex::new(HalveWeightsBeforeEachBatch)) as nn::callbacks::SharedCallback)
    };
    let single = super::train(None, 1, false, callback()).unwrap();
    let ranks = ThreadGroup::ranks(2);
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = ranks
            .into_iter()
            .enumerate()
            .map(|(r, c)| {
                s.spawn(move || train_with_buckets(Some(c), Some(0), 1 + r as u64, false, callback()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    let gap = super::relative_gap(&runs[0].weights, &single.weights);
    assert!(gap < 1e-4, "weights {gap:e} (relative) from the single process's");
    for (a, b) in runs[1].weights.iter().zip(&runs[0].weights) {
        assert_eq!(a.data(), b.data(), "rank 1's weights differ from rank 0's");
    }
}
