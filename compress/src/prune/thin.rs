//! Structured thinning: whole filters of the smallest norm leave each
//! convolution, and every layer that reads them loses the matching input
//! channels (through ReLUs, pools, batch and local response norms, a fire
//! module's concat and a flatten), so the network is genuinely narrower:
//! fewer bytes and fewer operations on any runtime.

use models::{Graph, NodeId, Op, Tensor, Weights};

use crate::CompressError;

/// The filter norm that ranks filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Norm {
    L1,
    L2,
}

/// A convolution's width before and after thinning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Width {
    pub layer: String,
    pub before: usize,
    /// The filters kept, in order.
    pub kept: Vec<usize>,
}

/// Removes `share` of the filters of every convolution that can lose some
/// and is not in `exclude`. Returns the narrower graph, its weights and the
/// widths of the thinned layers.
pub fn thin(
    graph: &Graph,
    weights: &Weights,
    share: f64,
    norm: Norm,
    exclude: &[String],
) -> Result<(Graph, Weights, Vec<Width>), CompressError> {
    models::weights::check(graph, weights)?;
    let shapes = graph.shapes()?;
    let users = graph.consumers();
    // The channels of each node's output that survive, in order.
    let mut keep: Vec<Vec<usize>> = shapes.iter().map(|s| (0..s.channels()).collect()).collect();
    let mut widths = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let Op::Conv { out, groups: 1, .. } = node.op else {
            continue;
        };
        if exclude.contains(&node.name) || !only_reaches_kernels(graph, &users, id) {
            continue;
        }
        let kernel = &weights[&format!("{}.weight", node.name)].data;
        let per = kernel.len() / out;
        let strength = |c: usize| -> f64 {
            let w = &kernel[c * per..(c + 1) * per];
            match norm {
                Norm::L1 => w.iter().map(|v| v.abs() as f64).sum(),
                Norm::L2 => w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt(),
            }
        };
        let kept = (out - (share * out as f64).round() as usize).max(1);
        let mut ranked: Vec<usize> = (0..out).collect();
        ranked.sort_by(|&a, &b| strength(b).total_cmp(&strength(a)));
        ranked.truncate(kept);
        ranked.sort_unstable();
        widths.push(Width {
            layer: node.name.clone(),
            before: out,
            kept: ranked.clone(),
        });
        keep[id] = ranked;
    }
    // Channel-wise layers pass their input's survivors on.
    for (id, node) in graph.nodes.iter().enumerate() {
        let input = |i: usize| &keep[node.inputs[i]];
        keep[id] = match node.op {
            Op::Relu | Op::Gelu | Op::Dropout { .. } | Op::Scale { .. } | Op::MaxPool { .. } => {
                input(0).clone()
            }
            Op::BatchNorm { .. } | Op::ChannelScale | Op::GlobalAvgPool | Op::Lrn { .. } => {
                input(0).clone()
            }
            Op::Concat => {
                let mut offset = 0;
                let mut all = Vec::new();
                for &i in &node.inputs {
                    all.extend(keep[i].iter().map(|c| c + offset));
                    offset += shapes[i].channels();
                }
                all
            }
            Op::Flatten => {
                let positions = shapes[node.inputs[0]].positions();
                input(0)
                    .iter()
                    .flat_map(|c| c * positions..(c + 1) * positions)
                    .collect()
            }
            _ => continue,
        };
    }
    let mut thinned = graph.clone();
    let mut out = Weights::new();
    for (id, node) in thinned.nodes.iter_mut().enumerate() {
        let inputs = node
            .inputs
            .first()
            .map(|&i| keep[i].as_slice())
            .unwrap_or_default();
        let mine = &keep[id];
        let name = node.name.clone();
        let mut put = |suffix: &str, t: Tensor| out.insert(format!("{name}.{suffix}"), t);
        let get = |suffix: &str| &weights[&format!("{name}.{suffix}")];
        match &mut node.op {
            Op::Conv {
                out: width,
                bias,
                groups,
                ..
            } => {
                // A depthwise kernel's one input channel stays.
                let columns = if *groups == 1 { inputs } else { &[] };
                put("weight", select(get("weight"), mine, columns));
                if *bias {
                    put("bias", select(get("bias"), mine, &[]));
                }
                *width = mine.len();
            }
            Op::Dense { bias, .. } => {
                put("weight", select(get("weight"), mine, inputs));
                if *bias {
                    put("bias", select(get("bias"), mine, &[]));
                }
            }
            Op::BatchNorm { .. } => {
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    put(p, select(get(p), mine, &[]));
                }
            }
            Op::LayerNorm { .. } => {
                for p in ["weight", "bias"] {
                    put(p, get(p).clone());
                }
            }
            Op::ChannelScale => {
                put("weight", select(get("weight"), mine, &[]));
            }
            _ => {}
        }
    }
    thinned.shapes()?;
    models::weights::check(&thinned, &out)?;
    Ok((thinned, out, widths))
}

/// Whether every path from `id`'s output passes only through channel-wise
/// layers to convolutions (not depthwise) or dense layers: then its filters
/// can go with the matching input channels of those readers.
fn only_reaches_kernels(graph: &Graph, users: &[Vec<NodeId>], id: NodeId) -> bool {
    if id == graph.output {
        return false;
    }
    users[id].iter().all(|&u| match graph.nodes[u].op {
        Op::Conv { groups, .. } => groups == 1,
        Op::Dense { .. } => true,
        Op::Relu | Op::Gelu | Op::Dropout { .. } | Op::Scale { .. } | Op::MaxPool { .. } => {
            only_reaches_kernels(graph, users, u)
        }
        Op::BatchNorm { .. } | Op::ChannelScale | Op::GlobalAvgPool | Op::Concat | Op::Flatten => {
            only_reaches_kernels(graph, users, u)
        }
        // LRN reads its neighbours across channels: thinned, it normalises
        // over the kept ones, a slightly different layer that fine-tuning
        // adapts to.
        Op::Lrn { .. } => only_reaches_kernels(graph, users, u),
        _ => false,
    }) && !users[id].is_empty()
}

/// Rows `rows` of `t` (its first axis) and, when `columns` is not empty,
/// columns `columns` of its second.
fn select(t: &Tensor, rows: &[usize], columns: &[usize]) -> Tensor {
    let row_len: usize = t.shape[1..].iter().product();
    let (cols, inner) = match t.shape.get(1) {
        Some(&c) if !columns.is_empty() => (columns.to_vec(), row_len / c),
        _ => (vec![0], row_len),
    };
    let mut data = Vec::with_capacity(rows.len() * cols.len() * inner);
    for &r in rows {
        for &c in &cols {
            let start = r * row_len + c * inner;
            data.extend_from_slice(&t.data[start..start + inner]);
        }
    }
    let mut shape = t.shape.clone();
    shape[0] = rows.len();
    if !columns.is_empty() {
        shape[1] = columns.len();
    }
    Tensor { shape, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_takes_rows_and_columns() {
        let t = Tensor::new(vec![3, 2, 2], (0..12).map(|v| v as f32).collect()).unwrap();
        let s = select(&t, &[0, 2], &[1]);
        assert_eq!(
            (s.shape, s.data),
            (vec![2, 1, 2], vec![2.0, 3.0, 10.0, 11.0])
        );
        assert_eq!(
            select(
                &Tensor::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
                &[1],
                &[]
            )
            .data,
            vec![2.0]
        );
    }
}
