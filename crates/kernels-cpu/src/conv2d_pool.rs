//! Convolution followed by max pooling, fused ([`tensor::ConvOps::conv2d_max_pool`]), for
//! convolutions the direct kernels take and pooling windows that do not overlap.
//!
//! Unfused, an MNIST network's first layer writes its 24x24x20 output (6 MB per batch of 128),
//! reads it to pool, reads it again for the pooling gradient, writes the 6 MB gradient and
//! reads that for the filter gradient and the bias: memory traffic that took longer than the
//! convolution's arithmetic. Fused, 2x2 windows are convolved and pooled in registers
//! (`conv2d_direct::pool_tiles`, or `conv2d_direct::batch_lanes` with images as lanes for a
//! first layer; a 3x3 layer with several input channels by Winograd's algorithm,
//! `conv2d_winograd`); other windows pool each image's convolution output from a scratch
//! buffer (in L2). The forward pass keeps only which element of each window won (its
//! index in scan order, stored as an f32 beside each pooled value).
//!
//! The backward pass needs only those winners: each pooled value's gradient reaches one
//! convolution output. The input gradient and the filter gradient of a layer with several
//! input channels visit the winners' patches only ([`PooledBackward`], a quarter of a dense
//! pass's arithmetic for 2x2 windows). A first layer's filter gradient (one input channel,
//! patch rows too short to fill a register) stays dense: window by window from the pooled
//! gradient for 2x2 windows, else from each image's output gradient rebuilt in scratch.
//!
//! A ReLU after the pooling (`spec.relu`) is applied by the pooling kernels, in registers: a
//! window it cuts to 0 gets no winner ([`NO_WINNER`]), so its gradient stops there. No
//! separate activation pass over the batch, forward or backward.
//!
//! Forward values are the unfused kernels' exactly (to rounding where Winograd's kernels take
//! the layer): the same convolution kernel, and the same winner (the first strictly greatest
//! value in scan order, as in [`crate::pool_2x2`]). The gradients equal the unfused ones to
//! rounding.

use crate::conv2d_direct::{self, DirectFilterGradient, DirectForward, PooledBackward};
use crate::conv2d_winograd::WinogradPool;
use crate::dispatch::{ConvPool, ConvPoolBackward, PooledFilterGradient};
use crate::isa::Build;
use crate::winners::NO_WINNER;
use std::mem::MaybeUninit;
use tensor::shape::ConvPoolSpec;

/// Pooled values per image.
fn pooled_len(spec: &ConvPoolSpec) -> usize {
    spec.pool.out_h * spec.pool.out_w * spec.conv.out_c
}

/// Length of the saved winners (one per pooled value).
pub(crate) fn saved_len(spec: &ConvPoolSpec) -> usize {
    spec.conv.batch * pooled_len(spec)
}

/// `(pooled, winners)` by the fused kernel `plan` names (from `crate::dispatch`; not
/// [`ConvPool::Unfused`]).
pub(crate) fn forward(
    plan: ConvPool,
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &ConvPoolSpec,
) -> (Vec<f32>, Vec<f32>) {
    match plan {
        ConvPool::Unfused => panic!("conv2d_pool::forward runs fused kernels only"),
        ConvPool::BatchLanes => conv2d_direct::batch_lanes::forward(x, filter, bias, spec),
        ConvPool::Winograd => WinogradPool::new(spec).forward(x, filter, bias),
        ConvPool::Direct { build, in_registers } => direct(build, in_registers, x, filter, bias, spec),
    }
}

/// [`forward`] by the direct convolution kernel, pooling in registers or from scratch.
fn direct(
    build: Build,
    in_registers: bool,
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &ConvPoolSpec,
) -> (Vec<f32>, Vec<f32>) {
    let conv = &spec.conv;
    let kernel = DirectForward::new(build, filter, bias, conv);
    let image_in = conv.in_h * conv.in_w * conv.in_c;
    let image_pooled = pooled_len(spec);
    // The scratch output has whole registers of channels per pixel, so the pooling loops
    // below have no partial vectors (whose scalar remainder, branching on random data, cost
    // more than the convolution).
    let width = kernel.padded_channels();
    let offsets = window_offsets(spec, width);
    debug_assert_eq!(saved_len(spec), conv.batch * image_pooled);
    assert!(!in_registers || kernel.pools_in_registers(spec), "no in-register pooling for this layer");
    // The convolution's output goes through scratch only when it is not pooled in registers.
    let y_len = if in_registers { 0 } else { conv.out_h * conv.out_w * width };
    let scratch = || (vec![0.0; kernel.padded_len()], vec![MaybeUninit::<f32>::uninit(); y_len]);
    let (pooled, winners) = crate::buffers::zeroed_chunk_pairs(
        conv.batch * image_pooled,
        image_pooled,
        scratch,
        |(padded, y), image, out, won| {
            let x = &x[image * image_in..(image + 1) * image_in];
            if in_registers {
                kernel.max_pool_2x2_image(x, padded, spec, out, won);
            } else {
                kernel.image(x, padded, y, true);
                // SAFETY: `DirectForward::image` wrote every element of the padded-pixel output.
                let y = unsafe { &*(y.as_slice() as *const [MaybeUninit<f32>] as *const [f32]) };
                kernel.max_pool_image(y, spec, &offsets, out, won);
            }
        },
    );
    (pooled, winners)
}

/// Offsets of a window's elements from its corner in one image's convolution output whose
/// pixels are `pixel` values apart, in scan order (a winner's index indexes this table).
fn window_offsets(spec: &ConvPoolSpec, pixel: usize) -> Vec<usize> {
    let (conv, pool) = (&spec.conv, &spec.pool);
    (0..pool.pool_h).flat_map(|r| (0..pool.pool_w).map(move |s| (r * conv.out_w + s) * pixel)).collect()
}

/// Writes one image's convolution-output gradient: the pooled gradient at each window's
/// winner, zero elsewhere. Each window element is written once, with a select over the
/// channel vector (vectorised) rather than a scatter; elements in no window (when the windows
/// leave a margin) are zeroed first.
#[inline(always)]
fn expand_image(dpooled: &[f32], won: &[f32], spec: &ConvPoolSpec, offsets: &[usize], dy: &mut [f32]) {
    let (conv, pool, c) = (&spec.conv, &spec.pool, spec.conv.out_c);
    if pool.out_h * pool.pool_h < conv.out_h || pool.out_w * pool.pool_w < conv.out_w {
        dy.fill(0.0);
    }
    for oy in 0..pool.out_h {
        for ox in 0..pool.out_w {
            let o = (oy * pool.out_w + ox) * c;
            let (g, won) = (&dpooled[o..o + c], &won[o..o + c]);
            let window = &mut dy[spec.window_corner(oy, ox) * c..];
            for (k, &offset) in offsets.iter().enumerate() {
                let k = k as f32;
                for ((d, &g), &w) in window[offset..offset + c].iter_mut().zip(g).zip(won) {
                    *d = if w == k { g } else { 0.0 };
                }
            }
        }
    }
}

/// [`expand_image`] compiled for AVX2.
#[target_feature(enable = "avx2")]
fn expand_image_avx2(dpooled: &[f32], won: &[f32], spec: &ConvPoolSpec, offsets: &[usize], dy: &mut [f32]) {
    expand_image(dpooled, won, spec, offsets, dy)
}

/// [`expand_image`], in the widest build this CPU runs.
fn expand(dpooled: &[f32], won: &[f32], spec: &ConvPoolSpec, offsets: &[usize], dy: &mut [f32]) {
    if crate::isa::features().avx2 {
        // SAFETY: the CPU has AVX2.
        unsafe { expand_image_avx2(dpooled, won, spec, offsets, dy) }
    } else {
        expand_image(dpooled, won, spec, offsets, dy)
    }
}

/// Gradients of [`forward`] with respect to the input, filter and bias, each where `needs`
/// asks, by the kernels `plan` names (from `crate::dispatch`); `winners` come from
/// [`forward`].
///
/// The input gradient, and the filter gradient of layers with several input channels, visit
/// only the winners ([`PooledBackward`]). A first layer's filter gradient (one input
/// channel, so a patch row of only `kernel_w` values) is faster dense: window by window, or
/// from its output gradient rebuilt one image at a time.
pub(crate) fn backward(
    plan: ConvPoolBackward,
    x: &[f32],
    filter: &[f32],
    winners: &[f32],
    dpooled: &[f32],
    spec: &ConvPoolSpec,
    [need_input, need_filter, need_bias]: [bool; 3],
) -> [Option<Vec<f32>>; 3] {
    let sparse = PooledBackward::new(plan.winners, spec);
    [
        need_input.then(|| sparse.input_gradient(filter, dpooled, winners)),
        need_filter.then(|| match plan.filter {
            PooledFilterGradient::Winners => sparse.filter_gradient(x, dpooled, winners),
            PooledFilterGradient::WindowByWindow(build) => {
                let kernel = DirectFilterGradient::new(build, &spec.conv);
                filter_gradient(&kernel, true, x, dpooled, winners, spec)
            }
            PooledFilterGradient::Rebuilt(build) => {
                let kernel = DirectFilterGradient::new(build, &spec.conv);
                filter_gradient(&kernel, false, x, dpooled, winners, spec)
            }
        }),
        need_bias.then(|| bias_gradient(dpooled, winners, spec.conv.out_c)),
    ]
}

/// The filter gradient, image by image: from the pooled gradient directly where
/// `in_registers` (the window-by-window kernel), else from its output gradient rebuilt in
/// scratch.
fn filter_gradient(
    kernel: &DirectFilterGradient<'_>,
    in_registers: bool,
    x: &[f32],
    dpooled: &[f32],
    won: &[f32],
    spec: &ConvPoolSpec,
) -> Vec<f32> {
    let conv = &spec.conv;
    let image_in = conv.in_h * conv.in_w * conv.in_c;
    let image_pooled = pooled_len(spec);
    let offsets = window_offsets(spec, conv.out_c);
    let partials = kernel.partials(|images, partial| {
        let mut padded = vec![0.0; kernel.padded_len()];
        let mut dy = vec![0.0; if in_registers { 0 } else { conv.out_h * conv.out_w * conv.out_c }];
        for image in images {
            let range = image * image_pooled..(image + 1) * image_pooled;
            let x = &x[image * image_in..(image + 1) * image_in];
            let (dpooled, won) = (&dpooled[range.clone()], &won[range]);
            if in_registers {
                kernel.max_pool_2x2_image(x, (dpooled, won), spec, &mut padded, partial);
            } else {
                expand(dpooled, won, spec, &offsets, &mut dy);
                kernel.image(x, &dy, &mut padded, partial);
            }
        }
    });
    kernel.finish(&partials)
}

/// Sum of the pooled gradient per channel: each pooled value's gradient reaches exactly one
/// convolution output (none for [`NO_WINNER`]), and the bias gradient is the sum of those.
/// Fixed slots of rows ([`crate::buffers::slot_partials`]) are summed in parallel, then added
/// in order: the result does not depend on the number of threads.
fn bias_gradient(dpooled: &[f32], won: &[f32], channels: usize) -> Vec<f32> {
    let rows = dpooled.len() / channels.max(1);
    let partials = crate::buffers::slot_partials(rows, channels, |rows, db| {
        let range = rows.start * channels..rows.end * channels;
        let (dpooled, won) = (&dpooled[range.clone()], &won[range]);
        for (row, won) in dpooled.chunks_exact(channels).zip(won.chunks_exact(channels)) {
            for ((d, &g), &w) in db.iter_mut().zip(row).zip(won) {
                *d += if w == NO_WINNER { 0.0 } else { g };
            }
        }
    });
    let mut db = vec![0.0; channels];
    for partial in partials.chunks_exact(channels) {
        db.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::shape::{PoolWindow, ReduceSpec};
    use tensor::{Padding, PoolKind, ReduceOp, Shape, UnaryOp};

    fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tolerance * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
        }
    }

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn spec(x: [usize; 4], f: [usize; 4], pool: (usize, usize)) -> ConvPoolSpec {
        let window = PoolWindow { size: pool, strides: pool, padding: Padding::Valid };
        ConvPoolSpec::new(&Shape::new(x), &Shape::new(f), (1, 1), Padding::Valid, window).unwrap()
    }

    /// On the lecture's shapes, with and without the ReLU, the fused kernel runs (where the
    /// CPU has AVX2 or AVX-512) and its forward values are the unfused kernels' exactly (to
    /// rounding where Winograd's kernels take the layer); its gradients match the unfused
    /// ones to rounding (they add the same products in another order).
    #[test]
    fn fused_matches_unfused_kernels_on_the_mnist_layers() {
        let mut rng = StdRng::seed_from_u64(31);
        let layers = [([5, 28, 28, 1], [5, 5, 1, 20], (2, 2)), ([3, 12, 12, 20], [3, 3, 20, 40], (2, 2))];
        for ((x, f, pool), relu) in layers.into_iter().flat_map(|layer| [(layer, false), (layer, true)]) {
            let spec = if relu { spec(x, f, pool).with_relu() } else { spec(x, f, pool) };
            let plan = crate::dispatch::conv2d_max_pool(&spec);
            if plan == ConvPool::Unfused {
                assert!(!crate::isa::features().avx2, "a CPU with AVX2 fuses these layers");
                continue;
            }
            let backward_plan = crate::dispatch::conv2d_max_pool_backward(&spec).unwrap();
            let conv = &spec.conv;
            let (xs, w, b) = (
                random(conv.input_shape().numel(), &mut rng),
                random(conv.filter_shape().numel(), &mut rng),
                random(conv.out_c, &mut rng),
            );
            let y = crate::conv2d::conv2d_forward(&xs, &w, Some(&b), conv);
            let mut want = crate::pool::pool2d(PoolKind::Max, &y, &spec.pool);
            if relu {
                want = crate::elementwise::unary(UnaryOp::Relu, &want);
                assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
            }
            let (pooled, winners) = forward(plan, &xs, &w, Some(&b), &spec);
            if plan == ConvPool::Winograd {
                // Winograd's transforms round differently (`conv2d_winograd`'s tests check
                // its winners); the gradients below follow the unfused winners, the same here.
                assert_close(&format!("relu {relu} pooled"), &pooled, &want, 1e-4);
            } else {
                assert_eq!(pooled, want, "relu {relu}");
            }

            let dpooled = random(pooled.len(), &mut rng);
            // The ReLU's gradient, then max pooling's, then the convolution's.
            let dz = if relu {
                crate::elementwise::unary_backward(UnaryOp::Relu, &want, &want, &dpooled)
            } else {
                dpooled.clone()
            };
            let dy = crate::pool::pool2d_backward(PoolKind::Max, &y, &want, &dz, &spec.pool);
            let dw = crate::conv2d::conv2d_backward_filter(&xs, &dy, conv);
            let dx = crate::conv2d::conv2d_backward_input(&dy, &w, conv);
            let sum = ReduceSpec { outer: 1, reduced: dy.len() / conv.out_c, inner: conv.out_c };
            let db = crate::reduce::reduce(ReduceOp::Sum, &dy, &sum);
            for needs in [[false, true, true], [true, true, true]] {
                let [got_dx, got_dw, got_db] =
                    backward(backward_plan, &xs, &w, &winners, &dpooled, &spec, needs);
                assert_eq!(got_dx.is_some(), needs[0]);
                if let Some(got) = got_dx {
                    assert_close("input gradient", &got, &dx, 1e-5);
                }
                assert_close("filter gradient", &got_dw.unwrap(), &dw, 1e-5);
                assert_close("bias gradient", &got_db.unwrap(), &db, 1e-5);
            }
        }
    }

    /// Training runs are reproducible: the fused op's gradients do not depend on the number
    /// of threads (fixed slots of images, summed in order).
    #[test]
    fn gradients_are_bit_identical_across_thread_counts() {
        let mut rng = StdRng::seed_from_u64(32);
        for (x, f) in [([37, 28, 28, 1], [5, 5, 1, 20]), ([19, 12, 12, 20], [3, 3, 20, 40])] {
            let spec = spec(x, f, (2, 2)).with_relu();
            let plan = crate::dispatch::conv2d_max_pool(&spec);
            if plan == ConvPool::Unfused {
                continue;
            }
            let backward_plan = crate::dispatch::conv2d_max_pool_backward(&spec).unwrap();
            let conv = &spec.conv;
            let xs = random(conv.input_shape().numel(), &mut rng);
            let w = random(conv.filter_shape().numel(), &mut rng);
            let (pooled, winners) = forward(plan, &xs, &w, None, &spec);
            let dpooled = random(pooled.len(), &mut rng);
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let grads = pool.install(|| {
                    backward(backward_plan, &xs, &w, &winners, &dpooled, &spec, [true, true, true])
                });
                grads.map(|g| g.unwrap().into_iter().map(f32::to_bits).collect::<Vec<_>>())
            };
            let one = run(1);
            assert_eq!(one, run(2), "{x:?}");
            assert_eq!(one, run(3), "{x:?}");
        }
    }
}
