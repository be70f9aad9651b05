// Elementwise kernels: fill, unary maps and their gradients, broadcast binary ops, expand.
// One invocation per output element; the linear index is rebuilt from a 2-D workgroup grid
// (the host folds more than 65535 workgroups into y).

struct Params {
    n: u32,      // output elements
    op: u32,     // which function (the UnaryOp / BinaryOp codes of src/ops/elementwise.rs)
    rank: u32,   // broadcast dimensions in use
    _pad0: u32,
    f0: f32,     // fill value / affine scale / clamp min
    f1: f32,     // affine shift / clamp max
    _pad1: u32,
    _pad2: u32,
    // Broadcast dimensions and element strides of the two inputs, 4 per vec4, outermost first.
    dims: array<vec4<u32>, 4>,
    a_strides: array<vec4<u32>, 4>,
    b_strides: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        out[i] = params.f0;
    }
}

fn stable_tanh(x: f32) -> f32 {
    // Some drivers evaluate tanh through exp(2x) and return NaN for large |x|.
    if (abs(x) > 15.0) {
        return sign(x);
    }
    return tanh(x);
}

// erf as the CPU computes it (kernels-cpu/src/fast_math.rs; WGSL has none): a Taylor
// polynomial below 0.5, Abramowitz and Stegun's 7.1.26 beyond.
fn erf(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.5) {
        let x2 = x * x;
        let s = ((((-1.0 / 1320.0 * x2 + 1.0 / 216.0) * x2 - 1.0 / 42.0) * x2 + 0.1) * x2 - 1.0 / 3.0) * x2 + 1.0;
        return s * x * 1.1283792;
    }
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let p = ((((1.0614054 * t - 1.453152) * t + 1.4214138) * t - 0.28449674) * t + 0.2548296) * t;
    return sign(x) * (1.0 - p * exp(-a * a));
}

// exp(x) - 1 without losing small |x| (WGSL has no expm1): a Taylor polynomial near 0.
fn expm1(x: f32) -> f32 {
    if (abs(x) < 0.01) {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x / 24.0)));
    }
    return exp(x) - 1.0;
}

// The argument of tanh in gelu's tanh form: sqrt(2 / pi) (x + 0.044715 x^3).
fn gelu_tanh_inner(x: f32) -> f32 {
    return 0.7978846 * (x + 0.044715 * x * x * x);
}

fn unary_value(op: u32, x: f32) -> f32 {
    switch op {
        case 0u: { return -x; }
        case 1u: { return select(0.0, x, x > 0.0); }
        case 2u: { return stable_tanh(x); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }
        case 4u: { return exp(x); }
        case 5u: { return log(x); }
        case 6u: { return sqrt(x); }
        case 7u: { return x * x; }
        case 8u: { return abs(x); }
        case 9u: { return x * params.f0 + params.f1; }
        case 11u: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
        case 12u: { return select(params.f0 * x, x, x >= 0.0); }
        case 13u: { return select(params.f0 * expm1(x), x, x > 0.0); }
        case 14u: { return 0.5 * x * (1.0 + erf(x * 0.70710678)); }
        case 15u: { return 0.5 * x * (1.0 + stable_tanh(gelu_tanh_inner(x))); }
        case 16u: { return x / (1.0 + exp(-x)); }
        default: { return min(max(x, params.f0), params.f1); }
    }
}

@compute @workgroup_size(256)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        out[i] = unary_value(params.op, a[i]);
    }
}

// dy * f'(x), with y = f(x): a = x, b = y, c = dy.
@compute @workgroup_size(256)
fn unary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= params.n) {
        return;
    }
    let x = a[i];
    let y = b[i];
    let g = c[i];
    var d: f32;
    switch params.op {
        case 0u: { d = -g; }
        case 1u: { d = select(0.0, g, x > 0.0); }
        case 2u: { d = g * (1.0 - y * y); }
        case 3u: { d = g * y * (1.0 - y); }
        case 4u: { d = g * y; }
        case 5u: { d = g / x; }
        case 6u: { d = g * 0.5 / y; }
        case 7u: { d = 2.0 * x * g; }
        case 8u: { d = select(select(0.0, -g, x < 0.0), g, x > 0.0); }
        case 9u: { d = g * params.f0; }
        case 11u: { d = g / (1.0 + exp(-x)); }
        case 12u: { d = select(params.f0 * g, g, x >= 0.0); }
        case 13u: { d = select(g * (y + params.f0), g, x > 0.0); }
        case 14u: {
            let cdf = 0.5 * (1.0 + erf(x * 0.70710678));
            d = g * (cdf + x * exp(-0.5 * x * x) * 0.39894228);
        }
        case 15u: {
            let t = stable_tanh(gelu_tanh_inner(x));
            let inner_slope = 0.7978846 * (1.0 + 3.0 * 0.044715 * x * x);
            d = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope);
        }
        case 16u: {
            let s = 1.0 / (1.0 + exp(-x));
            d = g * s * (1.0 + x * (1.0 - s));
        }
        default: { d = select(0.0, g, params.f0 < x && x < params.f1); }
    }
    out[i] = d;
}

// Offsets into a and b of output element i.
fn broadcast_offsets(i: u32) -> vec2<u32> {
    var rest = i;
    var offsets = vec2<u32>(0u, 0u);
    var d = params.rank;
    loop {
        if (d == 0u) {
            break;
        }
        d -= 1u;
        let size = params.dims[d / 4u][d % 4u];
        let index = rest % size;
        rest = rest / size;
        offsets += index * vec2<u32>(params.a_strides[d / 4u][d % 4u], params.b_strides[d / 4u][d % 4u]);
    }
    return offsets;
}

@compute @workgroup_size(256)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= params.n) {
        return;
    }
    let at = broadcast_offsets(i);
    let x = a[at.x];
    let y = b[at.y];
    var r: f32;
    switch params.op {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        case 3u: { r = x / y; }
        // NaN-ignoring like f32::max / f32::min on the CPU.
        case 4u: { r = select(select(max(x, y), x, y != y), y, x != x); }
        case 5u: { r = select(select(min(x, y), x, y != y), y, x != x); }
        case 6u: { r = select(0.0, 1.0, x == y); }
        default: { r = select(0.0, 1.0, x >= y); }
    }
    out[i] = r;
}

@compute @workgroup_size(256)
fn expand(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i < params.n) {
        out[i] = a[broadcast_offsets(i).x];
    }
}
