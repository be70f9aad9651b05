// ---------------------------------------------------------------------------------------------
// gemm_load_scalar.wgsl: how gemm_core.wgsl's 128x128 kernel fetches a k-slice of its operands
// when they can only be read one element at a time: through the family's load_a / load_b, which
// know the operand layout (strided matrices, implicit im2col). Appended after gemm_core.wgsl.
// matmul_vec4.wgsl has the vec4 alternative for plain matrices.
// ---------------------------------------------------------------------------------------------
// Where element j (0..3) of this invocation's share of a slice sits: (row or column, k).
fn big_a_pos(e: u32) -> vec2<u32> {
    if (params.a_k_contig != 0u) {
        return vec2<u32>(e / BIG_K, e % BIG_K);
    }
    return vec2<u32>(e % BIG, e / BIG);
}

fn big_b_pos(e: u32) -> vec2<u32> {
    if (params.b_n_contig != 0u) {
        return vec2<u32>(e % BIG, e / BIG);
    }
    return vec2<u32>(e / BIG_K, e % BIG_K);
}

fn big_load_a(z: u32, m0: u32, k0: u32, kend: u32, e: u32) -> f32 {
    let p = big_a_pos(e);
    if (m0 + p.x < params.m && k0 + p.y < kend) {
        return load_a(z, m0 + p.x, k0 + p.y);
    }
    return 0.0;
}

fn big_load_b(z: u32, n0: u32, k0: u32, kend: u32, e: u32) -> f32 {
    let p = big_b_pos(e);
    if (n0 + p.x < params.n && k0 + p.y < kend) {
        return load_b(z, k0 + p.y, n0 + p.x);
    }
    return 0.0;
}

fn big_fetch(z: u32, m0: u32, n0: u32, k0: u32, kend: u32, lid: u32) -> Slice {
    var s: Slice;
    s.a.x = big_load_a(z, m0, k0, kend, lid);
    s.a.y = big_load_a(z, m0, k0, kend, lid + 256u);
    s.a.z = big_load_a(z, m0, k0, kend, lid + 512u);
    s.a.w = big_load_a(z, m0, k0, kend, lid + 768u);
    s.b.x = big_load_b(z, n0, k0, kend, lid);
    s.b.y = big_load_b(z, n0, k0, kend, lid + 256u);
    s.b.z = big_load_b(z, n0, k0, kend, lid + 512u);
    s.b.w = big_load_b(z, n0, k0, kend, lid + 768u);
    return s;
}

fn big_put_a(buf: u32, e: u32, v: f32) {
    let p = big_a_pos(e);
    big_a[buf + p.y * BIG_ROW + p.x / 4u][p.x % 4u] = v;
}

fn big_put_b(buf: u32, e: u32, v: f32) {
    let p = big_b_pos(e);
    big_b[buf + p.y * BIG_ROW + p.x / 4u][p.x % 4u] = v;
}

fn big_stash(buf: u32, s: Slice, lid: u32) {
    big_put_a(buf, lid, s.a.x);
    big_put_a(buf, lid + 256u, s.a.y);
    big_put_a(buf, lid + 512u, s.a.z);
    big_put_a(buf, lid + 768u, s.a.w);
    big_put_b(buf, lid, s.b.x);
    big_put_b(buf, lid + 256u, s.b.y);
    big_put_b(buf, lid + 512u, s.b.z);
    big_put_b(buf, lid + 768u, s.b.w);
}
