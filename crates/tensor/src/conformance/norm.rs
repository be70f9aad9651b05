//! The conformance cases of the normalization ops (`tensor/src/ops/norm.rs`).

use super::reference::{self as r, Pool};
use super::{constant_in, input, input_in, Checker};
use crate::shape::ChannelSpec;
use crate::{ChannelCoefficients, ChannelGrad, Padding, PoolWindow, Tensor};

/// Per-channel statistics and maps (normalization layers), around the last axis (channels last,
/// `inner == 1`) and a middle one (`inner > 1`). Moments of data far from zero, where
/// `E[x^2] - E[x]^2` in f32 loses the variance, are checked row by row: next to means near 100,
/// the relative error of both rows together would hide a variance wrong in its third digit.
/// Then many elements per channel (which a GPU cuts into chunks merged in a second pass) and
/// more channels than one workgroup takes side by side, forward only except `channel_affine`'s
/// `scale` and `shift`, whose gradients are `channel_sums` over every element; `channel_sums`,
/// which no tensor op exposes, is also called on the backend directly.
pub(super) fn channel_statistics(c: &Checker<'_>) {
    let d = [5, 3, 4, 7];
    for (k, axis) in [-1isize, 1].into_iter().enumerate() {
        let seed = 150 + 10 * k as u64;
        let ax = if axis < 0 { d.len() - 1 } else { axis as usize };
        let channels = d[ax];
        c.check_op(
            &format!("channel_moments axis {axis}"),
            seed,
            &[input(&d)],
            |t| t[0].channel_moments(axis),
            |v| r::channel_moments(&v[0], &d, ax),
        );
        for (row, what) in [(0, "means"), (1, "variances")] {
            c.check_op(
                &format!("channel_moments {what} of data in [99, 101) axis {axis}"),
                seed + 1 + row as u64,
                &[input_in(&d, 99.0, 101.0)],
                |t| t[0].channel_moments(axis)?.narrow(0, row, 1),
                |v| r::channel_moments(&v[0], &d, ax)[row * channels..(row + 1) * channels].to_vec(),
            );
        }
        c.check_op(
            &format!("channel_affine axis {axis}"),
            seed + 3,
            &[input(&d), input_in(&[channels], 0.5, 2.0), input(&[channels])],
            |t| t[0].channel_affine(axis, &t[1], &t[2]),
            |v| r::channel_affine(&v[0], &d, ax, &v[1], &v[2]),
        );
    }
    let sums = |t: &[Tensor], axis: isize| -> crate::Result<Tensor> {
        let spec = ChannelSpec::new(t[0].shape(), axis)?;
        let device = t[0].device();
        let grad = ChannelGrad::plain(t[0].storage());
        let storage = device.backend().channel_sums(grad, t[1].storage(), None, &spec)?;
        Tensor::from_storage(storage, [2, spec.channels], device)
    };
    let big: [(&[usize], isize); 4] =
        [(&[3000, 3], -1), (&[60, 70], -1), (&[2, 20, 20, 80], -1), (&[64, 5, 300], 1)];
    for (k, (d, axis)) in big.into_iter().enumerate() {
        let seed = 170 + 10 * k as u64;
        let ax = if axis < 0 { d.len() - 1 } else { axis as usize };
        let channels = d[ax];
        c.check_op(
            &format!("channel_moments {d:?} axis {axis}"),
            seed,
            &[constant_in(d, -1.0, 1.0)],
            |t| t[0].channel_moments(axis),
            |v| r::channel_moments(&v[0], d, ax),
        );
        c.check_op(
            &format!("channel_moments variances of data in [99, 101) {d:?} axis {axis}"),
            seed + 1,
            &[constant_in(d, 99.0, 101.0)],
            |t| t[0].channel_moments(axis)?.narrow(0, 1, 1),
            |v| r::channel_moments(&v[0], d, ax)[channels..].to_vec(),
        );
        c.check_op(
            &format!("channel_sums {d:?} axis {axis}"),
            seed + 2,
            &[constant_in(d, -1.0, 1.0), constant_in(d, -1.0, 1.0)],
            |t| sums(t, axis),
            |v| r::channel_sums(&v[0], &v[1], d, ax),
        );
        c.check_op(
            &format!("channel_affine {d:?} axis {axis}"),
            seed + 3,
            &[constant_in(d, -1.0, 1.0), input_in(&[channels], 0.5, 2.0), input(&[channels])],
            |t| t[0].channel_affine(axis, &t[1], &t[2]),
            |v| r::channel_affine(&v[0], d, ax, &v[1], &v[2]),
        );
    }
}

/// A training step's batch normalization as one op ([`Tensor::batch_norm`]), with and without
/// its fused ReLU, channels last and on a middle axis, and with the max pooling after its ReLU
/// ([`Tensor::batch_norm_relu_max_pool`]), forward and the gradients of `x`, `gamma` and
/// `beta` (through the batch's statistics); then, on shapes a GPU cuts into
/// chunks, its backward pass' two kernels called on the backend directly, gated by a ReLU
/// (whose input is computed again from `x`) and centered.
pub(super) fn batch_normalization(c: &Checker<'_>) {
    // The gradient `t[0]` gated by a ReLU whose forward map is `t[1]` (`[2, channels]`).
    fn gated(t: &[Tensor]) -> ChannelGrad<'_> {
        ChannelGrad { dy: t[0].storage(), relu_gate: Some(t[1].storage()), pooled: None }
    }
    let d = [5, 3, 4, 7];
    for (k, (axis, relu)) in [(-1isize, false), (-1, true), (1, true)].into_iter().enumerate() {
        let ax = if axis < 0 { d.len() - 1 } else { axis as usize };
        let channels = d[ax];
        c.check_op(
            &format!("batch_norm axis {axis} relu {relu}"),
            200 + k as u64,
            &[input_in(&d, -1.0, 3.0), input_in(&[channels], 0.5, 2.0), input(&[channels])],
            |t| Ok(t[0].batch_norm(axis, Some(&t[1]), Some(&t[2]), 1e-3, relu)?.0),
            |v| r::batch_norm(&v[0], &d, ax, &v[1], &v[2], 1e-3, relu),
        );
    }
    c.check_op(
        "batch_norm without gamma and beta",
        205,
        &[input(&d)],
        |t| Ok(t[0].batch_norm(-1, None, None, 1e-3, true)?.0),
        |v| r::batch_norm(&v[0], &d, 3, &[1.0; 7], &[0.0; 7], 1e-3, true),
    );
    // With the max pooling after the ReLU (`batch_norm_relu_max_pool`): fused for 2x2 windows
    // where the backend says so, else composed (as a 3x3 window always is); odd channels.
    let pooled: [([usize; 4], usize); 3] = [([2, 4, 6, 5], 2), ([3, 6, 4, 3], 2), ([2, 6, 6, 3], 3)];
    for (k, (d, w)) in pooled.into_iter().enumerate() {
        let window = PoolWindow { size: (w, w), strides: (w, w), padding: Padding::Valid };
        c.check_op(
            &format!("batch_norm_relu_max_pool {d:?} window {w}"),
            206 + k as u64,
            &[input_in(&d, -1.0, 3.0), input_in(&[d[3]], 0.5, 2.0), input(&[d[3]])],
            |t| Ok(t[0].batch_norm_relu_max_pool(Some(&t[1]), Some(&t[2]), 1e-3, window)?.0),
            |v| {
                let y = r::batch_norm(&v[0], &d, 3, &v[1], &v[2], 1e-3, true);
                r::pool2d(&y, d, Pool::Max, (w, w), (w, w), false)
            },
        );
    }
    let big: [(&[usize], isize); 3] = [(&[3000, 3], -1), (&[2, 20, 20, 80], -1), (&[64, 5, 300], 1)];
    for (k, (d, axis)) in big.into_iter().enumerate() {
        let seed = 210 + 10 * k as u64;
        let ax = if axis < 0 { d.len() - 1 } else { axis as usize };
        let channels = d[ax];
        c.check_op(
            &format!("channel_sums gated and centered {d:?} axis {axis}"),
            seed,
            &[
                constant_in(d, -1.0, 1.0),
                constant_in(&[2, channels], -1.0, 1.0),
                constant_in(d, -1.0, 1.0),
                constant_in(&[channels], -0.5, 0.5),
            ],
            |t| {
                let spec = ChannelSpec::new(t[0].shape(), axis)?;
                let device = t[0].device();
                let storage =
                    device.backend().channel_sums(gated(t), t[2].storage(), Some(t[3].storage()), &spec)?;
                Tensor::from_storage(storage, [2, channels], device)
            },
            |v| r::gated_channel_sums(&v[0], &v[1], &v[2], &v[3], d, ax),
        );
        let k_in = constant_in(&[channels], -1.0, 1.0);
        c.check_op(
            &format!("channel_affine_pair gated {d:?} axis {axis}"),
            seed + 1,
            &[
                constant_in(d, -1.0, 1.0),
                constant_in(&[2, channels], -1.0, 1.0),
                constant_in(d, -1.0, 1.0),
                k_in.clone(),
                k_in.clone(),
                k_in,
            ],
            |t| {
                let spec = ChannelSpec::new(t[0].shape(), axis)?;
                let device = t[0].device();
                let k = ChannelCoefficients {
                    g_scale: t[3].storage(),
                    x_scale: t[4].storage(),
                    shift: t[5].storage(),
                };
                let storage = device.backend().channel_affine_pair(gated(t), t[2].storage(), k, &spec)?;
                Tensor::from_storage(storage, t[0].shape().clone(), device)
            },
            |v| r::gated_channel_affine_pair(&v[0], &v[1], &v[2], [&v[3], &v[4], &v[5]], d, ax),
        );
        c.check_op(
            &format!("batch_norm relu forward {d:?} axis {axis}"),
            seed + 2,
            &[
                constant_in(d, -1.0, 3.0),
                constant_in(&[channels], 0.5, 2.0),
                constant_in(&[channels], -1.0, 1.0),
            ],
            |t| Ok(t[0].batch_norm(axis, Some(&t[1]), Some(&t[2]), 1e-3, true)?.0),
            |v| r::batch_norm(&v[0], d, ax, &v[1], &v[2], 1e-3, true),
        );
    }
}
