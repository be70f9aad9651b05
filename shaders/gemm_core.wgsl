// ---------------------------------------------------------------------------------------------
// gemm_core.wgsl: the tiled GEMM shared by the matmul and conv2d modules, appended to each of
// them when the module is built (src/shaders.rs), so it is not a module on its own. The family
// file supplies:
//   params.{m, n, k, products, tiles_m, tiles_n, a_k_contig, b_n_contig}
//   fn k_range(z: u32) -> vec2<u32>           contracted range [x, y) of product z
//   fn load_a(z: u32, m: u32, k: u32) -> f32   op(A)[m, k], called only for m < M, k in range
//   fn load_b(z: u32, k: u32, n: u32) -> f32   op(B)[k, n], likewise
//   fn store_block(z, row, col, r0, r1, r2, r3: vec4<f32>)
//                                              rows row..row+3 (row a multiple of 4), columns
//                                              col..col+3 of the result, not yet bounds-checked:
//                                              gemm_store_rows.wgsl (through the family's
//                                              store_c) or conv2d_pool_store.wgsl (pooling)
//   fn big_fetch / big_stash                  how the 128x128 kernel reads a k-slice: from
//                                              gemm_load_scalar.wgsl (through load_a / load_b)
//                                              or matmul_vec4.wgsl (vec4 reads)
// `a_k_contig` / `b_n_contig` say along which axis an operand is contiguous in memory, so that
// neighbouring invocations load neighbouring addresses.
//
// Each workgroup computes a BM x BN tile of one product; each of its 256 invocations a 4x4
// (64x64 or 128x32 tile) or 8x8 (128x128 tile) block, held in named vec4 accumulators: dynamically
// indexed private arrays would spill to slow local memory. Both operand tiles are stored
// k-major in workgroup memory (A transposed), padded by one vec4 per row against bank
// conflicts, so every workgroup read in the inner loop is one vec4.
// ---------------------------------------------------------------------------------------------

// The small kernel's tile, BM x BN: 64x64, or 128x32 for products with few columns (a
// convolution's 20 channels would leave two thirds of a 64-wide tile empty). Pipeline
// constants, so the loops below have fixed trip counts.
override BM: u32 = 64u;
override BN: u32 = 64u;
const BK: u32 = 16u;

// k-major operand tiles, BK rows of BM/4 (BN/4) vec4s plus one of padding; sized for the
// largest BM (128) and BN (64): 12.8 KB together, within WebGPU's default 16 KB.
var<workgroup> tile_a: array<vec4<f32>, 528>; // BK * (128 / 4 + 1)
var<workgroup> tile_b: array<vec4<f32>, 272>; // BK * (64 / 4 + 1)

// Element e (0 .. rows * BK) of a k-slice of op(A) for a tile of `rows` rows from m0, into
// tile_a, whose k-rows are `row` vec4s apart; neighbouring e are neighbouring addresses along
// A's contiguous axis. Zero outside the product.
fn stage_a(z: u32, m0: u32, k0: u32, kend: u32, e: u32, rows: u32, row: u32) {
    var mm = e / BK;
    var ka = e % BK;
    if (params.a_k_contig == 0u) {
        mm = e % rows;
        ka = e / rows;
    }
    var va = 0.0;
    if (m0 + mm < params.m && k0 + ka < kend) {
        va = load_a(z, m0 + mm, k0 + ka);
    }
    tile_a[ka * row + mm / 4u][mm % 4u] = va;
}

// The same for op(B): element e of a k-slice of `cols` columns from n0, into tile_b.
fn stage_b(z: u32, n0: u32, k0: u32, kend: u32, e: u32, cols: u32, row: u32) {
    var nn = e % cols;
    var kb = e / cols;
    if (params.b_n_contig == 0u) {
        nn = e / BK;
        kb = e % BK;
    }
    var vb = 0.0;
    if (n0 + nn < params.n && k0 + kb < kend) {
        vb = load_b(z, k0 + kb, n0 + nn);
    }
    tile_b[kb * row + nn / 4u][nn % 4u] = vb;
}

fn gemm_small(lid: u32, group: u32) {
    let tiles = params.tiles_m * params.tiles_n;
    let z = group / tiles;
    if (z >= params.products) {
        return;
    }
    let t = group % tiles;
    let m0 = (t / params.tiles_n) * BM;
    let n0 = (t % params.tiles_n) * BN;
    let row_a = BM / 4u + 1u;
    let row_b = BN / 4u + 1u;
    let tx = lid % (BN / 4u);
    let ty = lid / (BN / 4u);
    let kr = k_range(z);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k0 = kr.x; k0 < kr.y; k0 += BK) {
        // BM * BK elements of op(A), BN * BK of op(B), 256 at a time.
        for (var j = 0u; j < BM / 16u; j++) {
            stage_a(z, m0, k0, kr.y, lid + j * 256u, BM, row_a);
        }
        for (var j = 0u; j < BN / 16u; j++) {
            stage_b(z, n0, k0, kr.y, lid + j * 256u, BN, row_b);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = tile_a[kk * row_a + ty];
            let b = tile_b[kk * row_b + tx];
            c0 += a.x * b;
            c1 += a.y * b;
            c2 += a.z * b;
            c3 += a.w * b;
        }
        workgroupBarrier();
    }
    let row = m0 + ty * 4u;
    let col = n0 + tx * 4u;
    store_block(z, row, col, c0, c1, c2, c3);
}

// The k-grouped variant, for small products with a long contraction (a filter gradient:
// 25 x 20 outputs summed over 600,000 positions, where a 64x64 tile would be 88% padding):
// a 32x32 tile, and the workgroup's four groups of 64 invocations each multiply a quarter of
// every k-slice (4x4 outputs per invocation); the groups' sums are added in workgroup memory
// at the end. Reuses tile_a / tile_b with rows of 32 / 4 + 1 vec4s.

const KG: u32 = 32u;
const KG_ROW: u32 = 9u;

fn gemm_kgroups(lid: u32, group: u32) {
    let tiles = params.tiles_m * params.tiles_n;
    let z = group / tiles;
    if (z >= params.products) {
        return;
    }
    let t = group % tiles;
    let m0 = (t / params.tiles_n) * KG;
    let n0 = (t % params.tiles_n) * KG;
    let q = lid / 64u;
    let tx = lid % 8u;
    let ty = (lid % 64u) / 8u;
    let kr = k_range(z);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k0 = kr.x; k0 < kr.y; k0 += BK) {
        // 32 x 16 elements of each operand, two per invocation.
        for (var j = 0u; j < 2u; j++) {
            stage_a(z, m0, k0, kr.y, lid + j * 256u, KG, KG_ROW);
            stage_b(z, n0, k0, kr.y, lid + j * 256u, KG, KG_ROW);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 4u; kk++) {
            let k = q * 4u + kk;
            let a = tile_a[k * KG_ROW + ty];
            let b = tile_b[k * KG_ROW + tx];
            c0 += a.x * b;
            c1 += a.y * b;
            c2 += a.z * b;
            c3 += a.w * b;
        }
        workgroupBarrier();
    }
    // Groups 2 and 3 hand their sums to groups 0 and 1, then group 1 to group 0.
    let slot = (lid % 128u) * 4u;
    if (q >= 2u) {
        tile_a[slot] = c0;
        tile_a[slot + 1u] = c1;
        tile_a[slot + 2u] = c2;
        tile_a[slot + 3u] = c3;
    }
    workgroupBarrier();
    if (q < 2u) {
        c0 += tile_a[slot];
        c1 += tile_a[slot + 1u];
        c2 += tile_a[slot + 2u];
        c3 += tile_a[slot + 3u];
    }
    workgroupBarrier();
    if (q == 1u) {
        tile_a[slot] = c0;
        tile_a[slot + 1u] = c1;
        tile_a[slot + 2u] = c2;
        tile_a[slot + 3u] = c3;
    }
    workgroupBarrier();
    if (q == 0u) {
        let other = slot + 256u;
        store_block(z, m0 + ty * 4u, n0 + tx * 4u, c0 + tile_a[other], c1 + tile_a[other + 1u],
                    c2 + tile_a[other + 2u], c3 + tile_a[other + 3u]);
    }
}

// The large-tile variant: a 128x128 tile, 8x8 outputs per invocation in 16 named vec4
// accumulators, BK = 8. The next k-slice is loaded into registers while the current one is
// multiplied, into the other of two workgroup buffers, so each slice needs one barrier.
// The inner loop is unrolled by hand (the runtime bounds checks wgpu adds cost far more in a
// rolled loop).

const BIG: u32 = 128u;
const BIG_K: u32 = 8u;
const BIG_ROW: u32 = 33u;                 // vec4s per k-row of a 128-wide tile, one of padding
const BIG_BUF: u32 = 264u;                // BIG_K * BIG_ROW: one buffer

var<workgroup> big_a: array<vec4<f32>, 528>; // two buffers
var<workgroup> big_b: array<vec4<f32>, 528>;

// One invocation's share of a k-slice: 4 elements of each operand, held in registers while the
// previous slice is multiplied. Fetched and stored into big_a / big_b by big_fetch / big_stash,
// which come from a loader file (gemm_load_scalar.wgsl or gemm_load_vec4.wgsl).
struct Slice {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn gemm_128x128(lid: u32, group: u32) {
    let tiles = params.tiles_m * params.tiles_n;
    let z = group / tiles;
    if (z >= params.products) {
        return;
    }
    let t = group % tiles;
    let m0 = (t / params.tiles_n) * BIG;
    let n0 = (t % params.tiles_n) * BIG;
    let tx = lid % 16u;
    let ty = lid / 16u;
    let kr = k_range(z);

    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    var buf = 0u;
    if (kr.x < kr.y) {
        big_stash(0u, big_fetch(z, m0, n0, kr.x, kr.y, lid), lid);
    }
    workgroupBarrier();
    for (var k0 = kr.x; k0 < kr.y; k0 += BIG_K) {
        let more = k0 + BIG_K < kr.y;
        var next: Slice;
        if (more) {
            next = big_fetch(z, m0, n0, k0 + BIG_K, kr.y, lid);
        }
        {
            let a0 = big_a[buf + 0u * BIG_ROW + ty];
            let a1 = big_a[buf + 0u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 0u * BIG_ROW + tx];
            let b1 = big_b[buf + 0u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 1u * BIG_ROW + ty];
            let a1 = big_a[buf + 1u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 1u * BIG_ROW + tx];
            let b1 = big_b[buf + 1u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 2u * BIG_ROW + ty];
            let a1 = big_a[buf + 2u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 2u * BIG_ROW + tx];
            let b1 = big_b[buf + 2u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 3u * BIG_ROW + ty];
            let a1 = big_a[buf + 3u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 3u * BIG_ROW + tx];
            let b1 = big_b[buf + 3u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 4u * BIG_ROW + ty];
            let a1 = big_a[buf + 4u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 4u * BIG_ROW + tx];
            let b1 = big_b[buf + 4u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 5u * BIG_ROW + ty];
            let a1 = big_a[buf + 5u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 5u * BIG_ROW + tx];
            let b1 = big_b[buf + 5u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 6u * BIG_ROW + ty];
            let a1 = big_a[buf + 6u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 6u * BIG_ROW + tx];
            let b1 = big_b[buf + 6u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        {
            let a0 = big_a[buf + 7u * BIG_ROW + ty];
            let a1 = big_a[buf + 7u * BIG_ROW + 16u + ty];
            let b0 = big_b[buf + 7u * BIG_ROW + tx];
            let b1 = big_b[buf + 7u * BIG_ROW + 16u + tx];
            c00 += a0.x * b0;
            c01 += a0.x * b1;
            c10 += a0.y * b0;
            c11 += a0.y * b1;
            c20 += a0.z * b0;
            c21 += a0.z * b1;
            c30 += a0.w * b0;
            c31 += a0.w * b1;
            c40 += a1.x * b0;
            c41 += a1.x * b1;
            c50 += a1.y * b0;
            c51 += a1.y * b1;
            c60 += a1.z * b0;
            c61 += a1.z * b1;
            c70 += a1.w * b0;
            c71 += a1.w * b1;
        }
        buf = BIG_BUF - buf;
        if (more) {
            big_stash(buf, next, lid);
        }
        workgroupBarrier();
    }
    let row = m0 + ty * 4u;
    let col = n0 + tx * 4u;
    store_block(z, row, col, c00, c10, c20, c30);
    store_block(z, row, col + 64u, c01, c11, c21, c31);
    store_block(z, row + 64u, col, c40, c50, c60, c70);
    store_block(z, row + 64u, col + 64u, c41, c51, c61, c71);
}

// The entry points of every module this file is appended to (matmul, matmul_vec4, conv2d):
// one per kernel; the host picks it (and the small kernel's BM, BN) with `tile::Tile` (src/tile.rs).
@compute @workgroup_size(256)
fn gemm_tile_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    gemm_small(lid, wid.y * nwg.x + wid.x);
}

@compute @workgroup_size(256)
fn gemm_tile_kgroups(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    gemm_kgroups(lid, wid.y * nwg.x + wid.x);
}

@compute @workgroup_size(256)
fn gemm_tile128(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    gemm_128x128(lid, wid.y * nwg.x + wid.x);
}
