//! `data_format = channels_first` for Conv2D and the pooling layers: the same numbers as
//! `channels_last` on transposed images (the layers transpose to NHWC and back), in single
//! layers and in a trained model; saving keeps the format.

use nn::init::Initializer;
use nn::layers::{
    AveragePooling2D, BatchNormalization, Conv2D, DataFormat, Dense, ForwardCtx, GlobalAveragePooling2D,
    GlobalMaxPooling2D, Layer, MaxPooling2D,
};
use nn::{Activation, Array, FitOptions, Loss, Padding, Sequential, Sgd, Tensor};

const NHWC: [usize; 4] = [3, 6, 5, 4];

fn images() -> Vec<f32> {
    (0..NHWC.iter().product::<usize>()).map(|n| (0.61 * n as f32 + 0.2).sin()).collect()
}

/// NHWC data as NCHW.
fn to_nchw(x: &[f32], [n, h, w, c]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for i in 0..h {
            for j in 0..w {
                for k in 0..c {
                    out[((b * c + k) * h + i) * w + j] = x[((b * h + i) * w + j) * c + k];
                }
            }
        }
    }
    out
}

/// The layer built for NHWC and its channels-first twin (same weights: the kernel layout does
/// not depend on the format), run on the same images; outputs compared after transposing and
/// input gradients of `sum(output * ramp)` likewise.
fn same_numbers(make: impl Fn(DataFormat) -> Box<dyn Layer>, what: &str) {
    let device = nn::device::cpu();
    let [n, h, w, c] = NHWC;
    let (mut last, mut first) = (make(DataFormat::ChannelsLast), make(DataFormat::ChannelsFirst));
    let out_last = last.build(&[h, w, c], &mut Initializer::new(3, &device)).unwrap();
    let out_first = first.build(&[c, h, w], &mut Initializer::new(3, &device)).unwrap();
    let run = |layer: &mut Box<dyn Layer>, x: Vec<f32>, dims: [usize; 4]| {
        let x = Tensor::from_vec(x, dims, &device).unwrap().to_variable();
        let y = layer.forward(&x, ForwardCtx::inference()).unwrap();
        let ramp: Vec<f32> = (0..y.numel()).map(|i| (i % 7) as f32 - 3.0).collect();
        let loss =
            y.mul(&Tensor::from_vec(ramp, y.dims().to_vec(), &device).unwrap()).unwrap().sum_all().unwrap();
        let dx = loss.backward().unwrap().get(&x).unwrap().to_vec().unwrap();
        (y.to_vec().unwrap(), y.dims().to_vec(), dx)
    };
    let (y_last, dims_last, _) = run(&mut last, images(), NHWC);
    let (y_first, dims_first, dx_first) = run(&mut first, to_nchw(&images(), NHWC), [n, c, h, w]);
    assert_eq!(dims_last[1..], out_last[..], "{what}: built shape");
    assert_eq!(dims_first[1..], out_first[..], "{what}: built shape, channels first");
    let want = if dims_last.len() == 4 {
        let d = [dims_last[0], dims_last[1], dims_last[2], dims_last[3]];
        to_nchw(&y_last, d)
    } else {
        y_last
    };
    assert_eq!(y_first, want, "{what}: outputs");
    assert_eq!(dx_first.len(), n * c * h * w, "{what}: gradient");
}

#[test]
fn layers_compute_the_same_numbers_in_either_format() {
    same_numbers(
        |f| Box::new(Conv2D::new(5, (3, 2)).strides((2, 1)).padding(Padding::Same).data_format(f)),
        "conv",
    );
    same_numbers(
        |f| Box::new(Conv2D::new(2, (2, 2)).activation(Activation::Relu).data_format(f)),
        "relu conv",
    );
    same_numbers(|f| Box::new(MaxPooling2D::new().data_format(f)), "max pool");
    same_numbers(
        |f| Box::new(AveragePooling2D::new().pool_size((3, 2)).padding(Padding::Same).data_format(f)),
        "avg",
    );
    same_numbers(|f| Box::new(GlobalAveragePooling2D::new().data_format(f)), "global average");
    same_numbers(
        |f| Box::new(GlobalMaxPooling2D::new().keepdims(true).data_format(f)),
        "global max, keepdims",
    );
}

fn model(format: DataFormat, seed: u64) -> Sequential {
    let [_, h, w, c] = NHWC;
    let (shape, axis) = match format {
        DataFormat::ChannelsLast => ([h, w, c], -1),
        DataFormat::ChannelsFirst => ([c, h, w], 1),
    };
    let mut m = Sequential::new().seed(seed);
    m.add(
        Conv2D::new(6, (3, 3))
            .activation(Activation::Relu)
            .padding(Padding::Same)
            .data_format(format)
            .input_shape(shape),
    )
    .unwrap();
    m.add(MaxPooling2D::new().data_format(format)).unwrap();
    m.add(BatchNormalization::new().axis(axis)).unwrap();
    m.add(GlobalAveragePooling2D::new().data_format(format)).unwrap();
    m.add(Dense::new(2)).unwrap();
    m.compile(Loss::MeanSquaredError, Sgd::new(0.05), &[]).unwrap();
    m
}

/// A channels-first model trains as the channels-last one does on the same images (within
/// rounding: the channels-last one runs its convolution and pooling fused), and its format is
/// saved and loaded.
#[test]
fn models_train_alike_and_save_the_format() {
    let [n, h, w, c] = NHWC;
    let y = Array::new((0..n * 2).map(|i| (i as f32 * 0.3).cos()).collect(), [n, 2]).unwrap();
    let options = FitOptions { epochs: 3, batch_size: 3, verbose: 0, shuffle: false, ..Default::default() };
    let mut last = model(DataFormat::ChannelsLast, 4);
    let mut first = model(DataFormat::ChannelsFirst, 4);
    let x_last = Array::new(images(), NHWC).unwrap();
    let x_first = Array::new(to_nchw(&images(), NHWC), [n, c, h, w]).unwrap();
    last.fit(&x_last, &y, &options).unwrap();
    first.fit(&x_first, &y, &options).unwrap();
    let (p_last, p_first) =
        (last.predict(&x_last, 3).unwrap().remove(0), first.predict(&x_first, 3).unwrap().remove(0));
    for (a, b) in p_last.data().iter().zip(p_first.data()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("first.safetensors");
    first.save(&path).unwrap();
    let mut loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.predict(&x_first, 3).unwrap()[0].data(), p_first.data());
    let again = dir.path().join("again.safetensors");
    loaded.save(&again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&path).unwrap());
    let mut bad = Sequential::new();
    let err = bad
        .add(Conv2D::new(2, (3, 3)).data_format(DataFormat::ChannelsFirst).input_shape([28, 28]))
        .unwrap_err();
    assert!(err.to_string().contains("(channels, height, width)"), "{err}");
}
