//! Max pooling with 2x2 windows, stride 2 and no padding, whose windows tile the input exactly
//! (even height and width): Keras' default `MaxPooling2D()`, used by every MNIST model. The
//! general kernels in [`crate::pool`] walk windows through per-pixel range tables and, for the
//! gradient, zero the whole input gradient and then scatter into it; here every window is the
//! same four channel vectors, and the gradient writes each element exactly once, so it needs
//! no zeroing pass. Both loops are branch-free selects over a contiguous channel vector, which
//! the compiler vectorises; an AVX2 build of them is picked at run time where the CPU has it.
//!
//! Semantics are the general kernels' exactly: the maximum keeps the first of equal values in
//! scan order (strictly greater wins, so a NaN never replaces a value), and the gradient goes
//! to that first maximum.

use crate::buffers::build_chunks;
use std::mem::MaybeUninit;
use tensor::shape::Pool2dSpec;

/// Whether [`max_pool`] / [`max_pool_backward`] handle `spec`.
pub fn takes(spec: &Pool2dSpec) -> bool {
    spec.tiles_2x2()
}

/// Max-pools `x` (`[batch, 2*out_h, 2*out_w, c]`) to `[batch, out_h, out_w, c]`.
pub fn max_pool(x: &[f32], spec: &Pool2dSpec, parallel: bool) -> Vec<f32> {
    debug_assert!(takes(spec));
    let c = spec.channels;
    let (image_in, image_out) = (spec.in_h * spec.in_w * c, spec.out_h * spec.out_w * c);
    assert!(x.len() >= spec.batch * image_in, "max_pool: input too short");
    let fill = |image: usize, y: &mut [MaybeUninit<f32>]| {
        let x = &x[image * image_in..(image + 1) * image_in];
        #[cfg(target_arch = "x86_64")]
        if crate::isa::features().avx2 {
            // SAFETY: the CPU has AVX2.
            return unsafe { forward_image_avx2(x, y, spec) };
        }
        forward_image(x, y, spec)
    };
    // SAFETY: forward_image writes every element of its image's output.
    unsafe { build_chunks(spec.batch * image_out, image_out, parallel, fill) }
}

/// Gradient of [`max_pool`] with respect to its input, from the forward input `x` and the
/// output gradient `dy`.
pub fn max_pool_backward(x: &[f32], dy: &[f32], spec: &Pool2dSpec, parallel: bool) -> Vec<f32> {
    debug_assert!(takes(spec));
    let c = spec.channels;
    let (image_in, image_out) = (spec.in_h * spec.in_w * c, spec.out_h * spec.out_w * c);
    assert!(x.len() >= spec.batch * image_in, "max_pool_backward: input too short");
    assert!(dy.len() >= spec.batch * image_out, "max_pool_backward: dy too short");
    let fill = |image: usize, dx: &mut [MaybeUninit<f32>]| {
        let x = &x[image * image_in..(image + 1) * image_in];
        let dy = &dy[image * image_out..(image + 1) * image_out];
        #[cfg(target_arch = "x86_64")]
        if crate::isa::features().avx2 {
            // SAFETY: the CPU has AVX2.
            return unsafe { backward_image_avx2(x, dy, dx, spec) };
        }
        backward_image(x, dy, dx, spec)
    };
    // SAFETY: backward_image writes every element of its image's input gradient (the windows
    // tile the image exactly).
    unsafe { build_chunks(spec.batch * image_in, image_in, parallel, fill) }
}

/// The four channel vectors of window (`oy`, `ox`): top-left, top-right, bottom-left,
/// bottom-right, as offsets into the image.
#[inline(always)]
fn window(spec: &Pool2dSpec, oy: usize, ox: usize) -> [usize; 4] {
    let c = spec.channels;
    let top = (2 * oy * spec.in_w + 2 * ox) * c;
    let bottom = top + spec.in_w * c;
    [top, top + c, bottom, bottom + c]
}

/// The maximum of a window's values `[a, b, d, e]` (scan order), and whether `b`, `d` and
/// `e` each beat the maximum before them: the first strictly greatest wins, so a NaN never
/// replaces a value. Selects, not branches, so that the callers' loops vectorise; every
/// kernel that pools 2x2 windows decides its winners here (`norm_pool` too).
#[inline(always)]
pub(crate) fn first_max([a, b, d, e]: [f32; 4]) -> (f32, [bool; 3]) {
    let gb = b > a;
    let m = if gb { b } else { a };
    let gd = d > m;
    let m = if gd { d } else { m };
    let ge = e > m;
    (if ge { e } else { m }, [gb, gd, ge])
}

#[inline(always)]
fn forward_image(x: &[f32], y: &mut [MaybeUninit<f32>], spec: &Pool2dSpec) {
    let c = spec.channels;
    for oy in 0..spec.out_h {
        for ox in 0..spec.out_w {
            let [a, b, d, e] = window(spec, oy, ox);
            let out = &mut y[(oy * spec.out_w + ox) * c..][..c];
            let (xa, xb, xd, xe) = (&x[a..][..c], &x[b..][..c], &x[d..][..c], &x[e..][..c]);
            for i in 0..c {
                out[i].write(first_max([xa[i], xb[i], xd[i], xe[i]]).0);
            }
        }
    }
}

#[inline(always)]
fn backward_image(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], spec: &Pool2dSpec) {
    let c = spec.channels;
    for oy in 0..spec.out_h {
        for ox in 0..spec.out_w {
            let [a, b, d, e] = window(spec, oy, ox);
            let g = &dy[(oy * spec.out_w + ox) * c..][..c];
            let (xa, xb, xd, xe) = (&x[a..][..c], &x[b..][..c], &x[d..][..c], &x[e..][..c]);
            // Four disjoint output vectors (a + c = b, b + c <= d, d + c = e).
            let (top, bottom) = dx.split_at_mut(d);
            let (da, db) = top[a..][..2 * c].split_at_mut(c);
            let (dd, de) = bottom[..2 * c].split_at_mut(c);
            let outs = da.iter_mut().zip(db.iter_mut()).zip(dd.iter_mut()).zip(de.iter_mut());
            let taps = xa.iter().zip(xb).zip(xd).zip(xe).zip(g);
            for ((((oa, ob), od), oe), ((((&va, &vb), &vd), &ve), &g)) in outs.zip(taps) {
                // Which tap wins, decided as the forward pass does; as masks, not branches.
                let (_, [gb, gd, ge]) = first_max([va, vb, vd, ve]);
                oa.write(if !(gb | gd | ge) { g } else { 0.0 });
                ob.write(if gb & !(gd | ge) { g } else { 0.0 });
                od.write(if gd & !ge { g } else { 0.0 });
                oe.write(if ge { g } else { 0.0 });
            }
        }
    }
}

// The same loops compiled for AVX2 (8 lanes instead of SSE2's 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn forward_image_avx2(x: &[f32], y: &mut [MaybeUninit<f32>], spec: &Pool2dSpec) {
    forward_image(x, y, spec)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn backward_image_avx2(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>], spec: &Pool2dSpec) {
    backward_image(x, dy, dx, spec)
}
