//! Direct (im2col-free) convolution with few filters: the first layer of an MNIST network
//! (28x28x1 images, 20 or 32 filters of 5x5 or 3x3), and, with AVX-512, the forward pass of
//! layers with a few input channels too (model5's 20 -> 40 channels, 3x3).
//!
//! With one input channel a patch is only `kernel_h * kernel_w` values (9 or 25), so im2col
//! would copy tiny runs and the GEMM would see `k = 25, n = 20`, where its packing dominates;
//! with 20 channels im2col copies 60-float runs that the direct kernel never makes.
//! Instead each image is zero-padded once into a small scratch buffer (so every window is in
//! bounds) and the output channels are kept in vector registers. The kernels are written once
//! (`kernels.rs`, over the vector operations of `simd.rs`) and built for AVX-512 where the
//! CPU has it (`avx512.rs`), else for AVX2 (`avx2.rs`):
//!
//! - forward: a few output pixels at a time, each tap broadcasts one input value and
//!   multiply-adds it with the tap's filter row into the pixels' accumulators;
//! - filter gradient: a few taps at a time, accumulated over all pixels of an image in
//!   registers, then added to the partial gradient of the image's slot. Slots hold fixed
//!   ranges of images and are summed in order, so the result does not depend on the number
//!   of threads.
//!
//! Beside them, for a convolution whose output is max-pooled (`crate::conv2d_pool`):
//! `pool_tiles.rs` convolves and pools 2x2 windows in registers, `batch_lanes.rs` does the
//! same for a first layer with sixteen images per register (AVX-512), `window_gradient.rs`
//! takes a first layer's filter gradient window by window, and `pooled_backward.rs` computes
//! the gradients from each window's winner alone.
//!
//! The module is compiled on x86-64 only, and its kernels run on CPUs with AVX-512F or with
//! AVX2 and FMA (detected at run time); elsewhere [`crate::conv2d`] uses its general im2col +
//! GEMM path.

use crate::buffers::{build_chunks, slot_partials};
use crate::isa::Build;

// The builds' lane counts are the kernels' register widths.
const _: () = assert!(
    Build::Avx2.lanes() == <simd::Avx2 as simd::Simd>::LANES
        && Build::Avx512.lanes() == <simd::Avx512 as simd::Simd>::LANES
);
pub(crate) mod batch_lanes;
pub(crate) use pooled_backward::PooledBackward;
use std::mem::MaybeUninit;
use tensor::shape::{Conv2dSpec, ConvPoolSpec};

/// The AVX2 kernels take one input channel and up to 32 filters (4 registers).
const MAX_OUT_C_AVX2: usize = 32;

/// Whether `build`'s kernels compute this convolution (forward and filter gradient): what
/// they can do, not whether they are the fastest choice (that is `crate::dispatch`'s).
pub(crate) fn takes(build: Build, spec: &Conv2dSpec) -> bool {
    let nonempty = spec.batch * spec.out_h * spec.out_w * spec.in_c * spec.out_c > 0;
    nonempty
        && match build {
            Build::Avx2 => spec.in_c == 1 && spec.out_c <= MAX_OUT_C_AVX2,
            Build::Avx512 => spec.out_c <= avx512::MAX_BLOCKS * avx512::LANES,
        }
}

/// Asserts what every entry point's unsafe calls rely on: `build` runs on this CPU and its
/// kernels take `spec`.
fn check_build(build: Build, spec: &Conv2dSpec) {
    assert!(build.runs_here(), "the {build:?} kernels need an instruction set this CPU lacks");
    assert!(takes(build, spec), "the {build:?} direct kernels do not take this convolution");
}

/// Height and width of an image padded so that every window lies inside it (the padded
/// image is `[ph, pw, in_c]`).
pub(crate) fn padded_dims(spec: &Conv2dSpec) -> (usize, usize) {
    ((spec.out_h - 1) * spec.stride_h + spec.kernel_h, (spec.out_w - 1) * spec.stride_w + spec.kernel_w)
}

/// Writes image `x` (`[in_h, in_w, in_c]`) into `padded` (`padded_dims`), zeros around it.
pub(crate) fn pad_image(x: &[f32], spec: &Conv2dSpec, padded: &mut [f32]) {
    let (ph, pw) = padded_dims(spec);
    let c = spec.in_c;
    padded.fill(0.0);
    for py in 0..ph {
        let iy = py as isize - spec.pad_top as isize;
        if iy < 0 || iy >= spec.in_h as isize {
            continue;
        }
        let first = spec.pad_left.min(pw);
        let last = (spec.pad_left + spec.in_w).min(pw);
        let row = iy as usize * spec.in_w * c;
        let dst = &mut padded[(py * pw + first) * c..(py * pw + last) * c];
        dst.copy_from_slice(&x[row..row + (last - first) * c]);
    }
}

/// The filter `[taps, out_c]` with each row zero-padded to `width` (whole register blocks).
fn pack_rows(rows: &[f32], row_len: usize, width: usize) -> Vec<f32> {
    let mut packed = vec![0.0; rows.len() / row_len * width];
    for (dst, src) in packed.chunks_exact_mut(width).zip(rows.chunks_exact(row_len)) {
        dst[..row_len].copy_from_slice(src);
    }
    packed
}

/// Convolution forward with `build`'s kernels (which must take `spec`, see [`takes`]).
pub(crate) fn forward(
    build: Build,
    x: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    spec: &Conv2dSpec,
) -> Vec<f32> {
    let kernel = DirectForward::new(build, filter, bias, spec);
    let image_in = spec.in_h * spec.in_w * spec.in_c;
    let image_out = spec.out_h * spec.out_w * spec.out_c;
    let run_image = |image: usize, y: &mut [MaybeUninit<f32>]| {
        let mut padded = vec![0.0; kernel.padded_len()];
        kernel.image(&x[image * image_in..(image + 1) * image_in], &mut padded, y, false);
    };
    // SAFETY: `DirectForward::image` writes every channel of every pixel of its image. No
    // zeroing first: it would cost as much as the convolution's own writes.
    unsafe { build_chunks(spec.batch * image_out, image_out, spec.batch > 1, run_image) }
}

/// The forward kernel prepared for one convolution (filter rows padded to whole registers,
/// bias padded), run image by image; what the fused convolution + pooling builds on.
pub(crate) struct DirectForward<'s> {
    isa: Build,
    spec: &'s Conv2dSpec,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl<'s> DirectForward<'s> {
    /// `build` must run on this CPU and take `spec` (see [`takes`]).
    pub(crate) fn new(isa: Build, filter: &[f32], bias: Option<&[f32]>, spec: &'s Conv2dSpec) -> Self {
        check_build(isa, spec);
        let width = spec.out_c.div_ceil(isa.lanes()) * isa.lanes();
        let weights = pack_rows(filter, spec.out_c, width);
        let mut bias_padded = vec![0.0; width];
        if let Some(bias) = bias {
            bias_padded[..spec.out_c].copy_from_slice(&bias[..spec.out_c]);
        }
        DirectForward { isa, spec, weights, bias: bias_padded }
    }

    /// Length of the scratch buffer [`DirectForward::image`] pads an image into.
    pub(crate) fn padded_len(&self) -> usize {
        let (ph, pw) = padded_dims(self.spec);
        ph * pw * self.spec.in_c
    }

    /// Channels per pixel with the padding to whole registers.
    pub(crate) fn padded_channels(&self) -> usize {
        self.bias.len()
    }

    /// Writes every element of one image's output (`[out_h, out_w, out_c]`) from the image
    /// (`[in_h, in_w, in_c]`), padding it into `padded` first. With `padded_pixels`, each
    /// pixel takes [`DirectForward::padded_channels`] values (the padding ones are 0), so
    /// that a consumer can loop over whole registers.
    pub(crate) fn image(
        &self,
        x: &[f32],
        padded: &mut [f32],
        y: &mut [MaybeUninit<f32>],
        padded_pixels: bool,
    ) {
        pad_image(x, self.spec, padded);
        let stride = if padded_pixels { self.padded_channels() } else { self.spec.out_c };
        let pw = padded_dims(self.spec).1;
        let (weights, bias) = (&self.weights, &self.bias);
        // SAFETY: `isa` was detected on this CPU; the kernels assert the buffers' sizes.
        unsafe {
            match self.isa {
                Build::Avx2 => avx2::forward_image(padded, pw, weights, bias, self.spec, (y, stride)),
                Build::Avx512 => avx512::forward_image(padded, pw, weights, bias, self.spec, (y, stride)),
            }
        };
    }
}

impl DirectForward<'_> {
    /// Whether [`DirectForward::max_pool_2x2_image`] computes `spec` (a first layer's
    /// convolution, then 2x2 max pooling).
    pub(crate) fn pools_in_registers(&self, spec: &ConvPoolSpec) -> bool {
        spec.conv == *self.spec && pool_tiles::takes(spec, self.isa.lanes())
    }

    /// One image's convolution and max pooling without writing the convolution's output:
    /// pooled values into `out`, winners into `won` (every element of both written), the
    /// image padded into `padded` first. Only where [`DirectForward::pools_in_registers`].
    pub(crate) fn max_pool_2x2_image(
        &self,
        x: &[f32],
        padded: &mut [f32],
        spec: &ConvPoolSpec,
        out: &mut [f32],
        won: &mut [f32],
    ) {
        assert!(self.pools_in_registers(spec), "no in-register pooling for this layer");
        pad_image(x, self.spec, padded);
        let pw = padded_dims(self.spec).1;
        let filter = (self.weights.as_slice(), self.bias.as_slice());
        // SAFETY: `isa` was detected on this CPU; the kernels assert the buffers' sizes.
        unsafe {
            match self.isa {
                Build::Avx2 => pool_tiles::image_avx2(padded, pw, filter, spec, out, won),
                Build::Avx512 => pool_tiles::image_avx512(padded, pw, filter, spec, out, won),
            }
        }
    }

    /// Max-pools one image's output written by [`DirectForward::image`] with padded pixels,
    /// over `spec`'s disjoint windows (elements at `offsets` from each corner), into `out`
    /// and each window's winner into `won` (see `conv2d_pool`).
    pub(crate) fn max_pool_image(
        &self,
        y: &[f32],
        spec: &ConvPoolSpec,
        offsets: &[usize],
        out: &mut [f32],
        won: &mut [f32],
    ) {
        assert!(spec.conv == *self.spec, "pooling a different convolution's output");
        // SAFETY: `isa` was detected on this CPU; the kernels assert the buffers' sizes.
        unsafe {
            match self.isa {
                Build::Avx2 => avx2::max_pool_image_padded(y, spec, offsets, out, won),
                Build::Avx512 => avx512::max_pool_image_padded(y, spec, offsets, out, won),
            }
        }
    }
}

/// Filter gradient with `build`'s kernels (which must take `spec`, see [`takes`]).
/// Bit-identical whatever the number of threads.
pub(crate) fn backward_filter(build: Build, x: &[f32], dy: &[f32], spec: &Conv2dSpec) -> Vec<f32> {
    let kernel = DirectFilterGradient::new(build, spec);
    let image_in = spec.in_h * spec.in_w * spec.in_c;
    let image_out = spec.out_h * spec.out_w * spec.out_c;
    let partials = kernel.partials(|slot_images, partial| {
        let mut padded = vec![0.0; kernel.padded_len()];
        for image in slot_images {
            let dy = &dy[image * image_out..(image + 1) * image_out];
            kernel.image(&x[image * image_in..(image + 1) * image_in], dy, &mut padded, partial);
        }
    });
    kernel.finish(&partials)
}

/// The filter-gradient kernel for one convolution, run image by image into per-slot partial
/// sums; what a fused kernel builds on.
pub(crate) struct DirectFilterGradient<'s> {
    isa: Build,
    spec: &'s Conv2dSpec,
}

impl<'s> DirectFilterGradient<'s> {
    /// `build` must run on this CPU and take `spec` (see [`takes`]).
    pub(crate) fn new(isa: Build, spec: &'s Conv2dSpec) -> Self {
        check_build(isa, spec);
        DirectFilterGradient { isa, spec }
    }

    fn width(&self) -> usize {
        self.spec.out_c.div_ceil(self.isa.lanes()) * self.isa.lanes()
    }

    fn partial_len(&self) -> usize {
        self.spec.kernel_h * self.spec.kernel_w * self.spec.in_c * self.width()
    }

    /// Length of the scratch buffer [`DirectFilterGradient::image`] pads an image into.
    pub(crate) fn padded_len(&self) -> usize {
        let (ph, pw) = padded_dims(self.spec);
        ph * pw * self.spec.in_c
    }

    /// Runs `fill(images, partial)` for slots of consecutive images in parallel, each with its
    /// own zeroed partial gradient. The slots are a function of the batch size only, so the
    /// sums do not depend on the number of threads.
    pub(crate) fn partials(&self, fill: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync) -> Vec<f32> {
        slot_partials(self.spec.batch, self.partial_len(), fill)
    }

    /// Adds one image's filter gradient (image `[in_h, in_w, in_c]`, its output gradient
    /// `[out_h, out_w, out_c]`) to `partial`, padding the image into `padded` first.
    pub(crate) fn image(&self, x: &[f32], dy: &[f32], padded: &mut [f32], partial: &mut [f32]) {
        pad_image(x, self.spec, padded);
        let pw = padded_dims(self.spec).1;
        // SAFETY: `isa` was detected on this CPU; the kernels assert the buffers' sizes.
        unsafe {
            match self.isa {
                Build::Avx2 => avx2::filter_gradient_image(padded, pw, dy, self.spec, partial),
                Build::Avx512 => avx512::filter_gradient_image(padded, pw, dy, self.spec, partial),
            }
        };
    }

    /// Whether [`DirectFilterGradient::max_pool_2x2_image`] computes `spec` (a first layer's
    /// convolution, then 2x2 max pooling).
    pub(crate) fn pools_in_registers(&self, spec: &ConvPoolSpec) -> bool {
        spec.conv == *self.spec && window_gradient::gradient_takes(spec, self.isa.lanes())
    }

    /// Adds one image's filter gradient to `partial` from its pooled gradient and winners
    /// (`[pool.out_h, pool.out_w, out_c]` each), without building its output gradient; the
    /// image is padded into `padded` first. Only where
    /// [`DirectFilterGradient::pools_in_registers`].
    pub(crate) fn max_pool_2x2_image(
        &self,
        x: &[f32],
        pooled: (&[f32], &[f32]),
        spec: &ConvPoolSpec,
        padded: &mut [f32],
        partial: &mut [f32],
    ) {
        assert!(self.pools_in_registers(spec), "no in-register pooling gradient for this layer");
        pad_image(x, self.spec, padded);
        let pw = padded_dims(self.spec).1;
        // SAFETY: `isa` was detected on this CPU; the kernels assert the buffers' sizes.
        unsafe {
            match self.isa {
                Build::Avx2 => window_gradient::filter_gradient_avx2(padded, pw, spec, pooled, partial),
                Build::Avx512 => window_gradient::filter_gradient_avx512(padded, pw, spec, pooled, partial),
            }
        }
    }

    /// The filter gradient (HWIO): the slots' partial sums added in order, channel padding
    /// dropped.
    pub(crate) fn finish(&self, partials: &[f32]) -> Vec<f32> {
        let (out_c, width) = (self.spec.out_c, self.width());
        let taps = self.spec.kernel_h * self.spec.kernel_w * self.spec.in_c;
        let mut dw = vec![0.0; taps * out_c];
        for partial in partials.chunks_exact(self.partial_len()) {
            for (dst, src) in dw.chunks_exact_mut(out_c).zip(partial.chunks_exact(width)) {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
        dw
    }
}

mod avx2;
mod avx512;
mod kernels;
pub(crate) mod pool_tiles;
mod pooled_backward;
pub(crate) mod simd;
pub(crate) mod window_gradient;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv2d::{backward_filter_im2col, forward_im2col};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::{Padding, Shape};

    /// Each window's winner (first strictly greatest in scan order) as the fused forward
    /// pass stores it.
    pub(super) fn reference_winners(y: &[f32], spec: &ConvPoolSpec) -> Vec<f32> {
        let (conv, pool) = (&spec.conv, &spec.pool);
        let mut won = Vec::new();
        for image in 0..conv.batch {
            for wy in 0..pool.out_h {
                for wx in 0..pool.out_w {
                    for c in 0..conv.out_c {
                        let at = |k: usize| {
                            let (oy, ox) =
                                (wy * pool.stride_h + k / pool.pool_w, wx * pool.stride_w + k % pool.pool_w);
                            y[((image * conv.out_h + oy) * conv.out_w + ox) * conv.out_c + c]
                        };
                        let best =
                            (1..pool.pool_h * pool.pool_w)
                                .fold(0, |best, k| if at(k) > at(best) { k } else { best });
                        won.push(best as f32);
                    }
                }
            }
        }
        won
    }

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
    /// The builds this CPU can run for `spec` (none: nothing to compare, the general path is
    /// used).
    fn isas(spec: &Conv2dSpec) -> Vec<Build> {
        [Build::Avx2, Build::Avx512].into_iter().filter(|&b| b.runs_here() && takes(b, spec)).collect()
    }

    /// The direct kernels agree with im2col + GEMM (itself checked against a naive reference
    /// in `conv2d`) for every number of register blocks, partial blocks, strides, padding and
    /// input channels (the filter-gradient kernels take several too, though only one is used).
    #[test]
    fn matches_im2col_path() {
        let mut rng = StdRng::seed_from_u64(21);
        let cases = [
            (3, (28, 28, 1), (5, 5), 20, (1, 1), Padding::Valid),
            (2, (11, 9, 1), (3, 2), 8, (2, 1), Padding::Same),
            (3, (7, 10, 1), (3, 3), 9, (1, 2), Padding::Same),
            (1, (9, 9, 1), (4, 4), 16, (3, 3), Padding::Valid),
            (20, (6, 5, 1), (2, 3), 17, (1, 1), Padding::Same),
            (2, (8, 8, 1), (3, 3), 32, (1, 1), Padding::Same),
            (2, (5, 5, 1), (5, 5), 3, (1, 1), Padding::Valid),
            // Row tails: output widths that the pixel blocks do not divide.
            (3, (13, 17, 1), (5, 5), 20, (1, 1), Padding::Valid),
            (2, (7, 9, 1), (3, 3), 6, (1, 1), Padding::Same),
            (2, (9, 7, 1), (2, 2), 12, (1, 1), Padding::Valid),
            (3, (5, 21, 1), (3, 4), 8, (1, 1), Padding::Same),
            // Several input channels (AVX-512 only): model5's second layer, three register
            // blocks, odd channel counts, stride and padding.
            (3, (12, 12, 20), (3, 3), 40, (1, 1), Padding::Valid),
            (2, (7, 9, 5), (3, 2), 47, (1, 1), Padding::Same),
            (2, (9, 8, 3), (3, 3), 33, (2, 2), Padding::Same),
            (2, (6, 7, 40), (3, 3), 20, (1, 1), Padding::Same),
        ];
        for (batch, (h, w, c), (kh, kw), out_c, stride, padding) in cases {
            let input = Shape::new([batch, h, w, c]);
            let filter_shape = Shape::new([kh, kw, c, out_c]);
            let spec = Conv2dSpec::new(&input, &filter_shape, stride, padding).unwrap();
            let x = random(input.numel(), &mut rng);
            let filter = random(filter_shape.numel(), &mut rng);
            let bias = random(out_c, &mut rng);
            let dy = random(spec.output_shape().numel(), &mut rng);
            for isa in isas(&spec) {
                for bias in [None, Some(bias.as_slice())] {
                    let got = forward(isa, &x, &filter, bias, &spec);
                    assert_close(&got, &forward_im2col(&x, &filter, bias, &spec));
                }
                let got = backward_filter(isa, &x, &dy, &spec);
                assert_close(&got, &backward_filter_im2col(&x, &dy, &spec));
            }
        }
    }

    #[test]
    fn filter_gradient_is_bit_identical_across_thread_counts() {
        let Some(build) = Build::widest() else { return };
        let spec =
            Conv2dSpec::new(&Shape::new([50, 28, 28, 1]), &Shape::new([5, 5, 1, 20]), (1, 1), Padding::Valid)
                .unwrap();
        let mut rng = StdRng::seed_from_u64(22);
        let x = random(spec.input_shape().numel(), &mut rng);
        let dy = random(spec.output_shape().numel(), &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let dw = pool.install(|| backward_filter(build, &x, &dy, &spec));
            dw.into_iter().map(f32::to_bits).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(2));
        assert_eq!(run(1), run(3));
    }
}
