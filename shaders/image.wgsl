// Image resampling through one affine (projective) transform per image, for augmentation.
// The rules are tensor::shape::AffineTransformSpec's (source coordinates) and FillMode::index's
// (reads outside the image), which the CPU kernel follows too.

struct Params {
    n: u32,             // output elements
    height: u32,
    width: u32,
    channels: u32,
    interpolation: u32, // 0 nearest, 1 bilinear
    fill_mode: u32,     // FillMode::code: 0 reflect, 1 wrap, 2 constant, 3 nearest
    fill_value: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> transforms: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const COORDINATE_LIMIT: f32 = 16777216.0;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// Floor division and modulo with a positive divisor (WGSL's % truncates).
fn floor_mod(a: i32, m: i32) -> i32 {
    let r = a % m;
    return select(r, r + m, r < 0);
}

// The pixel read for tap index i on an axis of n pixels; -1 where the fill value is read.
fn fix_index(i: i32, n: i32) -> i32 {
    switch params.fill_mode {
        case 0u: {
            let s = 2 * n;
            let mirrored = abs(floor_mod(2 * i + 1 + s, 2 * s) - s);
            return max(mirrored - 1, 0) / 2;
        }
        case 1u: {
            return floor_mod(i, n);
        }
        case 2u: {
            return select(-1, i, i >= 0 && i < n);
        }
        default: {
            return clamp(i, 0, n - 1);
        }
    }
}

// Round half away from zero (WGSL's round() goes to even).
fn round_away(v: f32) -> f32 {
    return sign(v) * floor(abs(v) + 0.5);
}

@compute @workgroup_size(256)
fn affine_transform(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= params.n) {
        return;
    }
    let ch = i % params.channels;
    let pixel = i / params.channels;
    let col = pixel % params.width;
    let row = (pixel / params.width) % params.height;
    let b = pixel / (params.width * params.height);
    let t = b * 8u;
    let fx = f32(col);
    let fy = f32(row);
    let k = transforms[t + 6u] * fx + transforms[t + 7u] * fy + 1.0;
    let src_col = clamp((transforms[t + 1u] * fy + transforms[t] * fx + transforms[t + 2u]) / k,
                        -COORDINATE_LIMIT, COORDINATE_LIMIT);
    let src_row = clamp((transforms[t + 4u] * fy + transforms[t + 3u] * fx + transforms[t + 5u]) / k,
                        -COORDINATE_LIMIT, COORDINATE_LIMIT);
    let h = i32(params.height);
    let w = i32(params.width);
    let image = b * params.height * params.width * params.channels;
    var row_index: array<i32, 2>;
    var row_weight: array<f32, 2>;
    var col_index: array<i32, 2>;
    var col_weight: array<f32, 2>;
    var taps = 2u;
    if (params.interpolation == 0u) {
        taps = 1u;
        row_index[0] = fix_index(i32(round_away(src_row)), h);
        row_weight[0] = 1.0;
        col_index[0] = fix_index(i32(round_away(src_col)), w);
        col_weight[0] = 1.0;
    } else {
        let r0 = floor(src_row);
        let c0 = floor(src_col);
        let wr = src_row - r0;
        let wc = src_col - c0;
        row_index[0] = fix_index(i32(r0), h);
        row_index[1] = fix_index(i32(r0) + 1, h);
        row_weight[0] = 1.0 - wr;
        row_weight[1] = wr;
        col_index[0] = fix_index(i32(c0), w);
        col_index[1] = fix_index(i32(c0) + 1, w);
        col_weight[0] = 1.0 - wc;
        col_weight[1] = wc;
    }
    var sum = 0.0;
    for (var a = 0u; a < taps; a += 1u) {
        for (var c = 0u; c < taps; c += 1u) {
            var v = params.fill_value;
            if (row_index[a] >= 0 && col_index[c] >= 0) {
                v = x[image + (u32(row_index[a]) * params.width + u32(col_index[c])) * params.channels + ch];
            }
            sum += row_weight[a] * col_weight[c] * v;
        }
    }
    out[i] = sum;
}
