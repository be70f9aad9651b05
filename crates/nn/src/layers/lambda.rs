//! `Lambda`: a layer that applies a Rust function to its input (Keras' `keras.layers.Lambda`),
//! for tensor ops between layers of a functional model. See also the shorthand methods on
//! [`SymbolicTensor`](crate::functional::SymbolicTensor) (`mul_scalar`, `slice`, ...).

use std::sync::Arc;

use tensor::{no_grad, Tensor};

use super::{ForwardCtx, Layer, LayerMeta};
use crate::error::{Error, Result};
use crate::init::Initializer;

/// The function of a [`Lambda`]: a batch to a batch of the same size.
pub type LambdaFn = Arc<dyn Fn(&Tensor) -> tensor::Result<Tensor> + Send + Sync>;

/// Applies a function to each batch, differentiably (the function is made of tensor ops).
/// Its output shape is found by running the function once on a batch of one zero sample.
///
/// A model with a `Lambda` trains and predicts, but cannot be saved whole: code is not data
/// (Keras too refuses to load a `Lambda` unless told to trust the file). Its weights can be.
///
/// ```
/// use nn::functional::{Apply, Input, Model};
/// use nn::layers::{Dense, Lambda};
/// let x = Input::new([4]);
/// let halved = Lambda::new(|t| t.mul_scalar(0.5)).apply(&x)?;
/// let y = Dense::new(2).apply(&halved)?;
/// let model = Model::new(&[&x], &[&y])?;
/// assert_eq!(model.count_params(), 4 * 2 + 2);
/// # Ok::<(), nn::Error>(())
/// ```
pub struct Lambda {
    f: LambdaFn,
    meta: LayerMeta,
}

impl Lambda {
    /// A layer applying `f`.
    pub fn new(f: impl Fn(&Tensor) -> tensor::Result<Tensor> + Send + Sync + 'static) -> Self {
        Lambda { f: Arc::new(f), meta: LayerMeta::default() }
    }
    meta_builders!();

    fn call(&self, x: &Tensor) -> Result<Tensor> {
        let y = (self.f)(x)?;
        if y.dims().first() != x.dims().first() {
            return Err(Error::Build(format!(
                "the function turned a batch of shape {:?} into {:?}: it must keep the batch axis",
                x.dims(),
                y.dims()
            )));
        }
        Ok(y)
    }
}

impl Layer for Lambda {
    layer_meta!("Lambda", "lambda");
    fn build(&mut self, input_shape: &[usize], init: &mut Initializer) -> Result<Vec<usize>> {
        let shape: Vec<usize> = std::iter::once(1).chain(input_shape.iter().copied()).collect();
        let probe = Tensor::zeros(shape, init.device())?;
        let y = no_grad(|| self.call(&probe))?;
        Ok(y.dims()[1..].to_vec())
    }
    fn forward(&mut self, x: &Tensor, _ctx: ForwardCtx) -> Result<Tensor> {
        self.call(x)
    }
}
