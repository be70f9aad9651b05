// Data movement: concatenation, slicing, row gathers, and dropout masks.

struct Params {
    n: u32,   // output elements this dispatch writes
    p0: u32,
    p1: u32,
    p2: u32,
    p3: u32,
    p4: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// One part [outer, p0] of a concatenation into columns p2.. of [outer, p1].
@compute @workgroup_size(256)
fn concat_part(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        let row = i / params.p0;
        let col = i % params.p0;
        out[row * params.p1 + params.p2 + col] = x[i];
    }
}

// Columns p1..p1 + p2 of [outer, p0].
@compute @workgroup_size(256)
fn narrow(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        let row = i / params.p2;
        let col = i % params.p2;
        out[i] = x[row * params.p0 + params.p1 + col];
    }
}

// Rows indices[r] (of p0 values each) of x, stacked.
@compute @workgroup_size(256)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        let row = i / params.p0;
        let col = i % params.p0;
        out[i] = x[indices[row] * params.p0 + col];
    }
}

// tensor::random::hash32 ("lowbias32").
fn hash32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// Dropout mask: p0, p1 = seed keys, p2 = rate bits, p3 = keep scale bits. The same 24-bit
// uniform as tensor::random::uniform_with_keys, so masks match the CPU's bit for bit.
@compute @workgroup_size(256)
fn dropout_mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        let h = hash32(hash32(i ^ params.p0) ^ params.p1);
        let u = f32(h >> 8u) * (1.0 / 16777216.0);
        out[i] = select(0.0, bitcast<f32>(params.p3), u >= bitcast<f32>(params.p2));
    }
}
