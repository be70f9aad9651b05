// Reductions of [outer, reduced, inner] over the middle axis, and row argmax.
//
// A long reduced axis is split into `chunks` pieces of `chunk_len` rows that are reduced in
// parallel into [outer, chunks, inner] partials; the host then reduces the partials with the
// same kernel (chunks = 1). So both kernels write out[(o * chunks + ch) * inner + i].

struct Params {
    outer: u32,
    reduced: u32,
    inner: u32,
    op: u32,        // 0 = sum, 1 = max
    chunk_len: u32,
    chunks: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;


fn identity() -> f32 {
    return select(0.0, bitcast<f32>(0xff800000u), params.op == 1u);
}

fn combine(acc: f32, v: f32) -> f32 {
    if (params.op == 0u) {
        return acc + v;
    }
    // Strictly greater wins, so NaNs are skipped (as on the CPU).
    return select(acc, v, v > acc);
}

// inner > 1: one invocation per output column of a chunk; neighbours read neighbouring columns.
@compute @workgroup_size(256)
fn reduce_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= params.outer * params.chunks * params.inner) {
        return;
    }
    let col = i % params.inner;
    let t = i / params.inner;
    let ch = t % params.chunks;
    let o = t / params.chunks;
    let r0 = ch * params.chunk_len;
    let r1 = min(params.reduced, r0 + params.chunk_len);
    var acc = identity();
    var at = (o * params.reduced + r0) * params.inner + col;
    for (var r = r0; r < r1; r++) {
        acc = combine(acc, x[at]);
        at += params.inner;
    }
    out[i] = acc;
}

var<workgroup> partial: array<f32, 256>;
var<workgroup> partial_index: array<u32, 256>;

// inner == 1: one workgroup per (row, chunk), a tree reduction in workgroup memory.
@compute @workgroup_size(256)
fn reduce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    if (g >= params.outer * params.chunks) {
        return;
    }
    let ch = g % params.chunks;
    let o = g / params.chunks;
    let r0 = ch * params.chunk_len;
    let r1 = min(params.reduced, r0 + params.chunk_len);
    var acc = identity();
    for (var r = r0 + lid; r < r1; r += 256u) {
        acc = combine(acc, x[o * params.reduced + r]);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width /= 2u) {
        if (lid < width) {
            partial[lid] = combine(partial[lid], partial[lid + width]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[g] = partial[0];
    }
}

// Index of the first largest value of each row of [outer, reduced] (params.inner unused), as
// f32; NaNs are never chosen and a row without a value above -inf gives 0.
@compute @workgroup_size(256)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.outer) {
        return;
    }
    var best = bitcast<f32>(0xff800000u);
    var best_at = 0xffffffffu;
    for (var c = lid; c < params.reduced; c += 256u) {
        let v = x[row * params.reduced + c];
        if (v > best) {
            best = v;
            best_at = c;
        }
    }
    partial[lid] = best;
    partial_index[lid] = best_at;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width /= 2u) {
        if (lid < width) {
            let v = partial[lid + width];
            let at = partial_index[lid + width];
            let mine = partial[lid];
            let mine_at = partial_index[lid];
            if (v > mine || (v == mine && at < mine_at)) {
                partial[lid] = v;
                partial_index[lid] = at;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let at = partial_index[0];
        out[row] = f32(select(at, 0u, at == 0xffffffffu));
    }
}
