//! What a graph costs: parameters, multiply-accumulates and the study's
//! "ops".
//!
//! How "ops" is counted, to match the study's figures (seed 000/001): every
//! multiply-accumulate counts 2; every element a bias add, an activation,
//! a scale or a residual add produces counts 1; a max-pool output counts one
//! comparison per window element; a global average pool counts one per input
//! element; LRN counts `2*size + 4` per element (square and sum the window,
//! then scale, shift, power and divide); batch norm counts 2 per element and
//! layer norm 6 per element. Preprocessing is not counted.

use crate::error::ModelError;
use crate::graph::{Graph, Op};

/// The cost of one image through a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Learned parameters (batch-norm running statistics excluded).
    pub params: usize,
    /// Multiply-accumulates per image.
    pub macs: usize,
    /// The study's operation count per image (see the module doc).
    pub ops: usize,
}

/// Counts the cost of `graph` for one image.
pub fn cost(graph: &Graph) -> Result<Cost, ModelError> {
    let shapes = graph.shapes()?;
    let params = graph
        .params()?
        .iter()
        .filter(|p| p.role.is_learned())
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    let (mut macs, mut ops) = (0, 0);
    for (id, node) in graph.nodes.iter().enumerate() {
        let out = shapes[id];
        let input = node.inputs.first().map(|&i| shapes[i]);
        let in_c = input.map(|s| s.channels()).unwrap_or(0);
        let n = out.numel();
        let (m, o) = match node.op {
            Op::Conv {
                kernel,
                groups,
                bias,
                ..
            } => {
                let m = n * (in_c / groups) * kernel * kernel;
                (m, 2 * m + if bias { n } else { 0 })
            }
            Op::Dense { bias, .. } => {
                let m = n * in_c;
                (m, 2 * m + if bias { n } else { 0 })
            }
            Op::MaxPool { kernel, .. } | Op::AvgPool { kernel, .. } => (0, n * kernel * kernel),
            Op::GlobalAvgPool => (0, input.map(|s| s.numel()).unwrap_or(0)),
            Op::Lrn { size, .. } => (0, n * (2 * size + 4)),
            Op::BatchNorm { .. } => (0, 2 * n),
            Op::LayerNorm { .. } => (0, 6 * n),
            Op::Relu
            | Op::Gelu
            | Op::ChannelScale
            | Op::Scale { .. }
            | Op::Clip { .. }
            | Op::LeakyRelu { .. }
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::Mul => (0, n),
            Op::HardSwish => (0, 2 * n),
            Op::Add => (0, n * (node.inputs.len() - 1)),
            Op::Input | Op::Flatten | Op::Concat | Op::Dropout { .. } => (0, 0),
        };
        macs += m;
        ops += o;
    }
    Ok(Cost { params, macs, ops })
}

/// `n` with its digits in groups of three, for reading at a glance:
/// 146570 -> "146,570".
pub fn grouped(n: usize) -> String {
    if n < 1000 {
        return n.to_string();
    }
    format!("{},{:03}", grouped(n / 1000), n % 1000)
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn digits_are_grouped_in_threes() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (146_570, "146,570"),
            (11_261_952, "11,261,952"),
        ];
        for (n, text) in cases {
            assert_eq!(grouped(n), text);
        }
    }
}
