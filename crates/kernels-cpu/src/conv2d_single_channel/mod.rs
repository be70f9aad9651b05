//! Direct (im2col-free) convolution for single-channel inputs with few filters: the first
//! layer of an MNIST network (28x28x1 images, 20 or 32 filters of 5x5 or 3x3).
//!
//! With one input channel a patch is only `kernel_h * kernel_w` values (9 or 25), so im2col
//! would copy tiny runs and the GEMM would see `k = 25, n = 20`, where its packing dominates.
//! Instead each image is zero-padded once into a small scratch buffer (so every window is in
//! bounds) and the output channels are kept in AVX2 registers:
//!
//! - forward: a few output pixels at a time, each tap broadcasts one input value and
//!   multiply-adds it with the tap's filter row into the pixels' accumulators;
//! - filter gradient: a few taps at a time, accumulated over all pixels of an image in
//!   registers, then added to the partial gradient of the image's slot. Slots hold fixed
//!   ranges of images and are summed in order, so the result does not depend on the number
//!   of threads.
//!
//! The module is compiled on x86-64 only, and its kernels run on CPUs with AVX2 and
//! FMA (detected at run time); elsewhere [`crate::conv2d`] uses its general im2col + GEMM
//! path.

use crate::buffers::build_chunks;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use tensor::shape::Conv2dSpec;

/// Output channels are handled in blocks of one AVX2 register.
const LANES: usize = 8;

/// At most this many register blocks of output channels (32 filters).
const MAX_BLOCKS: usize = 4;

/// Whether [`forward`] and [`backward_filter`] handle this convolution on this CPU.
pub(crate) fn supported(spec: &Conv2dSpec) -> bool {
    spec.in_c == 1
        && (1..=MAX_BLOCKS * LANES).contains(&spec.out_c)
        && spec.batch * spec.out_h * spec.out_w > 0
        && cpu_has_avx2_fma()
}

fn cpu_has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Height and width of an image padded so that every window lies inside it.
fn padded_dims(spec: &Conv2dSpec) -> (usize, usize) {
    ((spec.out_h - 1) * spec.stride_h + spec.kernel_h, (spec.out_w - 1) * spec.stride_w + spec.kernel_w)
}

/// Writes image `x` (`[in_h, in_w]`) into `padded` (`padded_dims`), zeros around it.
fn pad_image(x: &[f32], spec: &Conv2dSpec, padded: &mut [f32]) {
    let (ph, pw) = padded_dims(spec);
    padded.fill(0.0);
    for py in 0..ph {
        let iy = py as isize - spec.pad_top as isize;
        if iy < 0 || iy >= spec.in_h as isize {
            continue;
        }
        let first = spec.pad_left.min(pw);
        let last = (spec.pad_left + spec.in_w).min(pw);
        let row = iy as usize * spec.in_w;
        padded[py * pw + first..py * pw + last].copy_from_slice(&x[row..row + last - first]);
    }
}

/// The filter `[taps, out_c]` with each row zero-padded to whole register blocks.
fn pack_rows(rows: &[f32], row_len: usize, blocks: usize) -> Vec<f32> {
    let mut packed = vec![0.0; rows.len() / row_len * blocks * LANES];
    for (dst, src) in packed.chunks_exact_mut(blocks * LANES).zip(rows.chunks_exact(row_len)) {
        dst[..row_len].copy_from_slice(src);
    }
    packed
}

/// Convolution forward for a single-channel input, or `None` when [`supported`] is false.
pub(crate) fn forward(
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &Conv2dSpec,
) -> Option<Vec<f32>> {
    if !supported(spec) {
        return None;
    }
    let out_c = spec.out_c;
    let blocks = out_c.div_ceil(LANES);
    let weights = pack_rows(filter, out_c, blocks);
    let mut bias_padded = vec![0.0; blocks * LANES];
    if let Some(bias) = bias {
        bias_padded[..out_c].copy_from_slice(&bias[..out_c]);
    }
    let (ph, pw) = padded_dims(spec);
    let image_in = spec.in_h * spec.in_w;
    let image_out = spec.out_h * spec.out_w * out_c;
    let run_image = |image: usize, y: &mut [MaybeUninit<f32>]| {
        let mut padded = vec![0.0; ph * pw];
        pad_image(&x[image * image_in..(image + 1) * image_in], spec, &mut padded);
        // SAFETY: `supported` checked that the CPU has AVX2 and FMA; the kernel asserts the
        // buffers' sizes.
        unsafe { avx2::forward_image(&padded, pw, &weights, &bias_padded, spec, y) };
    };
    // SAFETY: `forward_image` writes every channel of every pixel of its image. No zeroing
    // first: it would cost as much as the convolution's own writes.
    Some(unsafe { build_chunks(spec.batch * image_out, image_out, spec.batch > 1, run_image) })
}

/// Filter gradient for a single-channel input, or `None` when [`supported`] is false.
/// Bit-identical whatever the number of threads.
pub(crate) fn backward_filter(x: &[f32], dy: &[f32], spec: &Conv2dSpec) -> Option<Vec<f32>> {
    if !supported(spec) {
        return None;
    }
    let out_c = spec.out_c;
    let taps = spec.kernel_h * spec.kernel_w;
    let blocks = out_c.div_ceil(LANES);
    let partial_len = taps * blocks * LANES;
    let (ph, pw) = padded_dims(spec);
    let image_in = spec.in_h * spec.in_w;
    let image_out = spec.out_h * spec.out_w * out_c;
    // Slots of consecutive images, a function of the batch size only.
    let slots = spec.batch.clamp(1, crate::conv2d::MAX_FILTER_PARTIALS);
    let images_per_slot = spec.batch.div_ceil(slots);
    let mut partials = vec![0.0; slots * partial_len];
    partials.par_chunks_mut(partial_len).enumerate().for_each(|(slot, partial)| {
        let mut padded = vec![0.0; ph * pw];
        let first = slot * images_per_slot;
        for image in first..(first + images_per_slot).min(spec.batch) {
            pad_image(&x[image * image_in..(image + 1) * image_in], spec, &mut padded);
            let dy = &dy[image * image_out..(image + 1) * image_out];
            // SAFETY: `supported` checked that the CPU has AVX2 and FMA; the kernel asserts
            // the buffers' sizes.
            unsafe { avx2::filter_gradient_image(&padded, pw, dy, spec, partial) };
        }
    });
    // Sum the slots in order and drop the channel padding.
    let mut dw = vec![0.0; taps * out_c];
    for partial in partials.chunks_exact(partial_len) {
        for (dst, src) in dw.chunks_exact_mut(out_c).zip(partial.chunks_exact(blocks * LANES)) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        }
    }
    Some(dw)
}

mod avx2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{backward_filter_im2col, forward_im2col};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::{Padding, Shape};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
        }
    }

    /// The direct kernels agree with im2col + GEMM (itself checked against a naive reference
    /// in `conv2d`) for every number of register blocks, partial blocks, strides and padding.
    #[test]
    fn matches_im2col_path() {
        if !cpu_has_avx2_fma() {
            return; // Nothing to compare on this CPU: the general path is used.
        }
        let mut rng = StdRng::seed_from_u64(21);
        let cases = [
            (3, (28, 28), (5, 5), 20, (1, 1), Padding::Valid),
            (2, (11, 9), (3, 2), 8, (2, 1), Padding::Same),
            (3, (7, 10), (3, 3), 9, (1, 2), Padding::Same),
            (1, (9, 9), (4, 4), 16, (3, 3), Padding::Valid),
            (20, (6, 5), (2, 3), 17, (1, 1), Padding::Same),
            (2, (8, 8), (3, 3), 32, (1, 1), Padding::Same),
            (2, (5, 5), (5, 5), 3, (1, 1), Padding::Valid),
            // Row tails: output widths that the pixel blocks do not divide.
            (3, (13, 17), (5, 5), 20, (1, 1), Padding::Valid),
            (2, (7, 9), (3, 3), 6, (1, 1), Padding::Same),
            (2, (9, 7), (2, 2), 12, (1, 1), Padding::Valid),
            (3, (5, 21), (3, 4), 8, (1, 1), Padding::Same),
        ];
        for (batch, (h, w), (kh, kw), out_c, stride, padding) in cases {
            let input = Shape::new([batch, h, w, 1]);
            let filter_shape = Shape::new([kh, kw, 1, out_c]);
            let spec = Conv2dSpec::new(&input, &filter_shape, stride, padding).unwrap();
            assert!(supported(&spec));
            let x = random(input.numel(), &mut rng);
            let filter = random(filter_shape.numel(), &mut rng);
            let bias = random(out_c, &mut rng);
            let dy = random(spec.output_shape().numel(), &mut rng);
            for bias in [None, Some(bias.as_slice())] {
                let got = forward(&x, &filter, bias, &spec).unwrap();
                assert_close(&got, &forward_im2col(&x, &filter, bias, &spec));
            }
            let got = backward_filter(&x, &dy, &spec).unwrap();
            assert_close(&got, &backward_filter_im2col(&x, &dy, &spec));
        }
    }

    #[test]
    fn filter_gradient_is_bit_identical_across_thread_counts() {
        if !cpu_has_avx2_fma() {
            return;
        }
        let spec =
            Conv2dSpec::new(&Shape::new([50, 28, 28, 1]), &Shape::new([5, 5, 1, 20]), (1, 1), Padding::Valid)
                .unwrap();
        let mut rng = StdRng::seed_from_u64(22);
        let x = random(spec.input_shape().numel(), &mut rng);
        let dy = random(spec.output_shape().numel(), &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let dw = pool.install(|| backward_filter(&x, &dy, &spec).unwrap());
            dw.into_iter().map(f32::to_bits).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }
}
