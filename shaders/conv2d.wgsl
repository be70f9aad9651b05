// 2-D convolution (NHWC input, HWIO filter) and both of its gradients as implicit GEMMs: the
// im2col matrix is never materialised; load_a / load_b gather its elements from the image (or
// from dy) on the fly, with zeros for the padding. The tiling and the entry points are
// gemm_core.wgsl's (appended), the epilogue conv2d_store.wgsl's (plain output) or
// conv2d_pool_store.wgsl's (2x2 max pooling in registers).
//
// MODE 0, forward:          y[(b,oy,ox), co]  = sum_(ky,kx,ci) x[b, oy*sh+ky-pt, ox*sw+kx-pl, ci] f[ky,kx,ci,co]
// MODE 1, input gradient:   dx[(b,iy,ix), ci] = sum_(ky,kx,co) dy[b, oy, ox, co] f[ky,kx,ci,co]
//                           where iy = oy*sh+ky-pt (terms whose oy is not whole drop out)
// MODE 2, filter gradient:  df[(ky,kx,ci), co] = sum_(b,oy,ox) x[b, oy*sh+ky-pt, ...] dy[(b,oy,ox), co]
//                           split along the contracted axis into `products` slices of k_chunk,
//                           whose partial products the host sums.
//
// POOLED (a convolution followed by a 2x2, stride-2 max pooling, "conv-pool"):
//   MODE 0 runs its rows in window order, m = (b, py, px, wy, wx), so that the four rows of
//     each invocation's 4x4 block are one pooling window, which conv2d_pool_store.wgsl reduces
//     in registers; the full-size output is never written.
//   MODES 1, 2 read dy through the pooling: dy[b, oy, ox, co] is the pooled gradient
//     dpooled[b, oy/2, ox/2, co] where (oy, ox) is that window's winner (`winners`, the window
//     position 0..3 the forward pass kept), else 0; so neither the full-size dy nor a pooling
//     backward pass is ever materialised.
//
// The shapes are `override` constants, so each layer gets its own pipeline in which every
// division below is by a constant (a multiply and a shift), not by a uniform (a long
// instruction sequence per gathered element, which was most of the kernels' time).

override MODE: u32 = 0u;
override POOLED: bool = false;
override RELU: bool = false;        // conv-pool forward: a ReLU after the pooling
override IN_H: u32 = 1u;
override IN_W: u32 = 1u;
override IN_C: u32 = 1u;
override OUT_H: u32 = 1u;
override OUT_W: u32 = 1u;
override OUT_C: u32 = 1u;
override KERNEL_H: u32 = 1u;
override KERNEL_W: u32 = 1u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override PAD_TOP: u32 = 0u;
override PAD_LEFT: u32 = 0u;
override POOL_OUT_H: u32 = 1u;     // the pooled output's height and width (POOLED)
override POOL_OUT_W: u32 = 1u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    products: u32, // split-K slices: the grid's z extent
    tiles_m: u32,
    tiles_n: u32,
    a_k_contig: u32,
    b_n_contig: u32,
    has_bias: u32,
    k_chunk: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;       // x (modes 0, 2) or dy (mode 1)
@group(0) @binding(2) var<storage, read> b: array<f32>;       // filter (modes 0, 1) or dy (mode 2)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<storage, read> winners: array<f32>; // POOLED modes 1, 2

fn k_range(z: u32) -> vec2<u32> {
    if (MODE == 2u) {
        let start = z * params.k_chunk;
        return vec2<u32>(start, min(params.k, start + params.k_chunk));
    }
    return vec2<u32>(0u, params.k);
}

// x[image, iy, ix, ci] with (iy, ix) given before removing the padding; 0 outside the image.
fn image_value(image: u32, iy_padded: u32, ix_padded: u32, ci: u32) -> f32 {
    let iy = i32(iy_padded) - i32(PAD_TOP);
    let ix = i32(ix_padded) - i32(PAD_LEFT);
    if (iy < 0 || ix < 0 || iy >= i32(IN_H) || ix >= i32(IN_W)) {
        return 0.0;
    }
    return a[((image * IN_H + u32(iy)) * IN_W + u32(ix)) * IN_C + ci];
}

// Where dy[image, oy, ox, co] is read: its index in dy (in dpooled when POOLED), or -1 where
// it is zero (POOLED: not its window's winner, or outside every window).
fn dy_index(image: u32, oy: u32, ox: u32, co: u32) -> i32 {
    if (!POOLED) {
        return i32(((image * OUT_H + oy) * OUT_W + ox) * OUT_C + co);
    }
    let py = oy / 2u;
    let px = ox / 2u;
    if (py >= POOL_OUT_H || px >= POOL_OUT_W) {
        return -1;
    }
    let i = ((image * POOL_OUT_H + py) * POOL_OUT_W + px) * OUT_C + co;
    if (u32(winners[i]) != (oy % 2u) * 2u + ox % 2u) {
        return -1;
    }
    return i32(i);
}

// (image, oy, ox) of flat index i over the convolution's output positions.
fn output_position(i: u32) -> vec3<u32> {
    let ox = i % OUT_W;
    let t = i / OUT_W;
    return vec3<u32>(t / OUT_H, t % OUT_H, ox);
}

// Output position (image, oy, ox) of forward row m.
fn forward_row(m: u32) -> vec3<u32> {
    if (POOLED) {
        let w = m % 4u;
        let p = m / 4u;
        let px = p % POOL_OUT_W;
        let t = p / POOL_OUT_W;
        return vec3<u32>(t / POOL_OUT_H, (t % POOL_OUT_H) * 2u + w / 2u, px * 2u + w % 2u);
    }
    return output_position(m);
}

// Element `tap` = (ky, kx, ci) of the input patch under output position `pos` (image, oy, ox).
fn patch_value(pos: vec3<u32>, tap: u32) -> f32 {
    let r = tap / IN_C;
    return image_value(pos.x, pos.y * STRIDE_H + r / KERNEL_W, pos.z * STRIDE_W + r % KERNEL_W, tap % IN_C);
}

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    if (MODE == 0u) {
        return patch_value(forward_row(m), k);
    }
    if (MODE == 1u) {
        let ix = m % IN_W;
        let t = m / IN_W;
        let iy = t % IN_H;
        let image = t / IN_H;
        let co = k % OUT_C;
        let r = k / OUT_C;
        let kx = r % KERNEL_W;
        let ky = r / KERNEL_W;
        let sy = iy + PAD_TOP;
        let sx = ix + PAD_LEFT;
        if (sy < ky || sx < kx) {
            return 0.0;
        }
        let ty = sy - ky;
        let tx = sx - kx;
        if (ty % STRIDE_H != 0u || tx % STRIDE_W != 0u) {
            return 0.0;
        }
        let oy = ty / STRIDE_H;
        let ox = tx / STRIDE_W;
        if (oy >= OUT_H || ox >= OUT_W) {
            return 0.0;
        }
        let i = dy_index(image, oy, ox, co);
        if (i < 0) {
            return 0.0;
        }
        return a[i];
    }
    return patch_value(output_position(k), m);
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    if (MODE == 1u) {
        // k = (ky, kx, co), n = ci: f[ky, kx, ci, co].
        let co = k % OUT_C;
        let r = k / OUT_C;
        return b[(r * IN_C + n) * OUT_C + co];
    }
    if (MODE == 2u && POOLED) {
        // k = (image, oy, ox), n = co.
        let pos = output_position(k);
        let i = dy_index(pos.x, pos.y, pos.z, n);
        if (i < 0) {
            return 0.0;
        }
        return b[i];
    }
    return b[k * OUT_C + n];
}
