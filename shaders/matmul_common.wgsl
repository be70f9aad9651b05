// Matrix products C[b] = op(A[b]) op(B[b]) (+ bias on every row), all four transpose
// combinations, batched: the parameters and the output shared by the two matmul modules,
// which differ only in how they read A and B:
//   matmul.wgsl       element by element (any shape);
//   matmul_vec4.wgsl  four elements per read, when the operands' contiguous axes allow it.
// The tiling and the entry points are gemm_core.wgsl's (appended to both modules).
//
// Products with few output tiles and a long contraction are split along k ("split-K"): the
// core's product index z is then (b, slice) and each slice writes its partial product to
// c[z]; the host sums the slices. The bias is added by slice 0 only.

// The transposes and the split count are pipeline constants (each combination compiles once),
// so the operand fetches in the inner loop carry no branches or divisions by uniforms.
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override SPLITS: u32 = 1u;     // slices of the contraction per product (1 = no split)

struct Params {
    m: u32,
    n: u32,
    k: u32,
    products: u32, // products times slices: the grid's z extent
    tiles_m: u32,
    tiles_n: u32,
    a_k_contig: u32,
    b_n_contig: u32,
    has_bias: u32,
    k_chunk: u32,  // contraction length of one slice (a multiple of 16)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn k_range(z: u32) -> vec2<u32> {
    let start = (z % SPLITS) * params.k_chunk;
    return vec2<u32>(start, min(params.k, start + params.k_chunk));
}

// Where product z's operands start in a and b (in elements).
fn a_base(z: u32) -> u32 {
    return (z / SPLITS) * params.m * params.k;
}

fn b_base(z: u32) -> u32 {
    return (z / SPLITS) * params.k * params.n;
}

// Element offsets of op(A)[m, k] and op(B)[k, n] in their (row-major) buffers.
fn a_index(z: u32, m: u32, k: u32) -> u32 {
    if (TRANS_A) {
        return a_base(z) + k * params.m + m;
    }
    return a_base(z) + m * params.k + k;
}

fn b_index(z: u32, k: u32, n: u32) -> u32 {
    if (TRANS_B) {
        return b_base(z) + n * params.k + k;
    }
    return b_base(z) + k * params.n + n;
}

fn store_c(z: u32, m: u32, n: u32, v: f32) {
    var r = v;
    if (params.has_bias != 0u && z % SPLITS == 0u) {
        r += bias[n];
    }
    c[(z * params.m + m) * params.n + n] = r;
}
