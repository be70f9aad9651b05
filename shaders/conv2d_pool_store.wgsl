// ---------------------------------------------------------------------------------------------
// conv2d_pool_store.wgsl: the epilogue of the conv-pool forward GEMM (conv2d.wgsl, MODE 0,
// POOLED). The four rows of a block are one 2x2 pooling window (row = 4 * pooled position), so
// the window's maximum, its winner and the ReLU are taken in registers and only the pooled
// output is written: c[pooled position, channel], and `winners_out` the window position 0..3
// of the first maximum (the element max pooling's gradient goes to), which the backward pass
// reads (conv2d.wgsl's `winners`).
// ---------------------------------------------------------------------------------------------

@group(0) @binding(6) var<storage, read_write> winners_out: array<f32>;

fn store_block(z: u32, row: u32, col: u32, r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    var add = vec4<f32>(0.0);
    if (params.has_bias != 0u) {
        for (var j = 0u; j < 4u; j++) {
            if (col + j < params.n) {
                add[j] = bias[col + j];
            }
        }
    }
    // Bias first, then the comparisons, as the unfused convolution then pooling round them;
    // a later element wins only when strictly greater (the first maximum, as pool2d's).
    var best = r0 + add;
    var winner = vec4<f32>(0.0);
    let v1 = r1 + add;
    let v2 = r2 + add;
    let v3 = r3 + add;
    var greater = v1 > best;
    best = select(best, v1, greater);
    winner = select(winner, vec4<f32>(1.0), greater);
    greater = v2 > best;
    best = select(best, v2, greater);
    winner = select(winner, vec4<f32>(2.0), greater);
    greater = v3 > best;
    best = select(best, v3, greater);
    winner = select(winner, vec4<f32>(3.0), greater);
    if (RELU) {
        best = max(best, vec4<f32>(0.0));
    }
    let pooled = row / 4u;
    for (var j = 0u; j < 4u; j++) {
        if (col + j < params.n) {
            c[pooled * params.n + col + j] = best[j];
            winners_out[pooled * params.n + col + j] = winner[j];
        }
    }
}
