//! Every `Backend` method of `WgpuBackend` against `kernels_cpu::CpuBackend`, on random inputs
//! of odd shapes (not multiples of any tile), with every new GPU output poisoned with NaN so an
//! element a kernel forgets to write fails the comparison.

mod common;

use common::{assert_close, backend, backend_with, random};
use kernels_cpu::CpuBackend;
use kernels_wgpu::{GemmTile, WgpuBackend};
use tensor::backend::prelude::*;
use tensor::shape::{
    broadcast, ConcatSpec, Conv2dSpec, ConvPoolSpec, MatmulSpec, NarrowSpec, Pool2dSpec, PoolWindow,
    ReduceSpec,
};
use tensor::{Backend, BinaryOp, ConvPoolBackward, Padding, PoolKind, ReduceOp, Shape, Storage, UnaryOp};

const TOL: f32 = 1e-4;

/// The GPU backend under test and the CPU reference, fed the same data.
struct Pair {
    gpu: &'static WgpuBackend,
    cpu: CpuBackend,
}

impl Pair {
    fn new() -> Option<Self> {
        Some(Pair { gpu: backend()?, cpu: CpuBackend::with_threads(1).unwrap() })
    }

    /// One pair per GEMM tile (64x64, 128x32, 32x32 k-grouped, 128x128), for the kernels built
    /// on the GEMM core.
    fn per_gemm_tile() -> Vec<Self> {
        [GemmTile::Small, GemmTile::Narrow, GemmTile::KGroups, GemmTile::Large]
            .into_iter()
            .filter_map(|tile| {
                Some(Pair { gpu: backend_with(tile)?, cpu: CpuBackend::with_threads(1).unwrap() })
            })
            .collect()
    }

    fn up(&self, data: &[f32]) -> (Storage, Storage) {
        (self.gpu.upload(data).unwrap(), self.cpu.upload(data).unwrap())
    }

    fn rand(&self, len: usize, seed: u64) -> (Storage, Storage) {
        self.up(&random(len, seed, -1.0, 1.0))
    }

    #[track_caller]
    fn check(&self, what: &str, gpu: &Storage, cpu: &Storage) {
        let got = self.gpu.download(gpu).unwrap();
        let want = self.cpu.download(cpu).unwrap();
        assert_close(what, &got, &want, TOL);
    }
}

#[test]
fn upload_download_fill() {
    let Some(p) = Pair::new() else { return };
    let data = random(1001, 1, -5.0, 5.0);
    let s = p.gpu.upload(&data).unwrap();
    assert_eq!(s.len(), 1001);
    assert_eq!(p.gpu.download(&s).unwrap(), data);
    assert!(p.gpu.download(&p.gpu.upload(&[]).unwrap()).unwrap().is_empty());
    assert_eq!(p.gpu.download(&p.gpu.fill(77, 2.5).unwrap()).unwrap(), vec![2.5; 77]);
    assert!(p.gpu.download(&p.gpu.fill(0, 1.0).unwrap()).unwrap().is_empty());
    assert!(p.gpu.name().starts_with("wgpu ("), "{}", p.gpu.name());
}

#[test]
fn matmul_all_transposes_bias_and_batch() {
    for p in Pair::per_gemm_tile() {
        matmul_cases(&p);
    }
}

fn matmul_cases(p: &Pair) {
    let mut seed = 10;
    // (37, 1000, 29) has few tiles and a long contraction: it is split along k.
    for &(m, k, n) in &[(37, 53, 29), (1, 7, 1), (65, 16, 130), (37, 1000, 29)] {
        for batch in [1, 3] {
            for trans_a in [false, true] {
                for trans_b in [false, true] {
                    for with_bias in [false, true] {
                        seed += 1;
                        let spec = MatmulSpec { batch, m, k, n, trans_a, trans_b };
                        let a = p.rand(batch * m * k, seed);
                        let b = p.rand(batch * k * n, seed + 1000);
                        let bias = p.rand(n, seed + 2000);
                        let (gb, cb) = if with_bias { (Some(&bias.0), Some(&bias.1)) } else { (None, None) };
                        let g = p.gpu.matmul(&a.0, &b.0, gb, &spec).unwrap();
                        let c = p.cpu.matmul(&a.1, &b.1, cb, &spec).unwrap();
                        p.check(&format!("matmul {spec:?} bias {with_bias}"), &g, &c);
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_crosses_tile_edges() {
    for p in Pair::per_gemm_tile() {
        big_matmul_cases(&p);
    }
}

fn big_matmul_cases(p: &Pair) {
    // Contiguous axes divisible by 4 (the large tile then reads vec4s, matmul_vec4.wgsl), the
    // other axes odd, crossing tile edges, a partial last k-slice, and a split contraction;
    // then whole 128x128 tiles with full k-slices, unsplit and split.
    let mut seed = 100;
    let shapes = [
        (2, 132, 36, 260),
        (1, 37, 36, 28),
        (1, 36, 1000, 28),
        (1, 36, 12, 29),
        (2, 128, 48, 256),
        (1, 128, 1024, 128),
    ];
    for &(batch, m, k, n) in &shapes {
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                seed += 1;
                let spec = MatmulSpec { batch, m, k, n, trans_a, trans_b };
                let a = p.rand(batch * m * k, seed);
                let b = p.rand(batch * k * n, seed + 1000);
                let bias = p.rand(n, seed + 2000);
                let g = p.gpu.matmul(&a.0, &b.0, Some(&bias.0), &spec).unwrap();
                let c = p.cpu.matmul(&a.1, &b.1, Some(&bias.1), &spec).unwrap();
                p.check(&format!("matmul {spec:?}"), &g, &c);
            }
        }
    }
    for (trans_a, trans_b) in [(false, false), (true, true)] {
        let spec = MatmulSpec { batch: 1, m: 300, k: 257, n: 131, trans_a, trans_b };
        let a = p.rand(300 * 257, 1);
        let b = p.rand(257 * 131, 2);
        let bias = p.rand(131, 3);
        let g = p.gpu.matmul(&a.0, &b.0, Some(&bias.0), &spec).unwrap();
        let c = p.cpu.matmul(&a.1, &b.1, Some(&bias.1), &spec).unwrap();
        p.check("matmul 300x257x131", &g, &c);
    }
    // An empty contraction gives the bias (or zeros).
    let spec = MatmulSpec { batch: 2, m: 3, k: 0, n: 4, trans_a: false, trans_b: false };
    let (e, bias) = (p.up(&[]), p.rand(4, 9));
    let g = p.gpu.matmul(&e.0, &e.0, Some(&bias.0), &spec).unwrap();
    let c = p.cpu.matmul(&e.1, &e.1, Some(&bias.1), &spec).unwrap();
    p.check("matmul k = 0", &g, &c);
}

fn conv_case(
    p: &Pair,
    x_dims: [usize; 4],
    f_dims: [usize; 4],
    strides: (usize, usize),
    padding: Padding,
    seed: u64,
) {
    let spec = Conv2dSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), strides, padding).unwrap();
    let what = format!("{x_dims:?} * {f_dims:?} stride {strides:?} {padding:?}");
    let x = p.rand(spec.input_shape().numel(), seed);
    let f = p.rand(spec.filter_shape().numel(), seed + 1);
    let bias = p.rand(spec.out_c, seed + 2);
    let dy = p.rand(spec.output_shape().numel(), seed + 3);
    let g = p.gpu.conv2d(&x.0, &f.0, Some(&bias.0), &spec).unwrap();
    let c = p.cpu.conv2d(&x.1, &f.1, Some(&bias.1), &spec).unwrap();
    p.check(&format!("conv2d {what}"), &g, &c);
    let g = p.gpu.conv2d(&x.0, &f.0, None, &spec).unwrap();
    let c = p.cpu.conv2d(&x.1, &f.1, None, &spec).unwrap();
    p.check(&format!("conv2d no bias {what}"), &g, &c);
    let g = p.gpu.conv2d_backward_input(&dy.0, &f.0, &spec).unwrap();
    let c = p.cpu.conv2d_backward_input(&dy.1, &f.1, &spec).unwrap();
    p.check(&format!("conv2d_backward_input {what}"), &g, &c);
    let g = p.gpu.conv2d_backward_filter(&x.0, &dy.0, &spec).unwrap();
    let c = p.cpu.conv2d_backward_filter(&x.1, &dy.1, &spec).unwrap();
    p.check(&format!("conv2d_backward_filter {what}"), &g, &c);
}

#[test]
fn conv2d_forward_and_gradients() {
    for p in Pair::per_gemm_tile() {
        conv_cases(&p);
    }
}

fn conv_cases(p: &Pair) {
    let mut seed = 100;
    for kernel in [3, 5] {
        for stride in [1, 2] {
            for padding in [Padding::Valid, Padding::Same] {
                seed += 10;
                conv_case(p, [3, 7, 9, 5], [kernel, kernel, 5, 6], (stride, stride), padding, seed);
            }
        }
    }
    // Uneven strides and a non-square kernel.
    conv_case(p, [2, 8, 11, 3], [2, 4, 3, 7], (2, 3), Padding::Same, 7);
    // Long contraction for the filter gradient (split into slices, summed afterwards).
    conv_case(p, [6, 28, 28, 1], [5, 5, 1, 20], (1, 1), Padding::Valid, 8);
    conv_case(p, [4, 12, 12, 20], [3, 3, 20, 40], (1, 1), Padding::Valid, 9);
}

/// The fused convolution + max pooling, with and without the ReLU, for each GEMM tile. The GPU
/// runs its conv-pool GEMM for 2x2 windows of stride 2 (the first, fourth and fifth cases: an
/// odd width whose last column no window covers, channels not a multiple of 4, several input
/// channels) and the trait's unfused default elsewhere; the CPU its fused kernels where the
/// shapes allow and the unfused ones elsewhere.
#[test]
fn conv2d_max_pool_forward_and_gradients() {
    for p in Pair::per_gemm_tile() {
        conv_pool_cases(&p);
    }
}

fn conv_pool_cases(p: &Pair) {
    type Case = ([usize; 4], [usize; 4], (usize, usize), (usize, usize));
    let cases: &[Case] = &[
        ([3, 12, 13, 1], [5, 5, 1, 20], (2, 2), (2, 2)),
        ([2, 9, 9, 3], [3, 3, 3, 7], (3, 2), (3, 2)),
        ([2, 9, 9, 2], [2, 2, 2, 5], (3, 3), (2, 2)),
        ([3, 11, 10, 2], [3, 2, 2, 7], (2, 2), (2, 2)),
        ([5, 12, 12, 20], [3, 3, 20, 40], (2, 2), (2, 2)),
    ];
    let with_relu = cases.iter().enumerate().flat_map(|(i, case)| [(i, case, false), (i, case, true)]);
    for (i, &(x_dims, f_dims, pool, strides), relu) in with_relu {
        let window = PoolWindow { size: pool, strides, padding: Padding::Valid };
        let spec =
            ConvPoolSpec::new(&Shape::new(x_dims), &Shape::new(f_dims), (1, 1), Padding::Valid, window)
                .unwrap();
        let spec = if relu { spec.with_relu() } else { spec };
        let seed = 300 + 10 * i as u64;
        let x = p.rand(spec.conv.input_shape().numel(), seed);
        let f = p.rand(spec.conv.filter_shape().numel(), seed + 1);
        let bias = p.rand(spec.conv.out_c, seed + 2);
        let dpooled = p.rand(spec.pool.output_shape().numel(), seed + 3);
        let (g, g_saved) = p.gpu.conv2d_max_pool(&x.0, &f.0, Some(&bias.0), &spec).unwrap();
        let (c, c_saved) = p.cpu.conv2d_max_pool(&x.1, &f.1, Some(&bias.1), &spec).unwrap();
        let what =
            format!("conv2d_max_pool {x_dims:?} * {f_dims:?} pool {pool:?} stride {strides:?} relu {relu}");
        p.check(&what, &g, &c);
        for needs in [[false, true, true], [true, true, true]] {
            let args = |x, filter, pooled, saved, dpooled| ConvPoolBackward {
                x,
                filter,
                pooled,
                saved,
                dpooled,
                spec: &spec,
                needs,
            };
            let gg = p.gpu.conv2d_max_pool_backward(&args(&x.0, &f.0, &g, &g_saved, &dpooled.0)).unwrap();
            let cg = p.cpu.conv2d_max_pool_backward(&args(&x.1, &f.1, &c, &c_saved, &dpooled.1)).unwrap();
            assert_eq!(gg.input.is_some(), needs[0]);
            assert_eq!(cg.input.is_some(), needs[0]);
            if let (Some(gi), Some(ci)) = (&gg.input, &cg.input) {
                p.check(&format!("{what} input gradient"), gi, ci);
            }
            p.check(&format!("{what} filter gradient"), &gg.filter.unwrap(), &cg.filter.unwrap());
            p.check(&format!("{what} bias gradient"), &gg.bias.unwrap(), &cg.bias.unwrap());
        }
    }
}

#[test]
fn pooling_forward_and_backward() {
    let Some(p) = Pair::new() else { return };
    type Case = ((usize, usize), (usize, usize), Padding);
    let cases: &[Case] = &[
        ((2, 2), (2, 2), Padding::Valid),
        ((3, 3), (2, 2), Padding::Same),
        ((3, 3), (1, 1), Padding::Same),
        ((2, 3), (1, 2), Padding::Valid),
        ((3, 2), (3, 1), Padding::Same),
    ];
    let x_shape = Shape::new([3, 7, 9, 5]);
    let n = x_shape.numel();
    // Quantised values, so windows have ties and max pooling must pick the first maximum.
    let ties: Vec<f32> = random(n, 5, 0.0, 3.0).iter().map(|v| v.floor()).collect();
    let inputs = [random(n, 4, 0.1, 2.0), ties];
    for (i, data) in inputs.iter().enumerate() {
        let x = p.up(data);
        for &(pool, strides, padding) in cases {
            let spec = Pool2dSpec::new(&x_shape, pool, strides, padding).unwrap();
            let dy = p.rand(spec.output_shape().numel(), 6 + i as u64);
            for kind in [PoolKind::Max, PoolKind::Average, PoolKind::L2] {
                let what = format!("{kind:?} pool {pool:?} stride {strides:?} {padding:?} input {i}");
                let g = p.gpu.pool2d(kind, &x.0, &spec).unwrap();
                let c = p.cpu.pool2d(kind, &x.1, &spec).unwrap();
                p.check(&what, &g, &c);
                let gb = p.gpu.pool2d_backward(kind, &x.0, &g, &dy.0, &spec).unwrap();
                let cb = p.cpu.pool2d_backward(kind, &x.1, &c, &dy.1, &spec).unwrap();
                p.check(&format!("{what} backward"), &gb, &cb);
            }
        }
    }
}

#[test]
fn unary_ops_and_gradients() {
    let Some(p) = Pair::new() else { return };
    let mut x = random(1037, 20, -2.0, 2.0);
    x[0] = 0.0;
    x[1] = 1.0;
    x[2] = -1.0;
    let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.1).collect();
    let dy = p.rand(x.len(), 21);
    let ops = [
        UnaryOp::Neg,
        UnaryOp::Relu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
        UnaryOp::Abs,
        UnaryOp::Affine { scale: 1.5, shift: -0.25 },
        UnaryOp::Clamp { min: -1.0, max: 1.0 },
    ];
    for op in ops {
        let data = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt) { &pos } else { &x };
        let x = p.up(data);
        let g = p.gpu.unary(op, &x.0).unwrap();
        let c = p.cpu.unary(op, &x.1).unwrap();
        p.check(&format!("{op:?}"), &g, &c);
        let gb = p.gpu.unary_backward(op, &x.0, &g, &dy.0).unwrap();
        let cb = p.cpu.unary_backward(op, &x.1, &c, &dy.1).unwrap();
        p.check(&format!("{op:?} backward"), &gb, &cb);
    }
    // Large arguments stay finite.
    let big = p.up(&[-100.0, 100.0, -30.0, 30.0]);
    for op in [UnaryOp::Tanh, UnaryOp::Sigmoid] {
        let g = p.gpu.unary(op, &big.0).unwrap();
        let c = p.cpu.unary(op, &big.1).unwrap();
        p.check(&format!("{op:?} of large values"), &g, &c);
    }
}

#[test]
fn scaled_add_matches() {
    let Some(p) = Pair::new() else { return };
    let (a, b) = (p.rand(1001, 40), p.rand(1001, 41));
    let g = p.gpu.scaled_add(&a.0, &b.0, -0.25).unwrap();
    let c = p.cpu.scaled_add(&a.1, &b.1, -0.25).unwrap();
    p.check("scaled_add", &g, &c);
}

#[test]
fn binary_ops_broadcast_and_expand() {
    let Some(p) = Pair::new() else { return };
    let shapes: &[(&[usize], &[usize])] = &[
        (&[3, 1, 5], &[4, 1]),
        (&[4, 1], &[3, 1, 5]),
        (&[7, 11], &[11]),
        (&[7, 11], &[7, 1]),
        (&[2, 3, 4], &[2, 3, 4]),
        (&[5, 1, 3], &[1, 6, 1]),
        (&[], &[9]),
        (&[9], &[]),
        (&[2, 1, 3, 1, 2], &[1, 4, 1, 5, 1]),
    ];
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Equal,
        BinaryOp::GreaterEqual,
    ];
    for (i, &(sa, sb)) in shapes.iter().enumerate() {
        let (sa, sb) = (Shape::new(sa), Shape::new(sb));
        let (_, spec) = broadcast(&sa, &sb).unwrap();
        // Quantised so Equal / GreaterEqual see equal pairs.
        let a: Vec<f32> = random(sa.numel(), 30 + i as u64, -2.0, 2.0).iter().map(|v| v.round()).collect();
        let b: Vec<f32> = random(sb.numel(), 40 + i as u64, -2.0, 2.0)
            .iter()
            .map(|v| v.round() + 0.5 * (v < &0.0) as u8 as f32)
            .collect();
        let (a, b) = (p.up(&a), p.up(&b));
        for op in ops {
            let g = p.gpu.binary(op, &a.0, &b.0, &spec).unwrap();
            let c = p.cpu.binary(op, &a.1, &b.1, &spec).unwrap();
            p.check(&format!("{op:?} {sa} {sb}"), &g, &c);
        }
        let (_, spec) = broadcast(&sa, &Shape::new([3, 1, 1, 1, 1, 1])).unwrap();
        let g = p.gpu.expand(&a.0, &spec).unwrap();
        let c = p.cpu.expand(&a.1, &spec).unwrap();
        p.check(&format!("expand {sa}"), &g, &c);
    }
}

#[test]
fn reductions_and_argmax() {
    let Some(p) = Pair::new() else { return };
    let shapes = [
        (3, 7, 5),
        (1, 1000, 1),
        (13, 37, 1),
        (1, 73, 20),
        (4, 1, 6),
        (1, 20_000, 1),
        (1, 5000, 20),
        // A conv layer's bias gradient: column chunks, then three more passes.
        (1, 60_000, 7),
        (600, 3, 1),
        (2, 0, 3),
    ];
    for (i, &(outer, reduced, inner)) in shapes.iter().enumerate() {
        let spec = ReduceSpec { outer, reduced, inner };
        let x = p.rand(outer * reduced * inner, 50 + i as u64);
        for op in [ReduceOp::Sum, ReduceOp::Max] {
            let g = p.gpu.reduce(op, &x.0, &spec).unwrap();
            let c = p.cpu.reduce(op, &x.1, &spec).unwrap();
            p.check(&format!("{op:?} {spec:?}"), &g, &c);
        }
    }
    for &(rows, cols) in &[(13, 10), (3, 1000), (70_000, 3)] {
        // Few distinct values: many ties, the first maximum must win.
        let data: Vec<f32> = random(rows * cols, 60, 0.0, 4.0).iter().map(|v| v.floor()).collect();
        let x = p.up(&data);
        let g = p.gpu.argmax(&x.0, rows, cols).unwrap();
        let c = p.cpu.argmax(&x.1, rows, cols).unwrap();
        assert_eq!(p.gpu.download(&g).unwrap(), p.cpu.download(&c).unwrap(), "argmax {rows}x{cols}");
    }
}

#[test]
fn softmax_and_cross_entropy() {
    let Some(p) = Pair::new() else { return };
    for &(rows, cols) in &[(13, 10), (3, 300), (1, 1)] {
        let x = p.up(&random(rows * cols, 70, -5.0, 5.0));
        let dy = p.rand(rows * cols, 71);
        for log in [false, true] {
            let g = p.gpu.softmax(&x.0, rows, cols, log).unwrap();
            let c = p.cpu.softmax(&x.1, rows, cols, log).unwrap();
            p.check(&format!("softmax log {log} {rows}x{cols}"), &g, &c);
            let gb = p.gpu.softmax_backward(&g, &dy.0, rows, cols, log).unwrap();
            let cb = p.cpu.softmax_backward(&c, &dy.1, rows, cols, log).unwrap();
            p.check(&format!("softmax_backward log {log} {rows}x{cols}"), &gb, &cb);
        }
        // One-hot labels and one soft row.
        let mut labels = vec![0.0; rows * cols];
        for r in 0..rows {
            labels[r * cols + (r * 7) % cols] = 1.0;
        }
        if cols > 1 {
            labels[0] = 0.5;
            labels[1] = 0.5;
        }
        let labels = p.up(&labels);
        let (gl, gp) = p.gpu.softmax_cross_entropy(&x.0, &labels.0, rows, cols).unwrap();
        let (cl, cp) = p.cpu.softmax_cross_entropy(&x.1, &labels.1, rows, cols).unwrap();
        p.check(&format!("xent loss {rows}x{cols}"), &gl, &cl);
        p.check(&format!("xent probs {rows}x{cols}"), &gp, &cp);
    }
}

#[test]
fn concat_narrow_gather() {
    let Some(p) = Pair::new() else { return };
    let spec = ConcatSpec { outer: 7, part_inner: vec![3, 0, 11, 1] };
    let parts: Vec<_> =
        spec.part_inner.iter().enumerate().map(|(i, &w)| p.rand(7 * w, 80 + i as u64)).collect();
    let g = p.gpu.concat(&parts.iter().map(|s| &s.0).collect::<Vec<_>>(), &spec).unwrap();
    let c = p.cpu.concat(&parts.iter().map(|s| &s.1).collect::<Vec<_>>(), &spec).unwrap();
    p.check("concat", &g, &c);

    let x = p.rand(7 * 15, 90);
    for (offset, len) in [(0, 15), (3, 5), (14, 1), (4, 0)] {
        let spec = NarrowSpec { outer: 7, inner: 15, offset, len };
        let g = p.gpu.narrow(&x.0, &spec).unwrap();
        let c = p.cpu.narrow(&x.1, &spec).unwrap();
        p.check(&format!("narrow {offset}+{len}"), &g, &c);
    }
    assert!(p.gpu.narrow(&x.0, &NarrowSpec { outer: 7, inner: 15, offset: 10, len: 6 }).is_err());

    let indices = [6u32, 0, 3, 3, 1];
    let g = p.gpu.gather_rows(&x.0, 15, &indices).unwrap();
    let c = p.cpu.gather_rows(&x.1, 15, &indices).unwrap();
    p.check("gather_rows", &g, &c);
    assert!(p.gpu.gather_rows(&x.0, 15, &[7]).is_err());
    assert!(p.gpu.gather_rows(&x.0, 16, &[0]).is_err());
}

#[test]
fn dropout_masks_are_bit_identical() {
    let Some(p) = Pair::new() else { return };
    for (len, rate, seed) in [(10_007, 0.5, 42u64), (999, 0.1, u64::MAX - 3), (64, 0.0, 7)] {
        let g = p.gpu.download(&p.gpu.dropout_mask(len, rate, seed).unwrap()).unwrap();
        let c = p.cpu.download(&p.cpu.dropout_mask(len, rate, seed).unwrap()).unwrap();
        assert!(
            g.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits()),
            "dropout mask {len} {rate} {seed}"
        );
    }
    assert!(p.gpu.dropout_mask(10, 1.0, 1).is_err());
}

#[test]
fn errors_are_values_not_panics() {
    let Some(p) = Pair::new() else { return };
    // Storage from another backend.
    let cpu = p.cpu.upload(&[1.0]).unwrap();
    let err = p.gpu.unary(UnaryOp::Neg, &cpu).unwrap_err();
    assert!(err.to_string().contains("not a wgpu buffer"), "{err}");
    // A buffer beyond the adapter's limits names the limit.
    let too_big = (p.gpu.limits().max_storage_buffer_binding_size / 4 + 1) as usize;
    let err = p.gpu.fill(too_big, 0.0).unwrap_err();
    assert!(err.to_string().contains("max_storage_buffer_binding_size"), "{err}");
    // (Lengths that do not fit a spec are the tensor layer's to refuse, once for every
    // backend: `tensor/tests` checks its shape errors.)
    let x = p.gpu.upload(&[1.0, 2.0]).unwrap();
    // The backend still works afterwards.
    assert_eq!(p.gpu.download(&p.gpu.unary(UnaryOp::Neg, &x).unwrap()).unwrap(), vec![-1.0, -2.0]);
}

#[test]
fn many_kernels_before_one_download() {
    // More dispatches than the pending limit, pooled buffers reused along the way.
    let Some(p) = Pair::new() else { return };
    let (mut g, mut c) = p.rand(513, 99);
    for i in 0..150 {
        let op = if i % 2 == 0 { UnaryOp::Affine { scale: 0.5, shift: 1.0 } } else { UnaryOp::Tanh };
        g = p.gpu.unary(op, &g).unwrap();
        c = p.cpu.unary(op, &c).unwrap();
    }
    p.check("chain of 150 kernels", &g, &c);
    p.gpu.sync().unwrap();
}
