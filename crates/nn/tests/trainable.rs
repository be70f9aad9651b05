//! `trainable = false` on a layer, as Keras: `fit` leaves its weights as they are, the summary
//! counts them as non-trainable, and a checkpoint of a partly frozen model resumes exactly.

mod synthetic;

use nn::callbacks::ModelCheckpoint;
use nn::{FitOptions, Loss, Metric, Model, Sgd};
use synthetic::{conv_net, conv_net_functional, images, model_bits};

fn weights(model: &Model, layer: &str) -> Vec<Vec<u32>> {
    let w = model.get_layer(layer).unwrap().get_weights().unwrap();
    w.iter().map(|a| a.data().iter().map(|v| v.to_bits()).collect()).collect()
}

fn compile(model: &mut Model) {
    model
        .compile(Loss::SparseCategoricalCrossentropy, Sgd::new(0.05).momentum(0.9), &[Metric::Accuracy])
        .unwrap();
}

#[test]
fn a_frozen_layer_keeps_its_weights_and_counts_as_non_trainable() {
    let (x, y) = images(64);
    for mut model in [conv_net(2).into_model().unwrap(), conv_net_functional(2)] {
        compile(&mut model);
        assert_eq!(model.count_params(), 37_892);
        let frozen = model.get_layer("conv2d_2").unwrap();
        frozen.set_trainable(false);
        assert!(!frozen.trainable());
        let (conv2, dense1) = (weights(&model, "conv2d_2"), weights(&model, "dense_1"));
        let summary = model.summary().unwrap();
        // conv2d_2 holds 3 * 3 * 16 * 32 + 32 = 4,640 of the 37,892.
        let counts = "Total params: 37,892\nTrainable params: 33,252\nNon-trainable params: 4,640";
        assert!(summary.contains(counts), "{summary}");
        assert_eq!(model.trainable_variables().len(), model.variables().len() - 2);

        let options = FitOptions::new().epochs(2).batch_size(16).verbose(0);
        model.fit(&x, &y, &options).unwrap();
        assert_eq!(
            weights(&model, "conv2d_2"),
            conv2,
            "{}: the frozen layer did not move",
            model.class_name()
        );
        assert_ne!(weights(&model, "dense_1"), dense1, "the others trained");

        // Unfrozen, it trains again.
        frozen.set_trainable(true);
        model.fit(&x, &y, &options.epochs(3).initial_epoch(2)).unwrap();
        assert_ne!(weights(&model, "conv2d_2"), conv2);
        assert!(model.summary().unwrap().contains("Non-trainable params: 0"));
    }
}

#[test]
fn a_partly_frozen_model_resumes_bit_identically() {
    let (x, y) = images(64);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ckpt.safetensors");
    let frozen = |model: Model| {
        model.get_layer("dense_1").unwrap().set_trainable(false);
        model
    };
    let options = FitOptions::new().batch_size(16).verbose(0).seed(4);
    let mut straight = frozen(conv_net_functional(6));
    compile(&mut straight);
    straight.fit(&x, &y, &options.clone().epochs(2)).unwrap();

    let mut first = frozen(conv_net_functional(6));
    compile(&mut first);
    first
        .fit(&x, &y, &options.clone().epochs(1).checkpoint(ModelCheckpoint::new(path.to_str().unwrap())))
        .unwrap();
    let mut resumed = Model::load(&path).unwrap();
    assert!(!resumed.get_layer("dense_1").unwrap().trainable());
    resumed.fit(&x, &y, &options.epochs(2).initial_epoch(1)).unwrap();
    assert_eq!(model_bits(&resumed), model_bits(&straight));
}
