//! Which layer chains of a graph run as one fused op: decided once, when the graph is built,
//! for every kind of model.
//!
//! Today one chain fuses: a `Conv2D` with ReLU whose only reader is a `MaxPooling2D` runs as
//! [`Tensor::conv2d_relu_max_pool`], which a backend may compute in one pass and which applies
//! the ReLU after the pooling, on 4x fewer values: `maxpool(relu(z)) == relu(maxpool(z))`,
//! gradients included, because ReLU is monotone and maps every value it does not preserve to
//! the same 0. The convolution's own output is then never formed, so it must not be a model
//! output or read by another layer.

use std::any::Any;
use std::collections::HashMap;

use tensor::Tensor;

use super::symbolic::{Op, SymbolicTensor};
use crate::error::Result;
use crate::layers::{Conv2D, Layer, MaxPooling2D};

/// The fused chains of one graph.
#[derive(Default)]
pub(crate) struct Fusion {
    /// Convolution node id -> the max-pooling node computed with it.
    pool_of_conv: HashMap<u64, u64>,
}

impl Fusion {
    /// Finds the chains to fuse among `nodes` (in graph order).
    pub fn plan(
        nodes: &[SymbolicTensor],
        outputs: &[SymbolicTensor],
        consumers: &HashMap<u64, usize>,
    ) -> Self {
        let mut pool_of_conv = HashMap::new();
        for node in nodes {
            let [input] = node.node.inputs.as_slice() else { continue };
            let conv = &input.node;
            let only_reader = consumers.get(&conv.id) == Some(&1);
            let is_output = outputs.iter().any(|o| o.node.id == conv.id);
            if only_reader && !is_output && fusable(&conv.op, &node.node.op) {
                pool_of_conv.insert(conv.id, node.node.id);
            }
        }
        Fusion { pool_of_conv }
    }

    /// The pooling node computed together with convolution node `conv`, if they fuse.
    pub fn pool_of(&self, conv: u64) -> Option<u64> {
        self.pool_of_conv.get(&conv).copied()
    }

    /// How many chains fuse.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pool_of_conv.len()
    }
}

/// Whether `first` then `second` is a ReLU convolution then a max pooling.
fn fusable(first: &Op, second: &Op) -> bool {
    let (Op::Layer(conv), Op::Layer(pool)) = (first, second) else { return false };
    let relu_conv = as_layer::<Conv2D>(&*conv.lock().layer).is_some_and(Conv2D::fuses_with_max_pool);
    relu_conv && as_layer::<MaxPooling2D>(&*pool.lock().layer).is_some_and(MaxPooling2D::is_channels_last)
}

fn as_layer<L: Layer>(layer: &dyn Layer) -> Option<&L> {
    (layer as &dyn Any).downcast_ref::<L>()
}

/// The output of `pool` applied to the output of `conv` on `x`, as one op; the two layers are
/// those of a chain [`Fusion::plan`] chose.
pub(crate) fn conv_relu_max_pool(conv: &dyn Layer, pool: &dyn Layer, x: &Tensor) -> Result<Tensor> {
    let conv = as_layer::<Conv2D>(conv).expect("the plan fuses only Conv2D");
    let pool = as_layer::<MaxPooling2D>(pool).expect("the plan fuses only MaxPooling2D");
    conv.relu_max_pooled(x, pool.window())
}

#[cfg(test)]
mod tests {
    use crate::activation::Activation::{Linear, Relu};
    use crate::functional::{Add, Apply, Input, MergeLayer, Model, Shared};
    use crate::layers::{AveragePooling2D, Conv2D, Flatten, MaxPooling2D};

    fn fused(model: &Model) -> usize {
        model.graph.fusion.len()
    }

    #[test]
    fn the_lecture_models_fuse_each_conv_pool_pair() {
        let device = crate::device::cpu();
        assert_eq!(fused(crate::zoo::model4(&device, 1).unwrap().model().unwrap()), 1);
        assert_eq!(fused(crate::zoo::model5(&device, 1).unwrap().model().unwrap()), 2);
    }

    #[test]
    fn only_a_relu_conv_read_by_nothing_but_a_max_pool_fuses() {
        let x = Input::new([8, 8, 1]);
        let conv = |activation| Conv2D::new(2, (3, 3)).activation(activation);
        // A linear convolution, and an average pooling, do not fuse.
        let linear = MaxPooling2D::new().apply(&conv(Linear).apply(&x).unwrap()).unwrap();
        let average = AveragePooling2D::new().apply(&conv(Relu).apply(&x).unwrap()).unwrap();
        // A ReLU convolution whose output is also read elsewhere does not fuse.
        let shared_out = conv(Relu).apply(&x).unwrap();
        let pooled = MaxPooling2D::new().apply(&shared_out).unwrap();
        let also = MaxPooling2D::new().apply(&shared_out).unwrap();
        let both = Add::new().apply_many(&[&pooled, &also]).unwrap();
        // The fusable chain, twice through one shared convolution: each call fuses.
        let shared = Shared::new(conv(Relu));
        let a = MaxPooling2D::new().apply(&shared.apply(&x).unwrap()).unwrap();
        let b = MaxPooling2D::new().apply(&shared.apply(&x).unwrap()).unwrap();
        let outs: Vec<_> =
            [linear, average, both, a, b].iter().map(|t| Flatten::new().apply(t).unwrap()).collect();
        let model = Model::new(&[&x], &outs.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(fused(&model), 2);
        // A ReLU convolution that is a model output does not fuse either.
        let out = conv(Relu).apply(&x).unwrap();
        let pool = MaxPooling2D::new().apply(&out).unwrap();
        assert_eq!(fused(&Model::new(&[&x], &[&out, &pool]).unwrap()), 0);
    }
}
