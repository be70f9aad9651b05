// Per-channel statistics and maps for normalization layers, over a tensor viewed as
// [outer, channels, inner] (tensor::shape::ChannelSpec): channel_moments (mean and biased
// variance), channel_sums (sum(g * (b - center[c])) and sum(g)), channel_affine
// (x * scale[c] + shift[c], then ReLU when asked) and channel_affine_pair
// (g * k0[c] + b * k1[c] + shift[c]). g is a, or, when a ReLU was fused into the op whose
// gradient a is, a where that ReLU's input was positive: batch normalization's backward pass
// computes it again from x (b) and the forward map's coefficients (gate), as `affine` did.
//
// Element j of channel c (0 <= j < outer * inner) is (o, c, i) with o = j / inner, i = j % inner.
// A statistic takes one or two passes. The first (`moments`, `sums`) cuts each channel's
// elements into `chunks` pieces of `chunk_len`; a workgroup takes one piece of `width`
// neighbouring channels, 256 / width invocations per channel, and writes the piece's partials
// to [2, chunks, channels]. The second (`*_combine`) merges each channel's chunks into
// [2, channels], in the same way with the chunks as elements (and a width of its own); with
// chunks == 1 the first pass writes the result itself. With inner == 1 (channels last) the host
// picks width > 1, so neighbouring invocations read neighbouring channels of a row.
//
// Moments never form E[x^2] - E[x]^2: each invocation runs Welford's update over its elements
// (count, mean, M2 = sum of squared deviations), and states merge with Chan et al.'s formula.
// The values are first shifted by a pivot, the channel's first element, so that the running
// means are of the order of the data's spread: rounded near the data's offset instead, a mean's
// error (an ulp of the offset) would enter every update, and data in [99, 101) would lose its
// variance's sixth digit. Partials are each chunk's mean relative to the pivot and its M2; a
// chunk's count follows from chunk_len.

struct Params {
    outer: u32,
    channels: u32,
    inner: u32,
    chunk_len: u32, // elements of one channel a first-pass workgroup takes
    chunks: u32,    // pieces each channel is cut into (1: the first pass writes the result)
    width: u32,     // statistics: channels per workgroup, a power of 2 up to 256
    n: u32,         // channel_affine, channel_affine_pair: elements
    relu: u32,      // channel_affine: 1 to apply ReLU
    gated: u32,     // sums, affine_pair: 1 to gate a by the ReLU's input > 0
    centered: u32,  // sums: 1 to subtract k0[c] from b
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// x (moments, affine), a (sums), the first pass' partials (combine).
@group(0) @binding(1) var<storage, read> a: array<f32>;
// b (sums), scale (affine), x (moments_combine: its pivots).
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> shift: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// The fused ReLU's gate, [2, channels]: the forward map's scales, then its shifts (sums,
// affine_pair; bound to a and unread when not gated).
@group(0) @binding(5) var<storage, read> gate: array<f32>;
// center (sums; unread when not centered), the gradient's scale (affine_pair).
@group(0) @binding(6) var<storage, read> k0: array<f32>;
// x's scale (affine_pair).
@group(0) @binding(7) var<storage, read> k1: array<f32>;

// A running statistic: (count, mean, M2) for moments, (unused, sum(a * b), sum(a)) for sums.
struct Stat {
    n: f32,
    s0: f32,
    s1: f32,
}

var<workgroup> states: array<Stat, 256>;

// Welford's update with one value.
fn moments_add(s: Stat, v: f32) -> Stat {
    let n = s.n + 1.0;
    let delta = v - s.s0;
    let mean = s.s0 + delta / n;
    return Stat(n, mean, s.s1 + delta * (v - mean));
}

// Chan et al.'s merge of two (count, mean, M2) states.
fn moments_merge(p: Stat, q: Stat) -> Stat {
    if (q.n == 0.0) {
        return p;
    }
    if (p.n == 0.0) {
        return q;
    }
    let n = p.n + q.n;
    let delta = q.s0 - p.s0;
    let w = q.n / n;
    return Stat(n, p.s0 + delta * w, p.s1 + q.s1 + delta * delta * (p.n * w));
}

// The forward map, one expression for `affine` and the gate, so that both round alike.
fn affine_value(x: f32, scale: f32, shift: f32) -> f32 {
    return x * scale + shift;
}

// Element `at` (of channel c) of the gradient, gated when asked by the fused ReLU's input,
// computed again from x (b).
fn gated_grad(at: u32, c: u32) -> f32 {
    if (params.gated != 0u && !(affine_value(b[at], gate[c], gate[params.channels + c]) > 0.0)) {
        return 0.0;
    }
    return a[at];
}

fn sums_merge(p: Stat, q: Stat) -> Stat {
    return Stat(0.0, p.s0 + q.s0, p.s1 + q.s1);
}

// Index in memory of element j of channel c.
fn element(j: u32, c: u32) -> u32 {
    if (params.inner == 1u) {
        return j * params.channels + c;
    }
    let o = j / params.inner;
    return (o * params.channels + c) * params.inner + (j - o * params.inner);
}

fn per_channel() -> u32 {
    return params.outer * params.inner;
}

// How many elements of a channel chunk k holds.
fn chunk_size(k: u32) -> u32 {
    return min(params.chunk_len, per_channel() - k * params.chunk_len);
}

// What one invocation covers: channel c (idle when c >= channels) and the indices
// first, first + step, ... below end (elements of a channel, or chunks in a combine pass).
struct Lane {
    c: u32,
    first: u32,
    step: u32,
    end: u32,
}

// The lane of invocation lid of the workgroup for channel block `block`, over indices
// [start, end).
fn lane(block: u32, lid: u32, start: u32, end: u32) -> Lane {
    let w = params.width;
    return Lane(block * w + lid % w, start + lid / w, 256u / w, end);
}

// Channel blocks of `width` channels.
fn blocks() -> u32 {
    return (params.channels + params.width - 1u) / params.width;
}

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// Merges the 256 / width states of each channel of the workgroup (invocations lid and
// lid + k * width share a channel); invocation lid < width gets its channel's total.
fn merge_lanes(s: Stat, lid: u32, moments: bool) -> Stat {
    states[lid] = s;
    workgroupBarrier();
    for (var step = 128u; step >= params.width; step /= 2u) {
        if (lid < step) {
            if (moments) {
                states[lid] = moments_merge(states[lid], states[lid + step]);
            } else {
                states[lid] = sums_merge(states[lid], states[lid + step]);
            }
        }
        workgroupBarrier();
    }
    return states[lid];
}

// Chunk k's two values of channel c: into [2, chunks, channels].
fn store(k: u32, c: u32, v0: f32, v1: f32) {
    out[k * params.channels + c] = v0;
    out[(params.chunks + k) * params.channels + c] = v1;
}

// First pass of channel_moments: (mean relative to the pivot, M2) of each (chunk, channel);
// with one chunk, the mean and the variance.
@compute @workgroup_size(256)
fn moments(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let nb = blocks();
    if (g >= nb * params.chunks) {
        return;
    }
    let k = g / nb;
    let start = k * params.chunk_len;
    let l = lane(g % nb, lid, start, start + chunk_size(k));
    var s = Stat(0.0, 0.0, 0.0);
    var pivot = 0.0;
    if (l.c < params.channels) {
        pivot = a[element(0u, l.c)];
        for (var j = l.first; j < l.end; j += l.step) {
            s = moments_add(s, a[element(j, l.c)] - pivot);
        }
    }
    s = merge_lanes(s, lid, true);
    if (lid < params.width && l.c < params.channels) {
        if (params.chunks == 1u) {
            store(k, l.c, pivot + s.s0, s.s1 / f32(per_channel()));
        } else {
            store(k, l.c, s.s0, s.s1);
        }
    }
}

// First pass of channel_sums: (sum(g * (b - center)), sum(g)) of each (chunk, channel).
@compute @workgroup_size(256)
fn sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let nb = blocks();
    if (g >= nb * params.chunks) {
        return;
    }
    let k = g / nb;
    let start = k * params.chunk_len;
    let l = lane(g % nb, lid, start, start + chunk_size(k));
    var s = Stat(0.0, 0.0, 0.0);
    if (l.c < params.channels) {
        var center = 0.0;
        if (params.centered != 0u) {
            center = k0[l.c];
        }
        for (var j = l.first; j < l.end; j += l.step) {
            let at = element(j, l.c);
            let v = gated_grad(at, l.c);
            s.s0 += v * (b[at] - center);
            s.s1 += v;
        }
    }
    s = merge_lanes(s, lid, false);
    if (lid < params.width && l.c < params.channels) {
        store(k, l.c, s.s0, s.s1);
    }
}

// Second pass of channel_moments: each channel's chunks (a = [2, chunks, channels] of shifted
// mean and M2; b = x, for the pivots) merged into its mean and variance.
@compute @workgroup_size(256)
fn moments_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    if (g >= blocks()) {
        return;
    }
    let l = lane(g, lid, 0u, params.chunks);
    let plane = params.chunks * params.channels;
    var s = Stat(0.0, 0.0, 0.0);
    var pivot = 0.0;
    if (l.c < params.channels) {
        pivot = b[element(0u, l.c)];
        for (var k = l.first; k < l.end; k += l.step) {
            let at = k * params.channels + l.c;
            s = moments_merge(s, Stat(f32(chunk_size(k)), a[at], a[plane + at]));
        }
    }
    s = merge_lanes(s, lid, true);
    if (lid < params.width && l.c < params.channels) {
        out[l.c] = pivot + s.s0;
        out[params.channels + l.c] = s.s1 / f32(per_channel());
    }
}

// Second pass of channel_sums: each channel's chunks added up.
@compute @workgroup_size(256)
fn sums_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    if (g >= blocks()) {
        return;
    }
    let l = lane(g, lid, 0u, params.chunks);
    let plane = params.chunks * params.channels;
    var s = Stat(0.0, 0.0, 0.0);
    if (l.c < params.channels) {
        for (var k = l.first; k < l.end; k += l.step) {
            let at = k * params.channels + l.c;
            s.s0 += a[at];
            s.s1 += a[plane + at];
        }
    }
    s = merge_lanes(s, lid, false);
    if (lid < params.width && l.c < params.channels) {
        out[l.c] = s.s0;
        out[params.channels + l.c] = s.s1;
    }
}

// channel_affine: one invocation per element, x * scale[c] + shift[c], then ReLU if asked.
@compute @workgroup_size(256)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let c = channel_of(i);
    let v = affine_value(a[i], b[c], shift[c]);
    if (params.relu != 0u && !(v > 0.0)) {
        out[i] = 0.0;
    } else {
        out[i] = v;
    }
}

// The channel of element i of a [outer, channels, inner] tensor.
fn channel_of(i: u32) -> u32 {
    if (params.inner == 1u) {
        return i % params.channels;
    }
    return (i / params.inner) % params.channels;
}

// channel_affine_pair: one invocation per element, g * k0[c] + b * k1[c] + shift[c].
@compute @workgroup_size(256)
fn affine_pair(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let c = channel_of(i);
    out[i] = gated_grad(i, c) * k0[c] + b[i] * k1[c] + shift[c];
}
