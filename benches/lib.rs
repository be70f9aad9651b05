//! The kernel workloads the benchmarks (criterion in `benches/`, and `cargo xtask bench-kernels`)
//! measure: the shapes of the lecture's MNIST models at batch 128, each with its FLOP count,
//! runnable on any backend.

use tensor::backend::prelude::*;
use tensor::backend::{conv2d_max_pool_backward_unfused, conv2d_max_pool_unfused, Storage};
use tensor::shape::{
    AffineTransformSpec, Conv2dSpec, ConvPoolSpec, FillMode, Interpolation, MatmulSpec, Pool2dSpec,
    PoolWindow, ReduceSpec, Shape, TRANSFORM_LEN,
};
use tensor::{ConvPoolBackward, ConvPoolSaved, Padding, PoolKind, ReduceOp, Result};

/// One benchmarked kernel call with its inputs already on the device.
pub struct Workload {
    /// Name, e.g. `conv2d_fwd 128x28x28x1 -> 20@5x5`.
    pub name: String,
    /// Floating-point operations per call (0 for memory-bound kernels).
    pub flops: f64,
    inputs: Vec<Storage>,
    kind: Kind,
}

enum Kind {
    Matmul(MatmulSpec),
    ConvForward(Conv2dSpec),
    ConvBackwardInput(Conv2dSpec),
    ConvBackwardFilter(Conv2dSpec),
    Pool(Pool2dSpec),
    PoolBackward(Pool2dSpec),
    ConvMaxPool(ConvPoolSpec),
    /// With the gradients wanted (input, filter, bias) and what the forward pass saved.
    ConvMaxPoolBackward(ConvPoolSpec, [bool; 3], ConvPoolSaved),
    /// The same two through the trait's unfused default (convolution, pooling, ReLU as
    /// separate kernels): what the fusion saves.
    ConvMaxPoolUnfused(ConvPoolSpec),
    ConvMaxPoolBackwardUnfused(ConvPoolSpec, [bool; 3], Storage),
    /// A sum over the middle axis (a conv layer's bias gradient).
    Sum(ReduceSpec),
    /// An augmentation layer's resampling: images, then one transform per image.
    AffineTransform(AffineTransformSpec),
}

impl Workload {
    /// Runs the kernel once.
    pub fn run(&self, backend: &dyn Backend) -> Result<Storage> {
        let i = &self.inputs;
        match &self.kind {
            Kind::Matmul(s) => backend.matmul(&i[0], &i[1], None, s),
            Kind::ConvForward(s) => backend.conv2d(&i[0], &i[1], Some(&i[2]), s),
            Kind::ConvBackwardInput(s) => backend.conv2d_backward_input(&i[0], &i[1], s),
            Kind::ConvBackwardFilter(s) => backend.conv2d_backward_filter(&i[0], &i[1], s),
            Kind::Pool(s) => backend.pool2d(PoolKind::Max, &i[0], s),
            Kind::PoolBackward(s) => backend.pool2d_backward(PoolKind::Max, &i[0], &i[1], &i[2], s),
            Kind::ConvMaxPool(s) => Ok(backend.conv2d_max_pool(&i[0], &i[1], Some(&i[2]), s)?.0),
            Kind::ConvMaxPoolBackward(spec, needs, saved) => {
                let (x, filter, pooled, dpooled) = (&i[0], &i[1], &i[2], &i[3]);
                let args = ConvPoolBackward { x, filter, pooled, saved, dpooled, spec, needs: *needs };
                let grads = backend.conv2d_max_pool_backward(&args)?;
                grads.filter.ok_or_else(|| tensor::TensorError::Backend("no filter gradient".into()))
            }
            Kind::ConvMaxPoolUnfused(s) => {
                Ok(conv2d_max_pool_unfused(backend, &i[0], &i[1], Some(&i[2]), s)?.0)
            }
            Kind::ConvMaxPoolBackwardUnfused(spec, needs, conv_output) => {
                let (x, filter, pooled, dpooled) = (&i[0], &i[1], &i[2], &i[3]);
                let saved = &ConvPoolSaved::ConvOutput(conv_output.clone());
                let args = ConvPoolBackward { x, filter, pooled, saved, dpooled, spec, needs: *needs };
                let grads = conv2d_max_pool_backward_unfused(backend, &args, conv_output)?;
                grads.filter.ok_or_else(|| tensor::TensorError::Backend("no filter gradient".into()))
            }
            Kind::Sum(s) => backend.reduce(ReduceOp::Sum, &i[0], s),
            Kind::AffineTransform(s) => backend.affine_transform(&i[0], &i[1], s),
        }
    }
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u32).map(|i| tensor::random::uniform(seed, i) * 2.0 - 1.0).collect()
}

fn upload(backend: &dyn Backend, n: usize, seed: u64) -> Result<Storage> {
    backend.upload(&values(n, seed))
}

/// Dense-layer products of model4/model5 at batch 128, forward and both backward products.
pub fn matmul_workloads(backend: &dyn Backend, batch: usize) -> Result<Vec<Workload>> {
    let mut out = Vec::new();
    for (inputs, units) in [(784, 100), (2880, 100), (1000, 100), (100, 10)] {
        // forward: x[b, in] W[in, out]; dW = x^T dy; dx = dy W^T
        let cases = [
            ("fwd", MatmulSpec { batch: 1, m: batch, k: inputs, n: units, trans_a: false, trans_b: false }),
            ("bwd_w", MatmulSpec { batch: 1, m: inputs, k: batch, n: units, trans_a: true, trans_b: false }),
            ("bwd_x", MatmulSpec { batch: 1, m: batch, k: units, n: inputs, trans_a: false, trans_b: true }),
        ];
        for (pass, spec) in cases {
            out.push(Workload {
                name: format!("matmul_{pass} {batch}x{inputs}x{units}"),
                flops: spec.flops(),
                inputs: vec![upload(backend, spec.m * spec.k, 1)?, upload(backend, spec.k * spec.n, 2)?],
                kind: Kind::Matmul(spec),
            });
        }
    }
    Ok(out)
}

/// A square matmul `n x n x n`.
pub fn square_matmul(backend: &dyn Backend, n: usize) -> Result<Workload> {
    let spec = MatmulSpec { batch: 1, m: n, k: n, n, trans_a: false, trans_b: false };
    Ok(Workload {
        name: format!("matmul {n}^3"),
        flops: spec.flops(),
        inputs: vec![upload(backend, n * n, 1)?, upload(backend, n * n, 2)?],
        kind: Kind::Matmul(spec),
    })
}

/// The convolution and pooling layers of model5 (model4's first layer is the same conv).
pub fn conv_pool_workloads(backend: &dyn Backend, batch: usize) -> Result<Vec<Workload>> {
    let mut out = Vec::new();
    let layers = [([batch, 28, 28, 1], [5, 5, 1, 20]), ([batch, 12, 12, 20], [3, 3, 20, 40])];
    for (x_dims, f_dims) in layers {
        let spec = Conv2dSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), (1, 1), Padding::Valid)?;
        let label = format!(
            "{}x{}x{}x{} -> {}@{}x{}",
            x_dims[0], x_dims[1], x_dims[2], x_dims[3], f_dims[3], f_dims[0], f_dims[1]
        );
        let x = upload(backend, spec.input_shape().numel(), 3)?;
        let w = upload(backend, spec.filter_shape().numel(), 4)?;
        let b = upload(backend, spec.out_c, 5)?;
        let dy = upload(backend, spec.output_shape().numel(), 6)?;
        let fwd_inputs = vec![x.clone(), w.clone(), b];
        out.push(Workload {
            name: format!("conv2d_fwd {label}"),
            flops: spec.flops(),
            inputs: fwd_inputs.clone(),
            kind: Kind::ConvForward(spec),
        });
        out.push(Workload {
            name: format!("conv2d_bwd_input {label}"),
            flops: spec.flops(),
            inputs: vec![dy.clone(), w.clone()],
            kind: Kind::ConvBackwardInput(spec),
        });
        out.push(Workload {
            name: format!("conv2d_bwd_filter {label}"),
            flops: spec.flops(),
            inputs: vec![x, dy],
            kind: Kind::ConvBackwardFilter(spec),
        });
        // The 2x2 max pooling that follows each conv.
        let pool = Pool2dSpec::new(&spec.output_shape(), (2, 2), (2, 2), Padding::Valid)?;
        let px = upload(backend, spec.output_shape().numel(), 7)?;
        let py = backend.pool2d(PoolKind::Max, &px, &pool)?;
        let pdy = upload(backend, pool.output_shape().numel(), 8)?;
        let dims = spec.output_shape();
        out.push(Workload {
            name: format!("maxpool2x2_fwd {dims}"),
            flops: 0.0,
            inputs: vec![px.clone()],
            kind: Kind::Pool(pool),
        });
        out.push(Workload {
            name: format!("maxpool2x2_bwd {dims}"),
            flops: 0.0,
            inputs: vec![px, py, pdy.clone()],
            kind: Kind::PoolBackward(pool),
        });
        // The convolution, its ReLU and the pooling as one op (what a model's
        // `Conv2D(relu)` + `MaxPooling2D` runs): forward, and the filter and bias gradients
        // (plus the input gradient for the second layer, whose input is a variable).
        let window = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };
        let fused =
            ConvPoolSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), (1, 1), Padding::Valid, window)?
                .with_relu();
        let (x, w, b) = (&fwd_inputs[0], &fwd_inputs[1], &fwd_inputs[2]);
        let (pooled, saved) = backend.conv2d_max_pool(x, w, Some(b), &fused)?;
        out.push(Workload {
            name: format!("conv2d_maxpool_fwd {label}"),
            flops: spec.flops(),
            inputs: fwd_inputs.clone(),
            kind: Kind::ConvMaxPool(fused),
        });
        let needs = [x_dims[3] > 1, true, true];
        let passes = if needs[0] { 2.0 } else { 1.0 };
        out.push(Workload {
            name: format!("conv2d_maxpool_bwd {label}"),
            flops: passes * spec.flops(),
            inputs: vec![x.clone(), w.clone(), pooled, pdy.clone()],
            kind: Kind::ConvMaxPoolBackward(fused, needs, saved),
        });
        let (pooled, ConvPoolSaved::ConvOutput(conv_output)) =
            conv2d_max_pool_unfused(backend, x, w, Some(b), &fused)?
        else {
            unreachable!("the unfused path saves the convolution's output")
        };
        out.push(Workload {
            name: format!("conv2d_maxpool_fwd_unfused {label}"),
            flops: spec.flops(),
            inputs: fwd_inputs.clone(),
            kind: Kind::ConvMaxPoolUnfused(fused),
        });
        out.push(Workload {
            name: format!("conv2d_maxpool_bwd_unfused {label}"),
            flops: passes * spec.flops(),
            inputs: vec![x.clone(), w.clone(), pooled, pdy],
            kind: Kind::ConvMaxPoolBackwardUnfused(fused, needs, conv_output),
        });
        let rows = spec.batch * spec.out_h * spec.out_w;
        out.push(Workload {
            name: format!("bias_gradient {rows}x{}", spec.out_c),
            flops: 0.0,
            inputs: vec![upload(backend, rows * spec.out_c, 9)?],
            kind: Kind::Sum(ReduceSpec { outer: 1, reduced: rows, inner: spec.out_c }),
        });
    }
    Ok(out)
}

/// model6's 3x3 `same` convolutions (layers 2-5) at batch `batch`: forward, input gradient
/// and filter gradient, each counted as the direct convolution's `2 * MACs`.
pub fn model6_conv_workloads(backend: &dyn Backend, batch: usize) -> Result<Vec<Workload>> {
    let mut out = Vec::new();
    for (hw, in_c, out_c) in [(28, 32, 32), (14, 32, 64), (14, 64, 64), (7, 64, 128)] {
        let (x_dims, f_dims) = ([batch, hw, hw, in_c], [3, 3, in_c, out_c]);
        let spec = Conv2dSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), (1, 1), Padding::Same)?;
        let label = format!("{batch}x{hw}x{hw}x{in_c} -> {out_c}@3x3 same");
        let x = upload(backend, spec.input_shape().numel(), 3)?;
        let w = upload(backend, spec.filter_shape().numel(), 4)?;
        let dy = upload(backend, spec.output_shape().numel(), 6)?;
        let passes = [
            ("conv2d_fwd", vec![x.clone(), w.clone(), upload(backend, out_c, 5)?], Kind::ConvForward(spec)),
            ("conv2d_bwd_input", vec![dy.clone(), w], Kind::ConvBackwardInput(spec)),
            ("conv2d_bwd_filter", vec![x, dy], Kind::ConvBackwardFilter(spec)),
        ];
        for (pass, inputs, kind) in passes {
            out.push(Workload { name: format!("{pass} {label}"), flops: spec.flops(), inputs, kind });
        }
    }
    Ok(out)
}

/// model6's augmentation at batch `batch`: `RandomRotation(0.05)`'s and `RandomTranslation(0.1,
/// 0.1)`'s bilinear resampling with reflected borders, each image turned by up to 18 degrees
/// and shifted by up to 2.8 pixels (memory- and index-bound: no FLOP count).
pub fn augmentation_workloads(backend: &dyn Backend, batch: usize) -> Result<Vec<Workload>> {
    let (height, width) = (28usize, 28usize);
    let images = upload(backend, batch * height * width, 7)?;
    let draws = values(batch * 3, 8);
    let mut rotations = Vec::with_capacity(batch * TRANSFORM_LEN);
    let mut translations = Vec::with_capacity(batch * TRANSFORM_LEN);
    for d in draws.chunks_exact(3) {
        // Keras' rotation about the image centre, as `RandomRotation` builds it.
        let angle = d[0] * 0.05 * std::f32::consts::TAU;
        let (sin, cos) = angle.sin_cos();
        let (cx, cy) = ((width - 1) as f32 / 2.0, (height - 1) as f32 / 2.0);
        let (x_offset, y_offset) = (cx - (cos * cx - sin * cy), cy - (sin * cx + cos * cy));
        rotations.extend_from_slice(&[cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0]);
        let (dx, dy) = (d[1] * 2.8, d[2] * 2.8);
        translations.extend_from_slice(&[1.0, 0.0, -dx, 0.0, 1.0, -dy, 0.0, 0.0]);
    }
    let spec = AffineTransformSpec::new(
        &[batch, height, width, 1],
        &[batch, TRANSFORM_LEN],
        Interpolation::Bilinear,
        FillMode::Reflect,
        0.0,
    )?;
    let label = format!("{batch}x{height}x{width}x1 bilinear reflect");
    Ok(vec![
        Workload {
            name: format!("affine_transform rotation {label}"),
            flops: 0.0,
            inputs: vec![images.clone(), backend.upload(&rotations)?],
            kind: Kind::AffineTransform(spec),
        },
        Workload {
            name: format!("affine_transform translation {label}"),
            flops: 0.0,
            inputs: vec![images, backend.upload(&translations)?],
            kind: Kind::AffineTransform(spec),
        },
    ])
}
