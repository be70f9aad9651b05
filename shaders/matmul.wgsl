// Matrix products of any shape, reading the operands one element at a time. Built from
// matmul_common.wgsl + this file + gemm_core.wgsl + gemm_load_scalar.wgsl.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    return a[a_index(z, m, k)];
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    return b[b_index(z, k, n)];
}
