// Matrix products C[b] = op(A[b]) op(B[b]) (+ bias on every row), all four transpose
// combinations, batched. The tiling is gemm_core.wgsl's (appended to this file).
//
// Products with few output tiles and a long contraction are split along k ("split-K"): the
// core's product index z is then (b, slice) and each slice writes its partial product to
// c[z]; the host sums the slices. The bias is added by slice 0 only.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    tiles_m: u32,
    tiles_n: u32,
    a_k_contig: u32,
    b_n_contig: u32,
    trans_a: u32,
    trans_b: u32,
    has_bias: u32,
    splits: u32,   // slices of the contraction per product (1 = no split)
    k_chunk: u32,  // contraction length of one slice
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn k_range(z: u32) -> vec2<u32> {
    let start = (z % params.splits) * params.k_chunk;
    return vec2<u32>(start, min(params.k, start + params.k_chunk));
}

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let base = (z / params.splits) * params.m * params.k;
    if (params.trans_a != 0u) {
        return a[base + k * params.m + m];
    }
    return a[base + m * params.k + k];
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let base = (z / params.splits) * params.k * params.n;
    if (params.trans_b != 0u) {
        return b[base + n * params.k + k];
    }
    return b[base + k * params.n + n];
}

fn store_c(z: u32, m: u32, n: u32, v: f32) {
    var r = v;
    if (params.has_bias != 0u && z % params.splits == 0u) {
        r += bias[n];
    }
    c[(z * params.m + m) * params.n + n] = r;
}

@compute @workgroup_size(256)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    gemm_64x64(lid, wid.y * nwg.x + wid.x);
}

@compute @workgroup_size(256)
fn matmul_big(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    gemm_128x128(lid, wid.y * nwg.x + wid.x);
}
