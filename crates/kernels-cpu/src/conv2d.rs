//! 2-D convolution (NHWC input, HWIO filter, NHWC output) and its two gradients, by im2col +
//! GEMM.
//!
//! The output rows `[batch * out_h * out_w]` are cut into tiles of a fixed number of rows (a
//! function of the spec only) whose im2col matrix `[rows, patch_len]` fits in about 256 KiB,
//! so it is still in L2 when the GEMM reads it. An HWIO filter flattened is exactly the
//! `[patch_len, out_c]` right-hand matrix, so no filter reshuffling is ever needed.
//!
//! - forward: each tile is an independent rayon task: im2col into task-local scratch, then one
//!   single-threaded GEMM with the filter straight into the tile's output rows.
//! - input gradient: tasks own groups of whole images (their slice of `dx`), and per tile
//!   compute `dcol = dY W^T` and scatter-add it back (col2im); overlapping windows add up.
//! - filter gradient: tiles are dealt, in order, to at most [`MAX_FILTER_PARTIALS`] slots; each
//!   slot accumulates `col^T dY` into its own partial, and the partials are summed in slot
//!   order. Nothing depends on the thread count, so the result is bit-identical on any pool.

use crate::buffers::{with_scratch, zeroed_chunks};
use crate::dispatch::{self, Conv, ConvPool};
use crate::matmul::{gemm_into, MatrixRef};
use crate::{cpu_slice, store, CpuBackend};
use rayon::prelude::*;
use tensor::shape::Conv2dSpec;
use tensor::shape::ConvPoolSpec;
use tensor::{ConvOps, ConvPoolBackward, ConvPoolGrads, ConvPoolSaved, Result, Storage, TensorError};

/// Target size, in f32, of one tile's im2col matrix (256 KiB: comfortably inside L2).
const TILE_SCRATCH_FLOATS: usize = 64 * 1024;

/// Never make tiles shorter than this many rows, even for huge patches: each GEMM call packs
/// the whole filter, which must be amortised over enough rows.
const MIN_TILE_ROWS: usize = 64;

pub use crate::buffers::MAX_FILTER_PARTIALS;

/// Rows (output pixels) per tile; depends on the spec only, never on the thread count.
fn tile_rows(spec: &Conv2dSpec) -> usize {
    (TILE_SCRATCH_FLOATS / spec.patch_len().max(1)).max(MIN_TILE_ROWS)
}

/// A 1x1 kernel with unit stride and no padding: the im2col matrix is the input itself.
fn is_pointwise(spec: &Conv2dSpec) -> bool {
    spec.kernel_h == 1
        && spec.kernel_w == 1
        && spec.stride_h == 1
        && spec.stride_w == 1
        && spec.pad_top == 0
        && spec.pad_left == 0
        && spec.out_h == spec.in_h
        && spec.out_w == spec.in_w
}

/// Convolutions with fewer multiply-adds than this run on the calling thread. Lower than the
/// GEMM's threshold: tiles are independent tasks, much cheaper to share than one GEMM.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Whether the whole convolution has enough arithmetic to be worth spreading over threads.
fn worth_parallel(spec: &Conv2dSpec) -> bool {
    spec.batch * spec.out_h * spec.out_w * spec.out_c * spec.patch_len() >= PARALLEL_MIN_MACS
}

/// Checks the slices a kernel was given (`None`: not an input of that kernel) before any
/// unsafe GEMM reads them.
fn assert_lengths(spec: &Conv2dSpec, x: Option<usize>, filter: Option<usize>, dy: Option<usize>) {
    assert!(x.is_none_or(|n| n >= spec.input_shape().numel()), "conv2d: input too short");
    assert!(filter.is_none_or(|n| n >= spec.filter_shape().numel()), "conv2d: filter too short");
    assert!(dy.is_none_or(|n| n >= spec.output_shape().numel()), "conv2d: dy too short");
}

/// Walks output pixels `first_row..first_row + rows` (global row indices over the batch) and
/// calls `visit(row, image, window_top, window_left)`, with the window's top-left corner in
/// input coordinates (negative inside the padding).
fn for_each_window(
    spec: &Conv2dSpec,
    first_row: usize,
    rows: usize,
    mut visit: impl FnMut(usize, usize, isize, isize),
) {
    let pixels = spec.out_h * spec.out_w;
    let (mut image, rem) = (first_row / pixels, first_row % pixels);
    let (mut oy, mut ox) = (rem / spec.out_w, rem % spec.out_w);
    for row in 0..rows {
        let top = (oy * spec.stride_h) as isize - spec.pad_top as isize;
        let left = (ox * spec.stride_w) as isize - spec.pad_left as isize;
        visit(row, image, top, left);
        ox += 1;
        if ox == spec.out_w {
            ox = 0;
            oy += 1;
            if oy == spec.out_h {
                oy = 0;
                image += 1;
            }
        }
    }
}

/// The kernel columns `[lo, hi)` of a window starting at input column `left` that fall inside
/// the image.
fn valid_kernel_cols(spec: &Conv2dSpec, left: isize) -> (usize, usize) {
    let lo = (-left).clamp(0, spec.kernel_w as isize) as usize;
    let hi = (spec.in_w as isize - left).clamp(lo as isize, spec.kernel_w as isize) as usize;
    (lo, hi)
}

/// Fills `col` (`[rows, patch_len]`) with the receptive fields of output rows
/// `first_row..first_row + rows`, zeros where a window hangs over the padding. A kernel row
/// of a window is `kernel_w * in_c` consecutive input values, so it is copied as one run.
fn im2col(x: &[f32], spec: &Conv2dSpec, first_row: usize, rows: usize, col: &mut [f32]) {
    let (in_h, in_w, c) = (spec.in_h, spec.in_w, spec.in_c);
    let patch = spec.patch_len();
    let run = spec.kernel_w * c;
    debug_assert_eq!(col.len(), rows * patch);
    for_each_window(spec, first_row, rows, |row, image, top, left| {
        let dst = &mut col[row * patch..(row + 1) * patch];
        let (lo, hi) = valid_kernel_cols(spec, left);
        let image_base = image * in_h * in_w * c;
        for (ky, seg) in dst.chunks_exact_mut(run).enumerate() {
            let iy = top + ky as isize;
            if iy < 0 || iy >= in_h as isize || lo == hi {
                seg.fill(0.0);
                continue;
            }
            seg[..lo * c].fill(0.0);
            seg[hi * c..].fill(0.0);
            let src = image_base + (iy as usize * in_w + (left + lo as isize) as usize) * c;
            copy_short(&mut seg[lo * c..hi * c], &x[src..src + (hi - lo) * c]);
        }
    });
}

/// Adds the rows of `dcol` (`[rows, patch_len]`, output rows `first_row..`) back onto the
/// input pixels they were read from; `dx` holds the images from `first_image` on.
fn col2im_add(
    dcol: &[f32],
    spec: &Conv2dSpec,
    first_row: usize,
    rows: usize,
    dx: &mut [f32],
    first_image: usize,
) {
    let (in_h, in_w, c) = (spec.in_h, spec.in_w, spec.in_c);
    let patch = spec.patch_len();
    let run = spec.kernel_w * c;
    for_each_window(spec, first_row, rows, |row, image, top, left| {
        let src = &dcol[row * patch..(row + 1) * patch];
        let (lo, hi) = valid_kernel_cols(spec, left);
        let image_base = (image - first_image) * in_h * in_w * c;
        for (ky, seg) in src.chunks_exact(run).enumerate() {
            let iy = top + ky as isize;
            if iy < 0 || iy >= in_h as isize || lo == hi {
                continue;
            }
            let at = image_base + (iy as usize * in_w + (left + lo as isize) as usize) * c;
            for (d, s) in dx[at..at + (hi - lo) * c].iter_mut().zip(&seg[lo * c..hi * c]) {
                *d += s;
            }
        }
    });
}

/// `dst.copy_from_slice(src)`, but runs of a few elements (a 5-wide single-channel kernel row)
/// are copied inline instead of through a `memcpy` call.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if dst.len() <= 8 {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    } else {
        dst.copy_from_slice(src);
    }
}

/// Convolution forward: `y[b, oy, ox, o] = bias[o] + sum x[b, iy, ix, c] * filter[ky, kx, c, o]`.
///
/// # Panics
/// If `x`, `filter` or `bias` is shorter than the spec implies.
pub fn conv2d_forward(x: &[f32], filter: &[f32], bias: Option<&[f32]>, spec: &Conv2dSpec) -> Vec<f32> {
    assert_lengths(spec, Some(x.len()), Some(filter.len()), None);
    assert!(bias.is_none_or(|b| b.len() >= spec.out_c), "conv2d: bias too short");
    match dispatch::conv2d_forward(spec) {
        #[cfg(target_arch = "x86_64")]
        Conv::Direct(build) => crate::conv2d_direct::forward(build, x, filter, bias, spec),
        #[cfg(target_arch = "x86_64")]
        Conv::Winograd(tile) => crate::conv2d_winograd::plain::forward(x, filter, bias, spec, tile),
        Conv::Im2col => forward_im2col(x, filter, bias, spec),
    }
}

/// [`conv2d_forward`] by im2col + GEMM, for any spec.
pub(crate) fn forward_im2col(x: &[f32], filter: &[f32], bias: Option<&[f32]>, spec: &Conv2dSpec) -> Vec<f32> {
    let out_c = spec.out_c;
    let total_rows = spec.batch * spec.out_h * spec.out_w;
    if total_rows * out_c == 0 {
        return vec![0.0; total_rows * out_c];
    }
    let patch = spec.patch_len();
    let tile = tile_rows(spec);
    let weights = MatrixRef::row_major(filter, out_c);
    let pointwise = is_pointwise(spec);
    zeroed_chunks(total_rows * out_c, tile * out_c, worth_parallel(spec), |index, y| {
        let first_row = index * tile;
        let rows = y.len() / out_c;
        if let Some(bias) = bias {
            for row in y.chunks_exact_mut(out_c) {
                row.copy_from_slice(&bias[..out_c]);
            }
        }
        let accumulate = bias.is_some();
        if pointwise {
            let x = MatrixRef::row_major(&x[first_row * patch..(first_row + rows) * patch], patch);
            gemm_into(y, x, weights, rows, patch, out_c, accumulate, false);
        } else {
            with_scratch(rows * patch, |col| {
                im2col(x, spec, first_row, rows, col);
                let col = MatrixRef::row_major(col, patch);
                gemm_into(y, col, weights, rows, patch, out_c, accumulate, false);
            });
        }
    })
}

/// Gradient of [`conv2d_forward`] with respect to its input.
///
/// # Panics
/// If `dy` or `filter` is shorter than the spec implies.
pub fn conv2d_backward_input(dy: &[f32], filter: &[f32], spec: &Conv2dSpec) -> Vec<f32> {
    assert_lengths(spec, None, Some(filter.len()), Some(dy.len()));
    match dispatch::conv2d_input_gradient(spec) {
        #[cfg(target_arch = "x86_64")]
        Conv::Winograd(tile) => crate::conv2d_winograd::plain::backward_input(dy, filter, spec, tile),
        #[cfg(target_arch = "x86_64")]
        Conv::Direct(_) => unreachable!("no direct input gradient"),
        Conv::Im2col => backward_input_im2col(dy, filter, spec),
    }
}

/// [`conv2d_backward_input`] by im2col + GEMM, `dx = col2im(dY W^T)`, for any spec.
pub(crate) fn backward_input_im2col(dy: &[f32], filter: &[f32], spec: &Conv2dSpec) -> Vec<f32> {
    let (patch, out_c) = (spec.patch_len(), spec.out_c);
    let image_len = spec.in_h * spec.in_w * spec.in_c;
    let dx_len = spec.batch * image_len;
    if dx_len == 0 {
        return Vec::new();
    }
    // W^T viewed as [out_c, patch_len].
    let weights_t = MatrixRef::transposed(filter, out_c);
    let pixels = spec.out_h * spec.out_w;
    if is_pointwise(spec) {
        let rows = spec.batch * pixels;
        let dy = MatrixRef::row_major(dy, out_c);
        let mut dx = crate::buffers::take_zeroed(dx_len);
        gemm_into(&mut dx, dy, weights_t, rows, out_c, patch, false, true);
        return dx;
    }
    let tile = tile_rows(spec);
    // Tasks own whole images so their scatter-adds never meet; within a task, tiles run in
    // order.
    let images_per_task = (tile / pixels.max(1)).max(1);
    let parallel = worth_parallel(spec);
    zeroed_chunks(dx_len, images_per_task * image_len, parallel, |index, dx_task| {
        let first_image = index * images_per_task;
        let task_rows = dx_task.len() / image_len * pixels;
        let mut done = 0;
        while done < task_rows {
            let rows = tile.min(task_rows - done);
            let first_row = first_image * pixels + done;
            with_scratch(rows * patch, |dcol| {
                let dy = MatrixRef::row_major(&dy[first_row * out_c..], out_c);
                gemm_into(dcol, dy, weights_t, rows, out_c, patch, false, false);
                col2im_add(dcol, spec, first_row, rows, dx_task, first_image);
            });
            done += rows;
        }
    })
}

/// Gradient of [`conv2d_forward`] with respect to its filter: `dW = sum over tiles of
/// col^T dY`, HWIO. Bit-identical whatever the number of threads.
///
/// # Panics
/// If `x` or `dy` is shorter than the spec implies.
pub fn conv2d_backward_filter(x: &[f32], dy: &[f32], spec: &Conv2dSpec) -> Vec<f32> {
    assert_lengths(spec, Some(x.len()), None, Some(dy.len()));
    match dispatch::conv2d_filter_gradient(spec) {
        #[cfg(target_arch = "x86_64")]
        Conv::Direct(build) => crate::conv2d_direct::backward_filter(build, x, dy, spec),
        #[cfg(target_arch = "x86_64")]
        Conv::Winograd(tile) => crate::conv2d_winograd::plain::backward_filter(x, dy, spec, tile),
        Conv::Im2col => backward_filter_im2col(x, dy, spec),
    }
}

/// [`conv2d_backward_filter`] by im2col + GEMM, for any spec.
pub(crate) fn backward_filter_im2col(x: &[f32], dy: &[f32], spec: &Conv2dSpec) -> Vec<f32> {
    let (patch, out_c) = (spec.patch_len(), spec.out_c);
    let filter_len = patch * out_c;
    let total_rows = spec.batch * spec.out_h * spec.out_w;
    if filter_len == 0 || total_rows == 0 {
        return vec![0.0; filter_len];
    }
    let tile = tile_rows(spec);
    let tiles = total_rows.div_ceil(tile);
    let tiles_per_slot = tiles.div_ceil(MAX_FILTER_PARTIALS.min(tiles));
    let slots = tiles.div_ceil(tiles_per_slot);
    let pointwise = is_pointwise(spec);
    let partials = zeroed_chunks(slots * filter_len, filter_len, worth_parallel(spec), |slot, partial| {
        let first_tile = slot * tiles_per_slot;
        for t in first_tile..(first_tile + tiles_per_slot).min(tiles) {
            let first_row = t * tile;
            let rows = tile.min(total_rows - first_row);
            let dy = MatrixRef::row_major(&dy[first_row * out_c..], out_c);
            let accumulate = t != first_tile;
            if pointwise {
                // x^T viewed as [patch_len, rows].
                let x_t = MatrixRef::transposed(&x[first_row * patch..], patch);
                gemm_into(partial, x_t, dy, patch, rows, out_c, accumulate, false);
            } else {
                with_scratch(rows * patch, |col| {
                    im2col(x, spec, first_row, rows, col);
                    let col_t = MatrixRef::transposed(col, patch);
                    gemm_into(partial, col_t, dy, patch, rows, out_c, accumulate, false);
                });
            }
        }
    });
    // Sum the partials in slot order; each element's order is fixed, so splitting the
    // elements across threads changes nothing.
    let (first, rest) = partials.split_at(filter_len);
    let mut dw = first.to_vec();
    let add_rest = |offset: usize, chunk: &mut [f32]| {
        for partial in rest.chunks_exact(filter_len) {
            let partial = &partial[offset..offset + chunk.len()];
            for (d, p) in chunk.iter_mut().zip(partial) {
                *d += p;
            }
        }
    };
    if filter_len * slots >= crate::PARALLEL_MIN_ELEMENTS {
        let chunk = crate::PARALLEL_CHUNK;
        dw.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| add_rest(i * chunk, c));
    } else {
        add_rest(0, &mut dw);
    }
    dw
}

impl ConvOps for CpuBackend {
    fn conv2d(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &Conv2dSpec,
    ) -> Result<Storage> {
        let (x, filter) = (cpu_slice(x, "conv2d")?, cpu_slice(filter, "conv2d")?);
        let bias = bias.map(|s| cpu_slice(s, "conv2d")).transpose()?;
        Ok(store(self.run(|| conv2d_forward(x, filter, bias, spec))))
    }

    fn conv2d_backward_input(&self, dy: &Storage, filter: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let op = "conv2d_backward_input";
        let (dy, filter) = (cpu_slice(dy, op)?, cpu_slice(filter, op)?);
        Ok(store(self.run(|| conv2d_backward_input(dy, filter, spec))))
    }

    fn conv2d_backward_filter(&self, x: &Storage, dy: &Storage, spec: &Conv2dSpec) -> Result<Storage> {
        let op = "conv2d_backward_filter";
        let (x, dy) = (cpu_slice(x, op)?, cpu_slice(dy, op)?);
        Ok(store(self.run(|| conv2d_backward_filter(x, dy, spec))))
    }

    fn conv2d_max_pool(
        &self,
        x: &Storage,
        filter: &Storage,
        bias: Option<&Storage>,
        spec: &ConvPoolSpec,
    ) -> Result<(Storage, ConvPoolSaved)> {
        let plan = dispatch::conv2d_max_pool(spec);
        if plan == ConvPool::Unfused {
            return tensor::backend::conv2d_max_pool_unfused(self, x, filter, bias, spec);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let op = "conv2d_max_pool";
            let (x, filter) = (cpu_slice(x, op)?, cpu_slice(filter, op)?);
            let bias = bias.map(|s| cpu_slice(s, op)).transpose()?;
            let (pooled, winners) = self.run(|| crate::conv2d_pool::forward(plan, x, filter, bias, spec));
            Ok((store(pooled), ConvPoolSaved::Winners(store(winners))))
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("only x86-64 builds fuse")
    }

    fn conv2d_max_pool_backward(&self, args: &ConvPoolBackward<'_>) -> Result<ConvPoolGrads> {
        let winners = match args.saved {
            ConvPoolSaved::ConvOutput(y) => {
                return tensor::backend::conv2d_max_pool_backward_unfused(self, args, y)
            }
            ConvPoolSaved::Winners(winners) => winners,
        };
        let op = "conv2d_max_pool_backward";
        #[cfg(target_arch = "x86_64")]
        if let Some(plan) = dispatch::conv2d_max_pool_backward(args.spec) {
            let (x, filter) = (cpu_slice(args.x, op)?, cpu_slice(args.filter, op)?);
            let (winners, dpooled) = (cpu_slice(winners, op)?, cpu_slice(args.dpooled, op)?);
            let [dx, dw, db] = self.run(|| {
                crate::conv2d_pool::backward(plan, x, filter, winners, dpooled, args.spec, args.needs)
            });
            return Ok(ConvPoolGrads { input: dx.map(store), filter: dw.map(store), bias: db.map(store) });
        }
        let _ = winners;
        Err(TensorError::Backend(format!(
            "{op}: winners were saved for {:?}, a layer this CPU backend does not fuse",
            args.spec.conv.input_shape()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use tensor::{Padding, Shape};

    fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn spec(
        batch: usize,
        hw: (usize, usize),
        in_c: usize,
        kernel: (usize, usize),
        out_c: usize,
        stride: (usize, usize),
        padding: Padding,
    ) -> Conv2dSpec {
        let input = Shape::new([batch, hw.0, hw.1, in_c]);
        let filter = Shape::new([kernel.0, kernel.1, in_c, out_c]);
        Conv2dSpec::new(&input, &filter, stride, padding).unwrap()
    }

    /// Calls `f(x_index, filter_index, y_index)` for every multiply-add of the convolution.
    fn naive_taps(s: &Conv2dSpec, mut f: impl FnMut(usize, usize, usize)) {
        for b in 0..s.batch {
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    for ky in 0..s.kernel_h {
                        for kx in 0..s.kernel_w {
                            let iy = (oy * s.stride_h + ky) as isize - s.pad_top as isize;
                            let ix = (ox * s.stride_w + kx) as isize - s.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                                continue;
                            }
                            let (iy, ix) = (iy as usize, ix as usize);
                            for c in 0..s.in_c {
                                for o in 0..s.out_c {
                                    let xi = ((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c;
                                    let fi = ((ky * s.kernel_w + kx) * s.in_c + c) * s.out_c + o;
                                    let yi = ((b * s.out_h + oy) * s.out_w + ox) * s.out_c + o;
                                    f(xi, fi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g as f64 - w).abs() <= tol * scale, "element {i}: got {g}, want {w}");
        }
    }

    fn check_all(s: &Conv2dSpec, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let x = random(s.input_shape().numel(), &mut rng);
        let w = random(s.filter_shape().numel(), &mut rng);
        let bias = random(s.out_c, &mut rng);
        let dy = random(s.output_shape().numel(), &mut rng);

        let mut y = vec![0.0f64; dy.len()];
        for (i, yv) in y.iter_mut().enumerate() {
            *yv = bias[i % s.out_c] as f64;
        }
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        naive_taps(s, |xi, fi, yi| {
            y[yi] += x[xi] as f64 * w[fi] as f64;
            dx[xi] += dy[yi] as f64 * w[fi] as f64;
            dw[fi] += dy[yi] as f64 * x[xi] as f64;
        });
        assert_close(&conv2d_forward(&x, &w, Some(&bias), s), &y, 1e-5);
        let y_nobias: Vec<f64> = y.iter().enumerate().map(|(i, v)| v - bias[i % s.out_c] as f64).collect();
        assert_close(&conv2d_forward(&x, &w, None, s), &y_nobias, 1e-5);
        assert_close(&conv2d_backward_input(&dy, &w, s), &dx, 1e-5);
        assert_close(&conv2d_backward_filter(&x, &dy, s), &dw, 1e-5);
    }

    #[test]
    fn same_padding_stride_two_matches_reference() {
        let s = spec(3, (7, 9), 5, (3, 2), 4, (2, 2), Padding::Same);
        assert!(s.pad_top > 0 || s.pad_left > 0);
        check_all(&s, 10);
    }

    #[test]
    fn valid_stride_one_matches_reference() {
        check_all(&spec(3, (7, 9), 5, (3, 2), 4, (1, 1), Padding::Valid), 11);
        check_all(&spec(2, (6, 5), 3, (2, 3), 7, (1, 2), Padding::Same), 12);
    }

    #[test]
    fn mnist_first_layer_and_pointwise_match_reference() {
        // Single input channel, several tiles and task groups.
        check_all(&spec(9, (28, 28), 1, (5, 5), 20, (1, 1), Padding::Valid), 13);
        // 1x1 kernel: the im2col-free path.
        check_all(&spec(5, (9, 7), 6, (1, 1), 3, (1, 1), Padding::Same), 14);
        // Window larger than the stride with big patches: several tiles per image.
        check_all(&spec(2, (15, 13), 40, (3, 3), 5, (1, 1), Padding::Same), 15);
    }

    #[test]
    fn backward_filter_is_bit_identical_across_thread_counts() {
        let s = spec(64, (12, 12), 8, (5, 5), 16, (1, 1), Padding::Valid);
        assert!(s.batch * s.out_h * s.out_w > 4 * tile_rows(&s), "want several tiles");
        let mut rng = StdRng::seed_from_u64(16);
        let x = random(s.input_shape().numel(), &mut rng);
        let dy = random(s.output_shape().numel(), &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| conv2d_backward_filter(&x, &dy, &s))
        };
        let one = run(1);
        assert!(one.iter().any(|&v| v != 0.0));
        for threads in [2, 3] {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one), bits(&run(threads)));
        }
    }
}
