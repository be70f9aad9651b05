//! Running a [`Graph`] on a batch: the one forward pass of every model.

use std::collections::{HashMap, HashSet};

use tensor::Tensor;

use super::fusion::run_chain;
use super::graph::Graph;
use super::symbolic::Op;
use crate::error::{Error, Result};
use crate::layers::ForwardCtx;
use crate::losses::Prediction;

/// Training (dropout active, drawing from `step_seed`) or inference.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunMode {
    pub training: bool,
    pub step_seed: u64,
}

impl RunMode {
    /// Inference: no randomness.
    pub fn inference() -> Self {
        RunMode { training: false, step_seed: 0 }
    }
}

/// What a run keeps: the outputs, and with `keep_all` every node's value (unfused).
pub(crate) struct RunResult {
    pub outputs: Vec<Prediction>,
    /// (node id, value) of every non-input node, in graph order, when asked for.
    pub all: Vec<(u64, Tensor)>,
}

impl Graph {
    /// Runs the graph on a batch of each input. For output `k` with `logits[k]`, an output layer
    /// ending in softmax returns its logits ([`Prediction::SoftmaxLogits`]) for a fused
    /// cross-entropy. Each layer draws its randomness from `hash(k) ^ step_seed`, `k` counting
    /// the layers in graph order (inputs not counted), so a chain of layers draws what a
    /// `Sequential` of them does.
    pub fn run(&self, inputs: &[Tensor], mode: RunMode, logits: &[bool]) -> Result<Vec<Prediction>> {
        Ok(self.execute(inputs, mode, logits, false)?.outputs)
    }

    /// Every non-input node's value in inference mode, with no chain fused (a fused chain never
    /// forms its first layer's output).
    pub fn run_all(&self, inputs: &[Tensor]) -> Result<Vec<(u64, Tensor)>> {
        Ok(self.execute(inputs, RunMode::inference(), &vec![false; self.outputs.len()], true)?.all)
    }

    fn execute(
        &self,
        inputs: &[Tensor],
        mode: RunMode,
        logits: &[bool],
        keep_all: bool,
    ) -> Result<RunResult> {
        let wants_logits: HashSet<u64> =
            self.outputs.iter().zip(logits).filter(|(_, &l)| l).map(|(o, _)| o.node.id).collect();
        let plain_outputs: HashSet<u64> =
            self.outputs.iter().zip(logits).filter(|(_, &l)| !l).map(|(o, _)| o.node.id).collect();
        let mut values: HashMap<u64, Tensor> = HashMap::new();
        let mut logit_values: HashMap<u64, Tensor> = HashMap::new();
        // Outputs of fused chains' second layers, computed with the first: by node id.
        let mut fused: HashMap<u64, Tensor> = HashMap::new();
        let mut all = Vec::new();
        let mut layer_index = 0u32;
        for tensor in &self.nodes {
            let node = &tensor.node;
            let name = self.name_of(tensor);
            let on_layer = |e: Error| in_layer(e, name, node.op.class_name());
            if let Some(pooled) = fused.remove(&node.id) {
                layer_index += 1;
                values.insert(node.id, pooled);
                continue;
            }
            if !keep_all && self.fusion.is_inside(node.id) {
                // The middle of a fused chain: computed, never formed, by its first layer.
                layer_index += 1;
                continue;
            }
            let mut ctx = ForwardCtx {
                training: mode.training,
                trainable: true,
                seed: tensor::random::hash32(layer_index) as u64 ^ mode.step_seed,
            };
            let value = match &node.op {
                Op::Input(_) => {
                    let k = self.inputs.iter().position(|x| x.node.id == node.id).expect("checked in new");
                    values.insert(node.id, inputs[k].clone());
                    continue;
                }
                Op::Layer(cell) => {
                    layer_index += 1;
                    let x = &values[&node.inputs[0].node.id];
                    let mut state = cell.lock();
                    ctx.trainable = state.trainable;
                    if let Some((second_id, chain)) = self.fusion.second_of(node.id).filter(|_| !keep_all) {
                        let second_node =
                            self.nodes.iter().find(|n| n.node.id == second_id).expect("in the graph");
                        let Op::Layer(second) = &second_node.node.op else {
                            unreachable!("the plan pairs layers")
                        };
                        let value = run_chain(chain, &mut *state.layer, &*second.lock().layer, x, ctx)
                            .map_err(|e| {
                                // Errors name both layers: the second's shape checks run here too.
                                in_layer(e, &format!("{name} + {}", self.name_of(second_node)), "fused")
                            })?;
                        fused.insert(second_id, value);
                        continue;
                    }
                    if wants_logits.contains(&node.id) {
                        if let Some(z) = state.layer.forward_logits(x, ctx) {
                            logit_values.insert(node.id, z.map_err(on_layer)?);
                            let needed_plain = self.consumers.get(&node.id).is_some_and(|&n| n > 0)
                                || plain_outputs.contains(&node.id)
                                || keep_all;
                            if !needed_plain {
                                continue;
                            }
                        }
                    }
                    state.layer.forward(x, ctx).map_err(on_layer)?
                }
                Op::Merge(cell) => {
                    layer_index += 1;
                    let xs: Vec<&Tensor> = node.inputs.iter().map(|x| &values[&x.node.id]).collect();
                    cell.merge.forward(&xs).map_err(on_layer)?
                }
                Op::Model(inner) => {
                    layer_index += 1;
                    let xs: Vec<Tensor> = node.inputs.iter().map(|x| values[&x.node.id].clone()).collect();
                    let mode = RunMode { training: mode.training, step_seed: ctx.seed };
                    let mut out = inner.run(&xs, mode, &[false]).map_err(on_layer)?;
                    let (Prediction::Output(y) | Prediction::SoftmaxLogits(y)) = out.remove(0);
                    y
                }
            };
            if keep_all {
                all.push((node.id, value.clone()));
            }
            values.insert(node.id, value);
        }
        let outputs = self
            .outputs
            .iter()
            .zip(logits)
            .map(|(o, &l)| match logit_values.get(&o.node.id) {
                Some(z) if l => Prediction::SoftmaxLogits(z.clone()),
                _ => Prediction::Output(values[&o.node.id].clone()),
            })
            .collect();
        Ok(RunResult { outputs, all })
    }
}

/// Prefixes an error with the layer it happened in.
pub(crate) fn in_layer(e: Error, name: &str, class: &str) -> Error {
    match e {
        Error::Build(msg) => Error::Build(format!("layer {name} ({class}): {msg}")),
        Error::Tensor(t) => Error::Build(format!("layer {name} ({class}): {t}")),
        other => other,
    }
}
