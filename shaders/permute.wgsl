// Axis permutations: output element i reads the input at tensor::shape::PermuteSpec::source(i),
// the sum over output axes of (its index along the axis) times the input's stride there.

struct Params {
    n: u32,            // output elements
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    out_dims: array<vec4<u32>, 2>,   // output dimensions, outermost first (MAX_PERMUTE_RANK = 8)
    in_strides: array<vec4<u32>, 2>, // per output axis, the input's stride along it
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn permute(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= params.n) {
        return;
    }
    var rest = i;
    var offset = 0u;
    for (var k = i32(params.rank) - 1; k >= 0; k -= 1) {
        let d = params.out_dims[k / 4][k % 4];
        offset += (rest % d) * params.in_strides[k / 4][k % 4];
        rest /= d;
    }
    out[i] = x[offset];
}
