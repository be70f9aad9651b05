// 2-D pooling over NHWC input (max, average, L2) and its gradient.
//
// Windows are clipped to the image: padding is never read, never wins a max and is not counted
// in an average (TensorFlow's semantics); a window wholly in the padding gives 0. The gradient
// gathers rather than scatters: one invocation per input element sums the contributions of the
// windows that contain it, so no atomics are needed.

struct Params {
    n: u32,        // invocations: output elements (forward) or input elements (backward)
    in_h: u32,
    in_w: u32,
    channels: u32,
    out_h: u32,
    out_w: u32,
    pool_h: u32,
    pool_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    kind: u32,     // 0 = max, 1 = average, 2 = L2
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// In-bounds input rows [x, y) and columns [z, w) of output pixel (oy, ox).
fn window(oy: u32, ox: u32) -> vec4<u32> {
    let top = i32(oy * params.stride_h) - i32(params.pad_top);
    let left = i32(ox * params.stride_w) - i32(params.pad_left);
    let r0 = max(top, 0);
    let r1 = min(top + i32(params.pool_h), i32(params.in_h));
    let c0 = max(left, 0);
    let c1 = min(left + i32(params.pool_w), i32(params.in_w));
    return vec4<u32>(u32(r0), u32(max(r1, r0)), u32(c0), u32(max(c1, c0)));
}

fn at(image: u32, iy: u32, ix: u32, ch: u32) -> u32 {
    return ((image * params.in_h + iy) * params.in_w + ix) * params.channels + ch;
}

@compute @workgroup_size(256)
fn pool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let ch = i % params.channels;
    var t = i / params.channels;
    let ox = t % params.out_w;
    t /= params.out_w;
    let oy = t % params.out_h;
    let image = t / params.out_h;
    let w = window(oy, ox);
    if (w.x >= w.y || w.z >= w.w) {
        out[i] = 0.0;
        return;
    }
    if (params.kind == 0u) {
        var best = x[at(image, w.x, w.z, ch)];
        for (var iy = w.x; iy < w.y; iy++) {
            for (var ix = w.z; ix < w.w; ix++) {
                let v = x[at(image, iy, ix, ch)];
                best = select(best, v, v > best);
            }
        }
        out[i] = best;
        return;
    }
    var s = 0.0;
    for (var iy = w.x; iy < w.y; iy++) {
        for (var ix = w.z; ix < w.w; ix++) {
            let v = x[at(image, iy, ix, ch)];
            s += select(v, v * v, params.kind == 2u);
        }
    }
    if (params.kind == 1u) {
        out[i] = s * (1.0 / f32((w.y - w.x) * (w.w - w.z)));
    } else {
        out[i] = sqrt(s);
    }
}

// Output rows (or columns) whose window covers input row iy: [x, y).
fn covering(i: u32, stride: u32, pad: u32, window_len: u32, out_len: u32) -> vec2<u32> {
    // o * stride - pad <= i < o * stride - pad + window_len
    let hi = i + pad; // o * stride <= hi
    let first = select(0u, (hi + 1u - window_len + stride - 1u) / stride, hi + 1u > window_len);
    let last = min(hi / stride + 1u, out_len);
    return vec2<u32>(first, max(last, first));
}

@compute @workgroup_size(256)
fn pool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let ch = i % params.channels;
    var t = i / params.channels;
    let ix = t % params.in_w;
    t /= params.in_w;
    let iy = t % params.in_h;
    let image = t / params.in_h;
    let rows = covering(iy, params.stride_h, params.pad_top, params.pool_h, params.out_h);
    let cols = covering(ix, params.stride_w, params.pad_left, params.pool_w, params.out_w);
    let xv = x[i];
    var g = 0.0;
    for (var oy = rows.x; oy < rows.y; oy++) {
        for (var ox = cols.x; ox < cols.y; ox++) {
            let o = ((image * params.out_h + oy) * params.out_w + ox) * params.channels + ch;
            let w = window(oy, ox);
            if (params.kind == 0u) {
                // The window's first maximum in scan order takes the whole gradient.
                var best = x[at(image, w.x, w.z, ch)];
                var best_y = w.x;
                var best_x = w.z;
                for (var ry = w.x; ry < w.y; ry++) {
                    for (var rx = w.z; rx < w.w; rx++) {
                        let v = x[at(image, ry, rx, ch)];
                        if (v > best) {
                            best = v;
                            best_y = ry;
                            best_x = rx;
                        }
                    }
                }
                if (best_y == iy && best_x == ix) {
                    g += dy[o];
                }
            } else if (params.kind == 1u) {
                g += dy[o] * (1.0 / f32((w.y - w.x) * (w.w - w.z)));
            } else {
                let norm = y[o];
                if (norm != 0.0) {
                    g += dy[o] * xv / norm;
                }
            }
        }
    }
    out[i] = g;
}
