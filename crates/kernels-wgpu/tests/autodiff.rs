//! End to end: a small CNN's loss and every gradient, through `tensor`'s autodiff on a
//! `Device` wrapping the wgpu backend, against the same graph on the CPU.

mod common;

use common::{assert_close, backend, random};
use kernels_cpu::CpuBackend;
use tensor::{Device, Padding, Result, Tensor};

/// Loss and gradients (input, conv filter, conv bias, dense weight, dense bias) of
/// conv2d -> relu -> dropout -> max pool -> flatten -> dense -> softmax cross-entropy.
fn loss_and_grads(device: &Device) -> Result<(f32, Vec<Vec<f32>>)> {
    let (batch, h, w, c, filters, classes) = (4, 9, 8, 3, 6, 5);
    let t = |data: Vec<f32>, shape: Vec<usize>| Tensor::from_vec(data, shape, device);
    let x = t(random(batch * h * w * c, 1, -1.0, 1.0), vec![batch, h, w, c])?.to_variable();
    let w1 = t(random(3 * 3 * c * filters, 2, -0.5, 0.5), vec![3, 3, c, filters])?.to_variable();
    let b1 = t(random(filters, 3, -0.1, 0.1), vec![filters])?.to_variable();
    let features = filters * (h / 2) * (w / 2);
    let w2 = t(random(features * classes, 4, -0.3, 0.3), vec![features, classes])?.to_variable();
    let b2 = t(random(classes, 5, -0.1, 0.1), vec![classes])?.to_variable();
    let mut onehot = vec![0.0; batch * classes];
    for r in 0..batch {
        onehot[r * classes + (r * 3) % classes] = 1.0;
    }
    let labels = t(onehot, vec![batch, classes])?;

    let y = x.conv2d(&w1, Some(&b1), (1, 1), Padding::Same)?.relu()?.dropout(0.25, 11)?;
    let y = y.max_pool2d((2, 2), (2, 2), Padding::Valid)?.flatten()?;
    let logits = y.linear(&w2, &b2)?;
    let loss = logits.softmax_cross_entropy(&labels)?.mean_all()?;
    let grads = loss.backward()?;
    let mut out = Vec::new();
    for v in [&x, &w1, &b1, &w2, &b2] {
        out.push(grads.get(v).expect("every variable gets a gradient").to_vec()?);
    }
    Ok((loss.item()?, out))
}

#[test]
fn cnn_loss_and_gradients_match_cpu() {
    let Some(gpu) = backend() else { return };
    let gpu = Device::new(gpu.clone());
    let cpu = Device::new(CpuBackend::new());
    let (gpu_loss, gpu_grads) = loss_and_grads(&gpu).unwrap();
    let (cpu_loss, cpu_grads) = loss_and_grads(&cpu).unwrap();
    assert_close("loss", &[gpu_loss], &[cpu_loss], 1e-4);
    for (i, (g, c)) in gpu_grads.iter().zip(&cpu_grads).enumerate() {
        let name = ["x", "conv filter", "conv bias", "dense weight", "dense bias"][i];
        assert!(c.iter().any(|&v| v != 0.0), "{name}: the CPU gradient is all zero");
        assert_close(&format!("gradient of {name}"), g, c, 1e-4);
    }
}
