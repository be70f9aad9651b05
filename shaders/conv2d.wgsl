// 2-D convolution (NHWC input, HWIO filter) and both of its gradients as implicit GEMMs: the
// im2col matrix is never materialised; load_a gathers its elements from the image (or from
// dy) on the fly, with zeros for the padding. The tiling and the entry points are
// gemm_core.wgsl's (appended).
//
// mode 0, forward:          y[(b,oy,ox), co]  = sum_(ky,kx,ci) x[b, oy*sh+ky-pt, ox*sw+kx-pl, ci] f[ky,kx,ci,co]
// mode 1, input gradient:   dx[(b,iy,ix), ci] = sum_(ky,kx,co) dy[b, oy, ox, co] f[ky,kx,ci,co]
//                           where iy = oy*sh+ky-pt (terms whose oy is not whole drop out)
// mode 2, filter gradient:  df[(ky,kx,ci), co] = sum_(b,oy,ox) x[b, oy*sh+ky-pt, ...] dy[(b,oy,ox), co]
//                           split along the contracted axis into `batch` slices of k_chunk,
//                           whose partial products the host sums.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    tiles_m: u32,
    tiles_n: u32,
    a_k_contig: u32,
    b_n_contig: u32,
    mode: u32,
    has_bias: u32,
    k_chunk: u32,
    _pad0: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;    // x (modes 0, 2) or dy (mode 1)
@group(0) @binding(2) var<storage, read> b: array<f32>;    // filter (modes 0, 1) or dy (mode 2)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn k_range(z: u32) -> vec2<u32> {
    if (params.mode == 2u) {
        let start = z * params.k_chunk;
        return vec2<u32>(start, min(params.k, start + params.k_chunk));
    }
    return vec2<u32>(0u, params.k);
}

// x[image, iy, ix, ci] with (iy, ix) given before removing the padding; 0 outside the image.
fn image_value(image: u32, iy_padded: u32, ix_padded: u32, ci: u32) -> f32 {
    let iy = i32(iy_padded) - i32(params.pad_top);
    let ix = i32(ix_padded) - i32(params.pad_left);
    if (iy < 0 || ix < 0 || iy >= i32(params.in_h) || ix >= i32(params.in_w)) {
        return 0.0;
    }
    return a[((image * params.in_h + u32(iy)) * params.in_w + u32(ix)) * params.in_c + ci];
}

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    switch params.mode {
        case 0u: {
            let ox = m % params.out_w;
            let t = m / params.out_w;
            let oy = t % params.out_h;
            let image = t / params.out_h;
            let ci = k % params.in_c;
            let r = k / params.in_c;
            let kx = r % params.kernel_w;
            let ky = r / params.kernel_w;
            return image_value(image, oy * params.stride_h + ky, ox * params.stride_w + kx, ci);
        }
        case 1u: {
            let ix = m % params.in_w;
            let t = m / params.in_w;
            let iy = t % params.in_h;
            let image = t / params.in_h;
            let co = k % params.out_c;
            let r = k / params.out_c;
            let kx = r % params.kernel_w;
            let ky = r / params.kernel_w;
            let sy = iy + params.pad_top;
            let sx = ix + params.pad_left;
            if (sy < ky || sx < kx) {
                return 0.0;
            }
            let ty = sy - ky;
            let tx = sx - kx;
            if (ty % params.stride_h != 0u || tx % params.stride_w != 0u) {
                return 0.0;
            }
            let oy = ty / params.stride_h;
            let ox = tx / params.stride_w;
            if (oy >= params.out_h || ox >= params.out_w) {
                return 0.0;
            }
            return a[((image * params.out_h + oy) * params.out_w + ox) * params.out_c + co];
        }
        default: {
            let ci = m % params.in_c;
            let r = m / params.in_c;
            let kx = r % params.kernel_w;
            let ky = r / params.kernel_w;
            let ox = k % params.out_w;
            let t = k / params.out_w;
            let oy = t % params.out_h;
            let image = t / params.out_h;
            return image_value(image, oy * params.stride_h + ky, ox * params.stride_w + kx, ci);
        }
    }
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    switch params.mode {
        case 0u: {
            return b[k * params.out_c + n];
        }
        case 1u: {
            // k = (ky, kx, co), n = ci: f[ky, kx, ci, co].
            let co = k % params.out_c;
            let r = k / params.out_c;
            return b[(r * params.in_c + n) * params.out_c + co];
        }
        default: {
            return b[k * params.out_c + n];
        }
    }
}

fn store_c(z: u32, m: u32, n: u32, v: f32) {
    var r = v;
    if (params.has_bias != 0u) {
        r += bias[n];
    }
    c[(z * params.m + m) * params.n + n] = r;
}
