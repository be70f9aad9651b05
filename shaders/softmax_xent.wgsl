// Row-wise softmax / log-softmax, its gradient, and the fused softmax cross-entropy.
// One 64-invocation workgroup per row of [rows, cols]; row statistics are tree reductions in
// workgroup memory. Rows are shifted by their maximum before exponentiating.

struct Params {
    rows: u32,
    cols: u32,
    log: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // logits / y
@group(0) @binding(2) var<storage, read> x2: array<f32>;       // labels / dy
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // probs / dx
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;

const WG: u32 = 64u;
var<workgroup> scratch: array<f32, 64>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    scratch[lid] = v;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            scratch[lid] += scratch[lid + width];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
    scratch[lid] = v;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width /= 2u) {
        if (lid < width) {
            let o = scratch[lid + width];
            scratch[lid] = select(scratch[lid], o, o > scratch[lid]);
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

// The shift of a row: its maximum, or 0 when that is not finite (an all -inf row would give
// NaN from -inf - -inf).
fn row_shift(base: u32, lid: u32) -> f32 {
    var m = bitcast<f32>(0xff800000u);
    for (var c = lid; c < params.cols; c += WG) {
        let v = x[base + c];
        m = select(m, v, v > m);
    }
    m = workgroup_max(m, lid);
    return select(0.0, m, abs(m) <= 3.40282347e38);
}

fn row_exp_sum(base: u32, shift: f32, lid: u32) -> f32 {
    var s = 0.0;
    for (var c = lid; c < params.cols; c += WG) {
        s += exp(x[base + c] - shift);
    }
    return workgroup_sum(s, lid);
}

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    let shift = row_shift(base, lid);
    let sum = row_exp_sum(base, shift, lid);
    if (params.log != 0u) {
        let log_sum = log(sum);
        for (var c = lid; c < params.cols; c += WG) {
            out[base + c] = x[base + c] - shift - log_sum;
        }
    } else {
        let inv = 1.0 / sum;
        for (var c = lid; c < params.cols; c += WG) {
            out[base + c] = exp(x[base + c] - shift) * inv;
        }
    }
}

// x = y (the forward output), x2 = dy.
@compute @workgroup_size(64)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    var s = 0.0;
    for (var c = lid; c < params.cols; c += WG) {
        // log-softmax needs sum(dy), softmax sum(y * dy).
        s += select(x[base + c] * x2[base + c], x2[base + c], params.log != 0u);
    }
    let total = workgroup_sum(s, lid);
    for (var c = lid; c < params.cols; c += WG) {
        let y = x[base + c];
        let g = x2[base + c];
        out[base + c] = select(y * (g - total), g - exp(y) * total, params.log != 0u);
    }
}

// x = logits, x2 = labels; out = softmax(logits), loss[row] = -sum(labels * log_softmax).
@compute @workgroup_size(64)
fn softmax_cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    let shift = row_shift(base, lid);
    let sum = row_exp_sum(base, shift, lid);
    let log_sum = log(sum);
    let inv = 1.0 / sum;
    var t = 0.0;
    for (var c = lid; c < params.cols; c += WG) {
        let v = x[base + c];
        let label = x2[base + c];
        // A zero label contributes exactly 0, even where the log-probability is huge.
        if (label != 0.0) {
            t += label * (v - shift - log_sum);
        }
        out[base + c] = exp(v - shift) * inv;
    }
    let total = workgroup_sum(t, lid);
    if (lid == 0u) {
        loss[row] = -total;
    }
}
