//! Batch-norm folding: the deployed graph has no batch norm after a
//! convolution or dense layer, because its affine transform is merged into
//! the kernel.

use crate::error::ModelError;
use crate::graph::{Graph, NodeId, Op};
use crate::weights::{Tensor, Weights};

/// Merges every batch norm that directly follows a convolution or dense
/// layer (its only reader) into that layer. Returns the smaller graph and
/// its weights; other batch norms stay as they are.
pub fn fold_batchnorm(graph: &Graph, weights: &Weights) -> Result<(Graph, Weights), ModelError> {
    crate::weights::check(graph, weights)?;
    let users = graph.consumers();
    let mut graph = graph.clone();
    let mut weights = weights.clone();
    // Nodes removed so far, replaced by the node they read.
    let mut replaced: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
    let norms: Vec<(NodeId, f32)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(id, node)| match node.op {
            Op::BatchNorm { eps } => Some((id, eps)),
            _ => None,
        })
        .collect();
    for (id, eps) in norms {
        let conv_id = graph.nodes[id].inputs[0];
        let (Op::Conv { bias, .. } | Op::Dense { bias, .. }) = graph.nodes[conv_id].op else {
            continue;
        };
        if users[conv_id].len() != 1 {
            continue;
        }
        let (bn, conv) = (&graph.nodes[id].name, graph.nodes[conv_id].name.clone());
        let take = |w: &mut Weights, n: String| {
            w.remove(&n)
                .ok_or_else(|| ModelError::Weights(format!("missing '{n}'")))
        };
        let gamma = take(&mut weights, format!("{bn}.weight"))?;
        let beta = take(&mut weights, format!("{bn}.bias"))?;
        let mean = take(&mut weights, format!("{bn}.running_mean"))?;
        let var = take(&mut weights, format!("{bn}.running_var"))?;
        let out = gamma.data.len();
        let scale: Vec<f32> = (0..out)
            .map(|c| gamma.data[c] / (var.data[c] + eps).sqrt())
            .collect();
        let kernel = weights
            .get_mut(&format!("{conv}.weight"))
            .expect("checked above");
        let per_out = kernel.data.len() / out;
        for (i, v) in kernel.data.iter_mut().enumerate() {
            *v *= scale[i / per_out];
        }
        let old_bias = if bias {
            take(&mut weights, format!("{conv}.bias"))?.data
        } else {
            vec![0.0; out]
        };
        let new_bias = (0..out)
            .map(|c| (old_bias[c] - mean.data[c]) * scale[c] + beta.data[c])
            .collect();
        weights.insert(format!("{conv}.bias"), Tensor::new(vec![out], new_bias)?);
        if let Op::Conv { bias, .. } | Op::Dense { bias, .. } = &mut graph.nodes[conv_id].op {
            *bias = true;
        }
        replaced[id] = Some(conv_id);
    }
    Ok((remove_nodes(graph, &replaced), weights))
}

/// Drops the nodes marked in `replaced`, rewiring their readers to the node
/// that stands in for them, and renumbers the rest.
fn remove_nodes(graph: Graph, replaced: &[Option<NodeId>]) -> Graph {
    let resolve = |mut id: NodeId| {
        while let Some(to) = replaced[id] {
            id = to;
        }
        id
    };
    let mut new_id = vec![0; graph.nodes.len()];
    let mut nodes = Vec::new();
    for (id, mut node) in graph.nodes.into_iter().enumerate() {
        if replaced[id].is_some() {
            continue;
        }
        node.inputs = node.inputs.iter().map(|&i| new_id[resolve(i)]).collect();
        new_id[id] = nodes.len();
        nodes.push(node);
    }
    Graph {
        nodes,
        output: new_id[resolve(graph.output)],
        ..graph
    }
}
