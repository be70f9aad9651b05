//! `summary()`: Keras' table for every model. A `Sequential` lists its layers; a functional
//! model lists its inputs too and adds Keras' "Connected to" column.

use super::graph::GraphKind;
use super::symbolic::Op;
use super::{LayerHandle, Model};
use crate::error::Result;
use crate::summary::{summary_table_connected, SummaryRow};

impl Model {
    /// Keras' summary table: one row per layer (a shared layer once), its output shape and
    /// parameter count, then the total, trainable and non-trainable counts. A functional model's
    /// table also shows its inputs and the layers each one reads, as Keras writes them:
    /// `dense_1[0][0]` is the first call of `dense_1` (a shared layer's second call is
    /// `dense_1[1][0]`).
    pub fn summary(&self) -> Result<String> {
        let graph = &self.graph;
        let sequential = graph.kind == GraphKind::Sequential;
        let mut rows: Vec<SummaryRow> = Vec::new();
        let mut connected: Vec<Vec<String>> = Vec::new();
        let mut row_of_layer: Vec<u64> = Vec::new();
        for tensor in &graph.nodes {
            let node = &tensor.node;
            if sequential && matches!(node.op, Op::Input(_)) {
                continue;
            }
            let links = node.inputs.iter().map(|x| format!("{}[{}][0]", graph.name_of(x), x.node.call_index));
            if let Some(row) = row_of_layer.iter().position(|&id| id == node.layer_id()) {
                // A shared layer's later call: its inputs join the layer's row.
                connected[row].extend(links);
                continue;
            }
            let name = graph.name_of(tensor);
            let layer = graph.layer(name).expect("every node's layer is named");
            rows.push(SummaryRow {
                name: format!("{name} ({})", node.op.class_name()),
                output_shape: node.shape.clone(),
                params: LayerHandle::new(layer).count_params(),
            });
            connected.push(links.collect());
            row_of_layer.push(node.layer_id());
        }
        let connected = (!sequential).then_some(connected.as_slice());
        Ok(summary_table_connected(
            self.name(),
            &rows,
            connected,
            self.count_params(),
            self.count_non_trainable_params(),
        ))
    }
}
