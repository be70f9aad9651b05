// ---------------------------------------------------------------------------------------------
// conv2d_store.wgsl: where the plain convolution GEMMs (conv2d.wgsl) write an element: the
// output (or a split-K slice's partial product), plus the bias. gemm_store_rows.wgsl calls it.
// ---------------------------------------------------------------------------------------------

fn store_c(z: u32, m: u32, n: u32, v: f32) {
    var r = v;
    if (params.has_bias != 0u) {
        r += bias[n];
    }
    c[(z * params.m + m) * params.n + n] = r;
}
