//! Short names for a stored file's parameters. ONNX spells a tensor's name
//! out at every node that reads it, so in a small sparse file the names
//! weigh as much as a layer: `fire3.expand3x3.weight/values/code_start`
//! costs 40 bytes twice over for 8 bytes of data. The storage steps end by
//! giving each parameter group (a kernel and its parts, a scale, a bias)
//! a short name, `t0`, `t1`, ... The layer a parameter belongs to stays
//! on the name of the node that uses it, the activations keep theirs (the
//! quantization metadata and `compress compare` go by them), and a part
//! keeps its suffix (`t4/values`, `t4/gaps/codebook`), which is how the
//! readers of `models::onnx` find sparse and coded kernels. A node named
//! as its first output loses the name, which runtimes give it anyway.

use std::collections::{BTreeMap, BTreeSet};

use models::onnx::codes::{GAP_STREAM, VALUE_STREAM};
use models::onnx::proto::ModelProto;

/// Name groups that keep their names: the code streams and the sparse
/// axis, which readers look up by name, and the preprocessing, which a
/// reader of the file should recognise.
fn kept(group: &str) -> bool {
    [VALUE_STREAM, GAP_STREAM, "sparse"].contains(&group) || group.starts_with("pre.")
}

/// The group of a name: what comes before its first `/`, if anything does
/// (exporters name values `/layer1/conv/Conv_output_0`).
fn group(name: &str) -> &str {
    match name.split_once('/') {
        Some((g, _)) if !g.is_empty() => g,
        _ => name,
    }
}

/// Renames every parameter group of `proto` (initializers, and the node
/// values decoded from them) to a short name no value of the graph has.
/// Returns how many groups were renamed.
pub fn shorten(proto: &mut ModelProto) -> usize {
    let Some(graph) = proto.graph.as_mut() else {
        return 0;
    };
    // The graph's own inputs and outputs keep their names, even where an
    // exporter listed parameters among the inputs.
    let public: BTreeSet<&str> = graph
        .input
        .iter()
        .chain(&graph.output)
        .filter_map(|v| v.name.as_deref())
        .map(group)
        .collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let names = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.input.iter().chain(&n.output).cloned()),
        )
        .chain(
            graph
                .input
                .iter()
                .chain(&graph.output)
                .filter_map(|v| v.name.clone()),
        );
    for name in names {
        taken.insert(group(&name).to_string());
        taken.insert(name);
    }
    let mut short: BTreeMap<String, String> = BTreeMap::new();
    let mut next = 0usize;
    for t in &graph.initializer {
        let g = group(t.name.as_deref().unwrap_or_default());
        if kept(g) || public.contains(g) || short.contains_key(g) {
            continue;
        }
        let id = loop {
            let id = format!("t{next}");
            next += 1;
            if !taken.contains(&id) {
                break id;
            }
        };
        short.insert(g.to_string(), id);
    }
    let rename = |name: &mut String| {
        if let Some(id) = short.get(group(name)) {
            *name = match name.split_once('/') {
                Some((_, rest)) => format!("{id}/{rest}"),
                None => id.clone(),
            };
        }
    };
    for t in &mut graph.initializer {
        if let Some(name) = t.name.as_mut() {
            rename(name);
        }
    }
    for node in &mut graph.node {
        node.input
            .iter_mut()
            .chain(node.output.iter_mut())
            .for_each(rename);
        // Runtimes name a node by its first output where it has no name.
        if node.name.is_some() && node.name.as_ref() == node.output.first() {
            node.name = None;
        }
    }
    for v in &mut graph.value_info {
        if let Some(name) = v.name.as_mut() {
            rename(name);
        }
    }
    short.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::onnx::proto::{GraphProto, NodeProto, TensorProto};

    fn tensor(name: &str) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn node(inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn parameters_get_short_names_and_keep_their_parts() {
        let mut proto = ModelProto {
            graph: Some(GraphProto {
                initializer: [
                    "conv.weight/values",
                    "conv.weight/gaps",
                    "codes/stream",
                    "t0",
                    "pre.std",
                ]
                .map(tensor)
                .to_vec(),
                node: vec![
                    node(&["conv.weight/values", "conv.weight/gaps"], "conv.weight"),
                    node(
                        &["x", "conv.weight", "t0", "pre.std", "codes/stream"],
                        "conv",
                    ),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(shorten(&mut proto), 2);
        let g = proto.graph.unwrap();
        let names: Vec<_> = g
            .initializer
            .iter()
            .map(|t| t.name.clone().unwrap())
            .collect();
        // `t0` was taken by a parameter of its own, which is renamed too.
        assert_eq!(
            names,
            ["t1/values", "t1/gaps", "codes/stream", "t2", "pre.std"]
        );
        assert_eq!(g.node[0].output, ["t1"]);
        assert_eq!(
            g.node[1].input,
            ["x", "t1", "t2", "pre.std", "codes/stream"]
        );
        assert_eq!(g.node[1].output, ["conv"]);
    }

    #[test]
    fn streams_keep_their_names_and_nodes_named_as_their_output_lose_theirs() {
        let named = |name: &str, output: &str| NodeProto {
            name: Some(name.into()),
            ..node(&["x"], output)
        };
        let mut proto = ModelProto {
            graph: Some(GraphProto {
                initializer: ["gap_codes/stream", "codes/stream"].map(tensor).to_vec(),
                node: vec![named("pool", "pool"), named("conv1", "conv1.relu")],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(shorten(&mut proto), 0);
        let g = proto.graph.unwrap();
        assert_eq!(g.initializer[0].name.as_deref(), Some("gap_codes/stream"));
        assert_eq!(g.node[0].name, None);
        assert_eq!(g.node[1].name.as_deref(), Some("conv1"));
    }
}
