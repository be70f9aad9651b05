//! The fused normalization + ReLU + 2x2 max pooling against the ops it replaces
//! (`batch_norm` with its ReLU, then `max_pool2d`): outputs and the gradients of `x`, `gamma`
//! and `beta` equal bit for bit, on random data, on data with many ties (equal values in a
//! window, windows all cut to 0 by the ReLU), with odd channel counts and with blocks of rows
//! that cut image row pairs; and the backend's refusals.

use crate::CpuBackend;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tensor::backend::{pool_channels, NormOps};
use tensor::shape::Pool2dSpec;
use tensor::{ChannelGrad, Device, DispatchHook, Padding, PoolWindow, PooledGrad, Tensor, TensorError};

const WINDOW: PoolWindow = PoolWindow { size: (2, 2), strides: (2, 2), padding: Padding::Valid };

/// Counts the fused forward calls, so a test knows the fused path ran.
#[derive(Default)]
struct Fused(AtomicUsize);

impl DispatchHook for Fused {
    fn observe(&self, op: &'static str, _: &dyn fmt::Display, _: Duration) {
        if op == "batch_norm_relu_max_pool" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// The pooled output and the gradients of `x`, `gamma`, `beta` of `sum(out * w)`, fused or
/// composed.
fn run(
    device: &Device,
    x: &[f32],
    dims: [usize; 4],
    k: Option<(&[f32], &[f32])>,
    w: &[f32],
    fused: bool,
) -> Vec<Vec<u32>> {
    let c = dims[3];
    let x = Tensor::from_slice(x, dims, device).unwrap().to_variable();
    let k = k.map(|(g, b)| {
        let t = |v: &[f32]| Tensor::from_slice(v, [c], device).unwrap().to_variable();
        (t(g), t(b))
    });
    let (gamma, beta) = (k.as_ref().map(|k| &k.0), k.as_ref().map(|k| &k.1));
    let (y, moments) = if fused {
        x.batch_norm_relu_max_pool(gamma, beta, 1e-3, WINDOW).unwrap()
    } else {
        let (y, moments) = x.batch_norm(-1, gamma, beta, 1e-3, true).unwrap();
        (y.max_pool2d(WINDOW.size, WINDOW.strides, WINDOW.padding).unwrap(), moments)
    };
    let w = Tensor::from_slice(w, y.shape().clone(), device).unwrap();
    let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![bits(&y), bits(&moments), bits(grads.get(&x).unwrap())];
    if let Some((g, b)) = &k {
        out.extend([bits(grads.get(g).unwrap()), bits(grads.get(b).unwrap())]);
    }
    out
}

#[test]
fn fused_equals_the_unfused_ops_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(61);
    // Odd channels; model6's shapes, whose blocks of 256 rows (32 channels) or 128 rows (64)
    // end inside a pair of image rows; a single window.
    let shapes = [[3, 6, 8, 5], [2, 10, 14, 7], [4, 28, 28, 32], [3, 14, 14, 64], [1, 2, 2, 1]];
    for threads in [1, 2] {
        let hook = Arc::new(Fused::default());
        let device = Device::new(CpuBackend::with_threads(threads).unwrap()).with_hook(hook.clone());
        let mut cases = 0;
        for dims in shapes {
            let [n, h, w, c] = dims;
            for ties in [false, true] {
                let len = n * h * w * c;
                // Ties: five values, so windows hold equal maxima and, shifted down by beta,
                // many windows are all 0 after the ReLU.
                let x: Vec<f32> = (0..len)
                    .map(|_| {
                        if ties {
                            rng.random_range(0..5) as f32 * 0.5 - 1.0
                        } else {
                            rng.random_range(-1.0..3.0)
                        }
                    })
                    .collect();
                let dy: Vec<f32> = (0..len / 4).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let gamma: Vec<f32> = (0..c).map(|_| rng.random_range(0.5f32..2.0)).collect();
                let beta: Vec<f32> = (0..c).map(|_| rng.random_range(-1.0f32..0.5)).collect();
                for k in [Some((&gamma[..], &beta[..])), None] {
                    let fused = run(&device, &x, dims, k, &dy, true);
                    let unfused = run(&device, &x, dims, k, &dy, false);
                    for (i, what) in
                        ["output", "moments", "dx", "dgamma", "dbeta"].iter().enumerate().take(fused.len())
                    {
                        assert_eq!(fused[i], unfused[i], "{what} of {dims:?} ties {ties} threads {threads}");
                    }
                    // The gradient reaches x: not all zeros, not all equal.
                    let dx = &fused[2];
                    assert!(dx.iter().any(|&b| f32::from_bits(b) != 0.0), "{dims:?}: dx all zero");
                    if ties && n * h * w >= 64 {
                        // Some windows were cut to 0 entirely: some outputs are exactly 0.
                        assert!(fused[0].contains(&0), "{dims:?}: no window all cut by the ReLU");
                    }
                    cases += 1;
                }
            }
        }
        assert_eq!(hook.0.load(Ordering::Relaxed), cases, "every fused case ran the fused op");
    }
}

#[test]
fn the_backend_refuses_what_it_does_not_fuse() {
    let backend = CpuBackend::with_threads(1).unwrap();
    let device = Device::new(CpuBackend::with_threads(1).unwrap());
    let upload = |v: &[f32]| Tensor::from_slice(v, [v.len()], &device).unwrap().storage().clone();
    let x = upload(&[0.5; 2 * 6 * 6 * 3]);
    let k = upload(&[1.0; 3]);
    let shape = tensor::Shape::from(vec![2, 6, 6, 3]);
    let three = Pool2dSpec::new(&shape, (3, 3), (3, 3), Padding::Valid).unwrap();
    let err = backend.channel_affine_relu_max_pool(&x, &k, &k, &three).unwrap_err();
    assert!(matches!(err, TensorError::Unsupported(_)), "{err}");
    // A pooled gradient, and winners, of the wrong length.
    let two = Pool2dSpec::new(&shape, (2, 2), (2, 2), Padding::Valid).unwrap();
    let (_, winners) = backend.channel_affine_relu_max_pool(&x, &k, &k, &two).unwrap();
    let short = upload(&[1.0; 10]);
    let spec = pool_channels(&two);
    let dy = upload(&[1.0; 2 * 3 * 3 * 3]);
    let pooled = |winners| Some(PooledGrad { pool: &two, winners });
    for (dy, winners, what) in [(&short, &winners, "pooled gradient"), (&dy, &short, "winners")] {
        let grad = ChannelGrad { dy, relu_gate: None, pooled: pooled(winners) };
        let err = backend.channel_sums(grad, &x, None, &spec).unwrap_err();
        let message = format!("the {what} holds 10 values");
        assert!(matches!(&err, TensorError::InvalidArgument(m) if m.contains(&message)), "{err}");
    }
    // The well-formed call runs: the pooling of a constant sends each window's gradient to
    // its first pixel, so sum(g) is the pooled gradient's sum per channel.
    let grad = ChannelGrad { dy: &dy, relu_gate: None, pooled: pooled(&winners) };
    let sums = backend.channel_sums(grad, &x, None, &spec).unwrap();
    let sums = tensor::MemoryOps::download(&backend, &sums).unwrap();
    assert_eq!(&sums[3..], &[18.0; 3]);
}
