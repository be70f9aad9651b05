//! The same seed trains bit-identical weights on the CPU backend whatever the number of rayon
//! threads: every reduction sums in an order fixed by the shapes, not by the thread count.

mod synthetic;

use nn::{FitOptions, Loss, Metric, Sgd};
use synthetic::{conv_net, images, weight_bits};

/// Trains the synthetic conv net for 2 epochs of 4 steps inside a rayon pool of `threads`
/// threads; returns the weights' bits and the history's loss bits.
fn train_with_threads(threads: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        assert_eq!(rayon::current_num_threads(), threads);
        let (x, y) = images(256);
        let mut model = conv_net(5);
        model
            .compile(Loss::SparseCategoricalCrossentropy, Sgd::new(0.05).momentum(0.9), &[Metric::Accuracy])
            .unwrap();
        let options = FitOptions::new().epochs(2).batch_size(64).verbose(0).seed(11);
        let history = model.fit(&x, &y, &options).unwrap();
        let losses = history.get("loss").unwrap().iter().map(|l| l.to_bits()).collect();
        (weight_bits(&model), losses)
    })
}

#[test]
fn same_seed_same_bits_for_1_2_and_3_threads() {
    let (one, one_losses) = train_with_threads(1);
    // The run must have trained: the weights moved away from their initial values.
    assert_ne!(one, weight_bits(&conv_net(5)));
    for threads in [2, 3] {
        let (many, losses) = train_with_threads(threads);
        assert_eq!(losses, one_losses, "epoch losses with {threads} threads");
        for (layer, (a, b)) in one.iter().zip(&many).enumerate() {
            let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differing,
                0,
                "variable {layer}: {differing} of {} values differ with {threads} threads",
                a.len()
            );
        }
    }
}
