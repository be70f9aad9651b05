//! Which layer chains of a graph run as one fused op: decided once, when the graph is built,
//! for every kind of model. A chain is two or three layers, each after the first reading
//! nothing but the previous one's output, which then is never formed: it must not be a model
//! output or read by another layer.
//!
//! - A `Conv2D` with ReLU then a `MaxPooling2D` runs as [`Tensor::conv2d_relu_max_pool`], which
//!   a backend may compute in one pass and which applies the ReLU after the pooling, on 4x
//!   fewer values: `maxpool(relu(z)) == relu(maxpool(z))`, gradients included, because ReLU is
//!   monotone and maps every value it does not preserve to the same 0.
//! - A `BatchNormalization` then a plain ReLU (`Activation("relu")`, `ReLU()`) runs in training
//!   as [`Tensor::batch_norm`] with its ReLU: the same values, two passes over the activations
//!   fewer forward and backward.
//! - When that ReLU is read only by a channels-last `MaxPooling2D` with 2x2 windows and stride
//!   2, the three run as [`Tensor::batch_norm_relu_max_pool`]: the full-size activations are
//!   neither written forward nor differentiated through the pooling backward.

use std::any::Any;
use std::collections::{HashMap, HashSet};

use tensor::{PoolWindow, Tensor};

use super::symbolic::{Op, SymbolicTensor};
use crate::error::Result;
use crate::layers::{ActivationLayer, BatchNormalization, Conv2D, ForwardCtx, Layer, MaxPooling2D, ReLU};

/// The kinds of fused chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chain {
    /// `Conv2D` with ReLU, then `MaxPooling2D`.
    ConvReluMaxPool,
    /// `BatchNormalization`, then a plain ReLU.
    NormRelu,
    /// `BatchNormalization`, a plain ReLU, then a 2x2 `MaxPooling2D` with stride 2.
    NormReluMaxPool,
}

/// The fused chains of one graph.
#[derive(Default)]
pub(crate) struct Fusion {
    /// First node id -> the chain's last node, computed with it, and the kind of chain.
    second_of: HashMap<u64, (u64, Chain)>,
    /// The middle nodes of three-layer chains: never computed on their own.
    inside: HashSet<u64>,
}

impl Fusion {
    /// Finds the chains to fuse among `nodes` (in graph order).
    pub fn plan(
        nodes: &[SymbolicTensor],
        outputs: &[SymbolicTensor],
        consumers: &HashMap<u64, usize>,
    ) -> Self {
        let mut second_of = HashMap::new();
        for node in nodes {
            let [input] = node.node.inputs.as_slice() else { continue };
            let first = &input.node;
            let only_reader = consumers.get(&first.id) == Some(&1);
            let is_output = outputs.iter().any(|o| o.node.id == first.id);
            if !only_reader || is_output {
                continue;
            }
            if let Some(chain) = chain(&first.op, &node.node.op) {
                second_of.insert(first.id, (node.node.id, chain));
            }
        }
        // A normalization's ReLU read only by a 2x2 max pooling joins it to the chain.
        let norm_of: HashMap<u64, u64> = (second_of.iter())
            .filter(|(_, (_, chain))| *chain == Chain::NormRelu)
            .map(|(&norm, &(relu, _))| (relu, norm))
            .collect();
        let mut inside = HashSet::new();
        for node in nodes {
            let [input] = node.node.inputs.as_slice() else { continue };
            let relu = input.node.id;
            let Some(&norm) = norm_of.get(&relu) else { continue };
            let only_reader = consumers.get(&relu) == Some(&1);
            let is_output = outputs.iter().any(|o| o.node.id == relu);
            if only_reader && !is_output && is_max_pool_2x2(&node.node.op) {
                second_of.insert(norm, (node.node.id, Chain::NormReluMaxPool));
                inside.insert(relu);
            }
        }
        Fusion { second_of, inside }
    }

    /// The last node computed together with node `first`, and how, if they fuse.
    pub fn second_of(&self, first: u64) -> Option<(u64, Chain)> {
        self.second_of.get(&first).copied()
    }

    /// Whether node `id` is the middle of a fused chain (its first layer computes it with the
    /// last, and it is never formed).
    pub fn is_inside(&self, id: u64) -> bool {
        self.inside.contains(&id)
    }

    /// How many chains of `kind` fuse.
    #[cfg(test)]
    pub fn count(&self, kind: Chain) -> usize {
        self.second_of.values().filter(|(_, k)| *k == kind).count()
    }
}

/// What a layer can be in a fused chain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    ReluConv,
    ChannelsLastMaxPool,
    Norm,
    PlainRelu,
    Other,
}

fn role(layer: &dyn Layer) -> Role {
    if as_layer::<Conv2D>(layer).is_some_and(Conv2D::fuses_with_max_pool) {
        Role::ReluConv
    } else if as_layer::<MaxPooling2D>(layer).is_some_and(MaxPooling2D::is_channels_last) {
        Role::ChannelsLastMaxPool
    } else if as_layer::<BatchNormalization>(layer).is_some() {
        Role::Norm
    } else if as_layer::<ActivationLayer>(layer).is_some_and(ActivationLayer::is_relu)
        || as_layer::<ReLU>(layer).is_some_and(ReLU::is_plain)
    {
        Role::PlainRelu
    } else {
        Role::Other
    }
}

/// The chain `first` then `second` make, if any.
fn chain(first: &Op, second: &Op) -> Option<Chain> {
    let (Op::Layer(first), Op::Layer(second)) = (first, second) else { return None };
    // One lock at a time: a shared layer applied to its own output is both cells.
    let first = role(&*first.lock().layer);
    let second = role(&*second.lock().layer);
    match (first, second) {
        (Role::ReluConv, Role::ChannelsLastMaxPool) => Some(Chain::ConvReluMaxPool),
        (Role::Norm, Role::PlainRelu) => Some(Chain::NormRelu),
        _ => None,
    }
}

/// Whether `op` is a channels-last `MaxPooling2D` with 2x2 windows and stride 2 (the input's
/// sizes, known only when it runs, decide whether the op fuses it or pools apart).
fn is_max_pool_2x2(op: &Op) -> bool {
    let Op::Layer(layer) = op else { return false };
    let state = layer.lock();
    as_layer::<MaxPooling2D>(&*state.layer).is_some_and(|pool| {
        pool.is_channels_last() && (pool.window().size, pool.window().strides) == ((2, 2), (2, 2))
    })
}

fn as_layer<L: Layer>(layer: &dyn Layer) -> Option<&L> {
    (layer as &dyn Any).downcast_ref::<L>()
}

/// The output of `second` applied to the output of `first` on `x`, as one op; the two layers
/// are those of a `chain` [`Fusion::plan`] chose, `ctx` the first's.
pub(crate) fn run_chain(
    chain: Chain,
    first: &mut dyn Layer,
    second: &dyn Layer,
    x: &Tensor,
    ctx: ForwardCtx,
) -> Result<Tensor> {
    match chain {
        Chain::ConvReluMaxPool => {
            let conv = as_layer::<Conv2D>(first).expect("the plan fuses only Conv2D");
            let pool = as_layer::<MaxPooling2D>(second).expect("the plan fuses only MaxPooling2D");
            conv.relu_max_pooled(x, pool.window())
        }
        Chain::NormRelu => {
            let norm = (first as &mut dyn Any).downcast_mut::<BatchNormalization>();
            norm.expect("the plan fuses only BatchNormalization").normalize_then(x, ctx, true)
        }
        Chain::NormReluMaxPool => {
            let pool = as_layer::<MaxPooling2D>(second).expect("the plan fuses only MaxPooling2D");
            let window: PoolWindow = pool.window();
            let norm = (first as &mut dyn Any).downcast_mut::<BatchNormalization>();
            norm.expect("the plan fuses only BatchNormalization").normalize_relu_max_pool(x, ctx, window)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;
    use crate::activation::Activation::{Linear, Relu};
    use crate::functional::{Add, Apply, Input, MergeLayer, Model, Shared};
    use crate::layers::{
        ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, DataFormat, Dense, Flatten,
        MaxPooling2D, ReLU,
    };
    use tensor::Padding;

    fn fused(model: &Model) -> usize {
        model.graph.fusion.count(super::Chain::ConvReluMaxPool)
    }

    #[test]
    fn the_lecture_models_fuse_each_conv_pool_pair() {
        let device = crate::device::cpu();
        assert_eq!(fused(crate::zoo::model4(&device, 1).unwrap().model().unwrap()), 1);
        assert_eq!(fused(crate::zoo::model5(&device, 1).unwrap().model().unwrap()), 2);
    }

    #[test]
    fn model6_fuses_each_normalization_with_its_relu() {
        let device = crate::device::cpu();
        let model6 = crate::zoo::model6(&device, 1).unwrap();
        let graph = &model6.model().unwrap().graph;
        // Two of the five ReLUs are read by nothing but a 2x2 max pooling, which joins them.
        assert_eq!(graph.fusion.count(Chain::NormRelu), 3);
        assert_eq!(graph.fusion.count(Chain::NormReluMaxPool), 2);
        assert_eq!(graph.fusion.count(Chain::ConvReluMaxPool), 0, "its convolutions are linear");
    }

    #[test]
    fn only_a_relu_read_by_nothing_but_a_2x2_max_pool_joins_its_normalization() {
        let x = Input::new([8, 8, 2]);
        let relu =
            || ActivationLayer::new(Relu).apply(&BatchNormalization::new().apply(&x).unwrap()).unwrap();
        let max = MaxPooling2D::new;
        // Join: the default pooling, and explicit 2x2 windows with `same` padding (the op
        // checks the sizes when it runs).
        let a = max().apply(&relu()).unwrap();
        let b = max().pool_size((2, 2)).padding(Padding::Same).apply(&relu()).unwrap();
        // Do not: 3x3 windows, stride 1, an average, channels first, a ReLU read by two
        // poolings, a ReLU that is a model output (each still fuses with its normalization).
        let c = max().pool_size((3, 3)).apply(&relu()).unwrap();
        let d = max().strides((1, 1)).apply(&relu()).unwrap();
        let e = AveragePooling2D::new().apply(&relu()).unwrap();
        let f = max().data_format(DataFormat::ChannelsFirst).apply(&relu()).unwrap();
        let shared = relu();
        let (g, h) = (max().apply(&shared).unwrap(), max().apply(&shared).unwrap());
        let output = relu();
        let i = max().apply(&output).unwrap();
        let outs: Vec<_> =
            [a, b, c, d, e, f, g, h, i].iter().map(|t| Flatten::new().apply(t).unwrap()).collect();
        let mut outs: Vec<_> = outs.iter().collect();
        outs.push(&output);
        let model = Model::new(&[&x], &outs).unwrap();
        assert_eq!(model.graph.fusion.count(Chain::NormReluMaxPool), 2);
        assert_eq!(model.graph.fusion.count(Chain::NormRelu), 6);
    }

    #[test]
    fn only_a_plain_relu_reading_nothing_but_a_normalization_fuses() {
        let x = Input::new([4, 4, 2]);
        let norm = || BatchNormalization::new();
        // Fuse: Activation("relu") and a default ReLU().
        let a = ActivationLayer::new(Relu).apply(&norm().apply(&x).unwrap()).unwrap();
        let b = ReLU::new().apply(&norm().apply(&x).unwrap()).unwrap();
        // Do not fuse: a clipped ReLU, another activation, a normalization read twice.
        let c = ReLU::new().max_value(Some(6.0)).apply(&norm().apply(&x).unwrap()).unwrap();
        let d = ActivationLayer::new(Linear).apply(&norm().apply(&x).unwrap()).unwrap();
        let shared = norm().apply(&x).unwrap();
        let e = ActivationLayer::new(Relu).apply(&shared).unwrap();
        let f = ActivationLayer::new(Relu).apply(&shared).unwrap();
        let outs = [a, b, c, d, e, f];
        let model = Model::new(&[&x], &outs.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(model.graph.fusion.count(Chain::NormRelu), 2);
    }

    #[test]
    fn a_shared_layer_applied_to_its_own_output_plans_without_deadlock() {
        let x = Input::new([4]);
        let shared = Shared::new(Dense::new(4));
        let y = shared.apply(&shared.apply(&x).unwrap()).unwrap();
        let model = Model::new(&[&x], &[&y]).unwrap();
        assert_eq!(model.graph.fusion.count(Chain::NormRelu), 0);
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
