// ---------------------------------------------------------------------------------------------
// gemm_core.wgsl: the tiled GEMM shared by matmul.wgsl and conv2d.wgsl, appended to each of
// them when the module is built (src/shaders.rs), so it is not a module on its own. The family
// file supplies:
//   params.{m, n, k, batch, tiles_m, tiles_n, a_k_contig, b_n_contig}
//   fn k_range(z: u32) -> vec2<u32>           contracted range [x, y) of product z
//   fn load_a(z: u32, m: u32, k: u32) -> f32   op(A)[m, k], called only for m < M, k in range
//   fn load_b(z: u32, k: u32, n: u32) -> f32   op(B)[k, n], likewise
//   fn store_c(z: u32, m: u32, n: u32, v: f32) called only for m < M, n < N
// `a_k_contig` / `b_n_contig` say along which axis an operand is contiguous in memory, so that
// neighbouring invocations load neighbouring addresses.
//
// Each workgroup computes a BM x BN tile of one product; each of its 256 invocations a 4x4
// (64x64 tile) or 8x8 (128x128 tile) block, held in named vec4 accumulators: dynamically
// indexed private arrays would spill to slow local memory. Both operand tiles are stored
// k-major in workgroup memory (A transposed), padded by one vec4 per row against bank
// conflicts, so every workgroup read in the inner loop is one vec4.
// ---------------------------------------------------------------------------------------------

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const ROW: u32 = 17u; // vec4s per k-row of a 64-wide tile, one of padding

var<workgroup> tile_a: array<vec4<f32>, 272>; // BK * ROW
var<workgroup> tile_b: array<vec4<f32>, 272>;

fn store_row(z: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.n) {
            store_c(z, row, col + j, v[j]);
        }
    }
}

fn gemm_64x64(lid: u32, group: u32) {
    let tiles = params.tiles_m * params.tiles_n;
    let z = group / tiles;
    if (z >= params.batch) {
        return;
    }
    let t = group % tiles;
    let m0 = (t / params.tiles_n) * BM;
    let n0 = (t % params.tiles_n) * BN;
    let tx = lid % 16u;
    let ty = lid / 16u;
    let kr = k_range(z);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k0 = kr.x; k0 < kr.y; k0 += BK) {
        for (var j = 0u; j < 4u; j++) {
            let e = lid + j * 256u;
            var mm = e / BK;
            var ka = e % BK;
            if (params.a_k_contig == 0u) {
                mm = e % BM;
                ka = e / BM;
            }
            var va = 0.0;
            if (m0 + mm < params.m && k0 + ka < kr.y) {
                va = load_a(z, m0 + mm, k0 + ka);
            }
            tile_a[ka * ROW + mm / 4u][mm % 4u] = va;
            var nn = e % BN;
            var kb = e / BN;
            if (params.b_n_contig == 0u) {
                nn = e / BK;
                kb = e % BK;
            }
            var vb = 0.0;
            if (n0 + nn < params.n && k0 + kb < kr.y) {
                vb = load_b(z, k0 + kb, n0 + nn);
            }
            tile_b[kb * ROW + nn / 4u][nn % 4u] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = tile_a[kk * ROW + ty];
            let b = tile_b[kk * ROW + tx];
            c0 += a.x * b;
            c1 += a.y * b;
            c2 += a.z * b;
            c3 += a.w * b;
        }
        workgroupBarrier();
    }
    let row = m0 + ty * 4u;
    let col = n0 + tx * 4u;
    store_row(z, row, col, c0);
    store_row(z, row + 1u, col, c1);
    store_row(z, row + 2u, col, c2);
    store_row(z, row + 3u, col, c3);
}
