// Matrix products whose operands can be read as vec4s. Built from matmul_common.wgsl + this
// file + gemm_core.wgsl; the host picks it when op(A)'s contiguous axis (k, or m when A is
// transposed) and op(B)'s (n, or k when B is transposed) have lengths divisible by 4, so every
// vec4 lies wholly inside or wholly outside the matrix. Each invocation of the 128x128 kernel
// then reads its share of a k-slice (4 elements of each operand) with one load per operand
// instead of four, which is what the kernel's speed on large GPUs hinges on.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

// Scalar reads, for the small-tile kernel.
fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let i = a_index(z, m, k);
    return a[i / 4u][i % 4u];
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let i = b_index(z, k, n);
    return b[i / 4u][i % 4u];
}

// A k-slice of op(A) is 128 rows x 8 k, of op(B) 8 k x 128 columns: 256 vec4s each, one per
// invocation. Invocation lid reads, along the operand's contiguous axis,
//   (row lid / 2, k (lid % 2) * 4 .. +4)   or   (k lid / 32, row (lid % 32) * 4 .. +4).
fn big_fetch(z: u32, m0: u32, n0: u32, k0: u32, kend: u32, lid: u32) -> Slice {
    var s: Slice;
    s.a = vec4<f32>(0.0);
    s.b = vec4<f32>(0.0);
    if (!TRANS_A) {
        let m = m0 + lid / 2u;
        let k = k0 + (lid % 2u) * 4u;
        if (m < params.m && k < kend) {
            s.a = a[a_index(z, m, k) / 4u];
        }
    } else {
        let k = k0 + lid / 32u;
        let m = m0 + (lid % 32u) * 4u;
        if (k < kend && m < params.m) {
            s.a = a[a_index(z, m, k) / 4u];
        }
    }
    if (!TRANS_B) {
        let k = k0 + lid / 32u;
        let n = n0 + (lid % 32u) * 4u;
        if (k < kend && n < params.n) {
            s.b = b[b_index(z, k, n) / 4u];
        }
    } else {
        let n = n0 + lid / 2u;
        let k = k0 + (lid % 2u) * 4u;
        if (n < params.n && k < kend) {
            s.b = b[b_index(z, k, n) / 4u];
        }
    }
    return s;
}

// Stores a fetched slice k-major into workgroup memory: one vec4 write when the read ran along
// the tile's row axis, four scalar writes (a transpose) when it ran along k.
fn big_stash(buf: u32, s: Slice, lid: u32) {
    if (!TRANS_A) {
        let m = lid / 2u;
        let k = (lid % 2u) * 4u;
        big_a[buf + k * BIG_ROW + m / 4u][m % 4u] = s.a.x;
        big_a[buf + (k + 1u) * BIG_ROW + m / 4u][m % 4u] = s.a.y;
        big_a[buf + (k + 2u) * BIG_ROW + m / 4u][m % 4u] = s.a.z;
        big_a[buf + (k + 3u) * BIG_ROW + m / 4u][m % 4u] = s.a.w;
    } else {
        big_a[buf + (lid / 32u) * BIG_ROW + lid % 32u] = s.a;
    }
    if (!TRANS_B) {
        big_b[buf + (lid / 32u) * BIG_ROW + lid % 32u] = s.b;
    } else {
        let n = lid / 2u;
        let k = (lid % 2u) * 4u;
        big_b[buf + k * BIG_ROW + n / 4u][n % 4u] = s.b.x;
        big_b[buf + (k + 1u) * BIG_ROW + n / 4u][n % 4u] = s.b.y;
        big_b[buf + (k + 2u) * BIG_ROW + n / 4u][n % 4u] = s.b.z;
        big_b[buf + (k + 3u) * BIG_ROW + n / 4u][n % 4u] = s.b.w;
    }
}
