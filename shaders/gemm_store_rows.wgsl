// ---------------------------------------------------------------------------------------------
// gemm_store_rows.wgsl: gemm_core.wgsl's epilogue for plain products: each computed element
// goes through the family's store_c (which adds the bias and knows the output layout), those
// outside the M x N result are dropped. Appended to the matmul and conv2d modules.
// ---------------------------------------------------------------------------------------------

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

fn store_block(z: u32, row: u32, col: u32, r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>) {
    store_row(z, row, col, r0);
    store_row(z, row + 1u, col, r1);
    store_row(z, row + 2u, col, r2);
    store_row(z, row + 3u, col, r3);
}
