//! A small Candle program of the lecture's model4 shape, for comparing clean build times.
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{
    conv2d, linear, ops, Conv2d, Conv2dConfig, Linear, Module, Optimizer, VarBuilder, VarMap, SGD,
};

struct Model4 {
    conv: Conv2d,
    hidden: Linear,
    out: Linear,
}

impl Model4 {
    fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Model4 {
            conv: conv2d(1, 20, 5, Conv2dConfig::default(), vb.pp("conv"))?,
            hidden: linear(2880, 100, vb.pp("hidden"))?,
            out: linear(100, 10, vb.pp("out"))?,
        })
    }
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.conv.forward(x)?.relu()?.max_pool2d(2)?.flatten_from(1)?;
        self.out.forward(&self.hidden.forward(&x)?.tanh()?)
    }
}

fn main() -> candle_core::Result<()> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let model = Model4::new(VarBuilder::from_varmap(&varmap, DType::F32, &device))?;
    let mut sgd = SGD::new(varmap.all_vars(), 0.01)?;
    let x = Tensor::randn(0f32, 1.0, (128, 1, 28, 28), &device)?;
    let y = Tensor::zeros(128, DType::U32, &device)?;
    for step in 0..5 {
        let logits = model.forward(&x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        sgd.backward_step(&loss)?;
        let acc =
            ops::softmax(&logits, D::Minus1)?.argmax(D::Minus1)?.eq(&y)?.to_dtype(DType::F32)?.mean_all()?;
        println!("step {step}: loss {:.4} accuracy {:.3}", loss.to_scalar::<f32>()?, acc.to_scalar::<f32>()?);
    }
    Ok(())
}
