//! `summary()` for functional models: Keras' table with the "Connected to" column.

use super::graph::Op;
use super::model::{param_count, Model};
use crate::error::Result;
use crate::summary::{summary_table_connected, SummaryRow};

impl Model {
    /// Keras' summary table: one row per layer (inputs and merge layers included, a shared
    /// layer once), its output shape, parameter count and the layers it reads, as Keras writes
    /// them: `dense_1[0][0]` is the first call of `dense_1` (a shared layer's second call is
    /// `dense_1[1][0]`).
    pub fn summary(&self) -> Result<String> {
        let mut rows: Vec<SummaryRow> = Vec::new();
        let mut connected: Vec<Vec<String>> = Vec::new();
        let mut row_of_layer: Vec<u64> = Vec::new();
        for tensor in &self.nodes {
            let node = &tensor.node;
            let links = node.inputs.iter().map(|x| format!("{}[{}][0]", x.name(), x.node.call_index));
            if let Some(row) = row_of_layer.iter().position(|&id| id == node.layer_id()) {
                // A shared layer's later call: its inputs join the layer's row.
                connected[row].extend(links);
                continue;
            }
            let params = match &node.op {
                Op::Layer(cell) => param_count(&cell.lock()),
                Op::Input(_) | Op::Merge(_) => 0,
            };
            rows.push(SummaryRow {
                name: format!("{} ({})", node.layer_name(), node.class_name()),
                output_shape: node.shape.clone(),
                params,
            });
            connected.push(links.collect());
            row_of_layer.push(node.layer_id());
        }
        Ok(summary_table_connected(&self.name, &rows, Some(&connected), self.count_params(), 0))
    }
}
