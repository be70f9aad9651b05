use super::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tensor::{Padding, Shape};

fn random(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn spec(x: [usize; 4], out_c: usize, padding: Padding) -> Conv2dSpec {
    Conv2dSpec::new(&Shape::new(x), &Shape::new([3, 3, x[3], out_c]), (1, 1), padding).unwrap()
}

/// Odd sizes (7x7, 5x6, 9x11: tiles over the edges), channels that fill no register (3, 17,
/// 33, 70), one to eight registers of outputs (groups of 4 + 1 and 4 + 4), `same` and
/// `valid` padding, one image and many (more than a chunk, more than a slot), rows of tiles
/// longer than `avx512::input_tiles`' runs, and model6's shapes on few images.
fn cases() -> Vec<Conv2dSpec> {
    vec![
        spec([1, 5, 6, 17], 20, Padding::Same),
        spec([2, 7, 7, 16], 16, Padding::Same),
        spec([5, 6, 5, 33], 70, Padding::Valid),
        spec([3, 9, 11, 3], 5, Padding::Same),
        spec([37, 4, 4, 16], 16, Padding::Same),
        spec([2, 28, 28, 32], 32, Padding::Same),
        spec([3, 14, 14, 32], 64, Padding::Same),
        spec([2, 14, 14, 64], 64, Padding::Same),
        spec([2, 7, 7, 64], 128, Padding::Same),
        spec([2, 8, 9, 20], 40, Padding::Valid),
        // Rows of 10 F(4x4) tiles (19 of F(2x2)): longer than the input transform's runs.
        spec([2, 6, 38, 17], 24, Padding::Same),
    ]
}

/// Calls `f(x_index, filter_index, y_index)` for every multiply-add of the convolution.
fn taps(s: &Conv2dSpec, mut f: impl FnMut(usize, usize, usize)) {
    for (b, oy, ox) in
        (0..s.batch).flat_map(|b| (0..s.out_h).flat_map(move |y| (0..s.out_w).map(move |x| (b, y, x))))
    {
        for (ky, kx) in TAPS {
            let iy = (oy + ky) as isize - s.pad_top as isize;
            let ix = (ox + kx) as isize - s.pad_left as isize;
            if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                continue;
            }
            let (iy, ix) = (iy as usize, ix as usize);
            for c in 0..s.in_c {
                for o in 0..s.out_c {
                    let xi = ((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c;
                    let fi = ((ky * 3 + kx) * s.in_c + c) * s.out_c + o;
                    let yi = ((b * s.out_h + oy) * s.out_w + ox) * s.out_c + o;
                    f(xi, fi, yi);
                }
            }
        }
    }
}

/// An f64 sum and the sum of its terms' magnitudes.
#[derive(Clone, Copy, Default)]
struct Exact {
    sum: f64,
    magnitude: f64,
}

impl Exact {
    fn add(&mut self, a: f32, b: f32) {
        let p = f64::from(a) * f64::from(b);
        self.sum += p;
        self.magnitude += p.abs();
    }
}

/// Each value within `RELATIVE` of its terms' magnitude. A direct f32 sum of `n` terms
/// errs by at most about `n` ulps of that magnitude; Winograd's transforms add at most
/// `4 + 9` roundings of partial sums no larger than four times the terms (`V`'s entries
/// sum up to four inputs, `Y`'s up to nine entries of `M`), and the products and the
/// filter gradient's sums over tiles are blocked, so their error grows far slower than
/// `n`. 2e-6 (about 16 ulps) holds with a wide margin on these shapes (the errors seen
/// are a few ulps) and is far below what one wrong tap would give (a term's whole size).
const RELATIVE: f64 = 2e-6;

/// The bound for F(4x4, 3x3). Its transforms scale partial sums far more: a row of `B^T`
/// sums up to 10 inputs' magnitudes (`4 d0 - 5 d2 + d4`), a row of `A^T` up to 19 entries
/// of `M` (`m1 - m2 + 8 m3 - 8 m4 + m5`), and `G`'s sixths round in `U` (once, from f64),
/// so roundings of values up to ~100 times the terms cancel back down. The errors seen on
/// these shapes are 3e-7 to 4e-6 of the terms' magnitudes (F(2x2): 4e-8 to 4e-7); 2e-5
/// (about 170 ulps) leaves a margin of five and is still far below one wrong tap.
const RELATIVE_F4: f64 = 2e-5;

/// Checks `got` against `want` within `relative` of each value's terms' magnitude, and
/// returns the largest error seen in those units.
fn assert_close(what: &str, s: &Conv2dSpec, got: &[f32], want: &[Exact], relative: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}");
    let mut worst = 0.0f64;
    for (i, (&g, w)) in got.iter().zip(want).enumerate() {
        let error = (f64::from(g) - w.sum).abs();
        if w.magnitude > 0.0 {
            worst = worst.max(error / w.magnitude);
        }
        assert!(
            error <= relative * w.magnitude + 1e-30,
            "{what} {:?} -> {} [{i}]: got {g}, want {} (terms {})",
            s.input_shape(),
            s.out_c,
            w.sum,
            w.magnitude
        );
    }
    worst
}

/// The forward pass (with and without bias) and both gradients, with either tile, equal an
/// f64 reference to rounding (the largest errors, in units of the terms' magnitudes, are
/// printed with `--nocapture`).
#[test]
fn passes_match_an_f64_reference() {
    if !crate::isa::features().avx512f {
        return;
    }
    let mut rng = StdRng::seed_from_u64(61);
    for s in cases() {
        assert!(takes(&s));
        let x = random(s.input_shape().numel(), &mut rng);
        let w = random(s.filter_shape().numel(), &mut rng);
        let bias = random(s.out_c, &mut rng);
        let dy = random(s.output_shape().numel(), &mut rng);
        let mut y = vec![Exact::default(); dy.len()];
        let mut dx = vec![Exact::default(); x.len()];
        let mut dw = vec![Exact::default(); w.len()];
        taps(&s, |xi, fi, yi| {
            y[yi].add(x[xi], w[fi]);
            dx[xi].add(dy[yi], w[fi]);
            dw[fi].add(dy[yi], x[xi]);
        });
        let mut with_bias = y.clone();
        for (i, y) in with_bias.iter_mut().enumerate() {
            y.add(bias[i % s.out_c], 1.0);
        }
        for (tile, relative) in [(Tile::F2, RELATIVE), (Tile::F4, RELATIVE_F4)] {
            let errors = [
                assert_close("forward, no bias", &s, &forward(&x, &w, None, &s, tile), &y, relative),
                assert_close("forward", &s, &forward(&x, &w, Some(&bias), &s, tile), &with_bias, relative),
                assert_close("input gradient", &s, &backward_input(&dy, &w, &s, tile), &dx, relative),
                assert_close("filter gradient", &s, &backward_filter(&x, &dy, &s, tile), &dw, relative),
            ];
            eprintln!(
                "{tile:?} {:?} -> {}: {:?}",
                s.input_shape(),
                s.out_c,
                errors.map(|e| format!("{e:.1e}"))
            );
        }
    }
}

/// Training runs are reproducible: no pass depends on the number of threads.
#[test]
fn passes_are_bit_identical_across_thread_counts() {
    if !crate::isa::features().avx512f {
        return;
    }
    let mut rng = StdRng::seed_from_u64(62);
    let s = spec([41, 10, 9, 24], 40, Padding::Same);
    let x = random(s.input_shape().numel(), &mut rng);
    let w = random(s.filter_shape().numel(), &mut rng);
    let dy = random(s.output_shape().numel(), &mut rng);
    for tile in [Tile::F2, Tile::F4] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let passes = [
                    forward(&x, &w, None, &s, tile),
                    backward_input(&dy, &w, &s, tile),
                    backward_filter(&x, &dy, &s, tile),
                ];
                passes.map(|p| p.into_iter().map(f32::to_bits).collect::<Vec<_>>())
            })
        };
        let one = run(1);
        assert_eq!(one, run(2), "{tile:?}");
        assert_eq!(one, run(3), "{tile:?}");
    }
}

#[test]
fn only_3x3_stride_1_convolutions_are_taken() {
    let take = |x: [usize; 4], f: [usize; 4], stride| {
        takes(&Conv2dSpec::new(&Shape::new(x), &Shape::new(f), stride, Padding::Same).unwrap())
    };
    assert!(take([1, 28, 28, 32], [3, 3, 32, 32], (1, 1)));
    assert!(!take([1, 28, 28, 32], [5, 5, 32, 32], (1, 1)), "5x5");
    assert!(!take([1, 28, 28, 32], [3, 3, 32, 32], (2, 2)), "stride 2");
    assert!(!take([1, 28, 28, 32], [3, 1, 32, 32], (1, 1)), "3x1");
    assert!(!take([0, 28, 28, 32], [3, 3, 32, 32], (1, 1)), "no images");
}

/// The measurements behind `dispatch.rs`'s choice of tiles: each pass of model6's 3x3
/// layers (batch 128) with F(2x2) and F(4x4), alternated, medians in ms. Run with
/// `cargo test -p mnist-rs-kernels-cpu --release --lib tiles_on_model6 -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn tiles_on_model6() {
    if !crate::isa::features().avx512f {
        return;
    }
    let mut rng = StdRng::seed_from_u64(63);
    let shapes =
        [([128, 28, 28, 32], 32), ([128, 14, 14, 32], 64), ([128, 14, 14, 64], 64), ([128, 7, 7, 64], 128)];
    for (x_shape, out_c) in shapes {
        let s = spec(x_shape, out_c, Padding::Same);
        let x = random(s.input_shape().numel(), &mut rng);
        let w = random(s.filter_shape().numel(), &mut rng);
        let dy = random(s.output_shape().numel(), &mut rng);
        let mut times = [[Vec::new(), Vec::new(), Vec::new()], [Vec::new(), Vec::new(), Vec::new()]];
        for _ in 0..25 {
            for (t, tile) in [Tile::F2, Tile::F4].into_iter().enumerate() {
                let mut time = |pass: usize, f: &dyn Fn() -> Vec<f32>| {
                    let start = std::time::Instant::now();
                    crate::buffers::recycle(std::hint::black_box(f()));
                    times[t][pass].push(start.elapsed().as_secs_f64() * 1e3);
                };
                time(0, &|| forward(&x, &w, None, &s, tile));
                time(1, &|| backward_input(&dy, &w, &s, tile));
                time(2, &|| backward_filter(&x, &dy, &s, tile));
            }
        }
        // Medians, and minima (what a busy machine disturbs least).
        let stats = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0])
        };
        let [f2, f4] = times.map(|passes| passes.map(stats));
        eprintln!("{x_shape:?} -> {out_c}: forward, input gradient, filter gradient (median, min)");
        eprintln!("    F2 {f2:.2?}\n    F4 {f4:.2?}");
    }
}
