//! What a model costs on disk, and what tract made of it: the nodes of the
//! optimised plan, with their op types and the element types they produce.
//! Tests use the plan to check which parts of a quantized model really run
//! on integers.

use std::io::Write;

use flate2::{write::GzEncoder, Compression};

use crate::Model;

/// A file's size after gzip at the default level: what a download or a
/// firmware image carries.
pub fn gzip_len(bytes: &[u8]) -> usize {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("writing to memory cannot fail");
    gz.finish().expect("writing to memory cannot fail").len()
}

/// One node of the optimised plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNode {
    /// tract's node name, derived from the ONNX node that produced it.
    pub name: String,
    /// tract's op type after optimisation (`OptMatMul`, `MaxPool`, ...).
    pub op: String,
    /// The nodes whose outputs this node reads, by index in the plan.
    pub inputs: Vec<usize>,
    /// The element type of each output, as tract names it (`F32`, `U8`, ...).
    pub output_types: Vec<String>,
    /// tract's own notes on the op: for a matrix product, the kernel it
    /// chose (`avx2_mmm_i32_8x8`, ...).
    pub info: Vec<String>,
}

impl PlanNode {
    /// Whether the node's first output holds floating-point values.
    pub fn is_float(&self) -> bool {
        self.output_types
            .first()
            .is_some_and(|t| matches!(t.as_str(), "F16" | "F32" | "F64"))
    }
}

impl Model {
    /// The batch-1 plan's nodes, in the plan's node order (indices match
    /// [`PlanNode::inputs`]).
    pub fn plan_nodes(&self) -> Vec<PlanNode> {
        let model = self.batch1_plan().model();
        model
            .nodes()
            .iter()
            .map(|node| PlanNode {
                name: node.name.clone(),
                op: node.op.name().to_string(),
                inputs: node.inputs.iter().map(|o| o.node).collect(),
                output_types: node
                    .outputs
                    .iter()
                    .map(|o| format!("{:?}", o.fact.datum_type.unquantized()))
                    .collect(),
                info: node.op.info().unwrap_or_default(),
            })
            .collect()
    }
}
