//! Rewrites of a file's ONNX graph, in memory, before tract reads it: chains
//! of ONNX ops that squeezebox runs as one op of its own become one node
//! that tract's reader, taught the op, builds. Matching the ONNX graph, not
//! tract's typed one, pins the chain to exactly what the exporter writes,
//! attributes and constants included; any other graph is left as it is.

use std::ops::Range;

use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};
use tract_onnx::prelude::*;

use crate::kernels::PlaneStandardise;
use crate::ImageSize;

/// Parses a squeezebox file of `size` pictures into a tract model, with the
/// fusions above.
pub(crate) fn parse(mut bytes: &[u8], size: ImageSize) -> TractResult<InferenceModel> {
    let mut onnx = crate::onnx_ops::reader();
    onnx.op_register
        .insert(PlaneStandardise::OP_TYPE, PlaneStandardise::parse);
    let mut proto = onnx.proto_model_for_read(&mut bytes)?;
    if let Some(graph) = proto.graph.as_mut() {
        fuse_standardisation(graph, size);
        crate::onnx_ops::check_ops(&onnx, graph, "squeezebox's runtime")?;
    }
    onnx.model_for_proto_model(&proto)
}

/// Replaces the exporter's preprocessing (`preprocess` in
/// `models/src/onnx/export.rs`): Cast to float, Transpose to NCHW, an
/// optional Slice (the crop), then either the per-image standardisation
/// (ReduceMean, Sub, Mul, ReduceMean, Sqrt, Max with a constant floor,
/// Div) or an imported model's per-channel normalisation (Mul and Add by
/// constants of three values). Its intermediate tensors must have no other
/// reader and not be outputs of the graph.
pub(crate) fn fuse_standardisation(graph: &mut GraphProto, size: ImageSize) {
    let Some((chain, fused)) = standardisation(graph, size) else {
        return;
    };
    let last = *chain.last().expect("the chain has four nodes or more");
    let gone: Vec<String> = (chain.iter())
        .filter(|&&i| i != last)
        .flat_map(|&i| graph.node[i].output.clone())
        .collect();
    graph.node[last] = fused;
    let mut dropped = chain;
    dropped.retain(|&i| i != last);
    dropped.sort_unstable();
    for i in dropped.into_iter().rev() {
        graph.node.remove(i);
    }
    graph.value_info.retain(|v| !gone.contains(&v.name));
}

/// The indices of the preprocessing's nodes, in order, and the node that
/// replaces them. `size` is the pictures'.
fn standardisation(graph: &GraphProto, size: ImageSize) -> Option<(Vec<usize>, NodeProto)> {
    let g = Graph(graph);
    let input = graph.input.first()?.name.as_str();
    let cast = g.only_reader(input)?;
    let to = g.node(cast).get_attr::<i64>("to").ok()?;
    g.is(cast, "Cast", &[input]).then_some(())?;
    (to == DataType::Float as i64).then_some(())?;
    let nchw = g.only_reader(g.out(cast))?;
    let perm = g.node(nchw).get_attr_slice::<i64>("perm").ok()?;
    (g.is(nchw, "Transpose", &[g.out(cast)]) && perm == [0, 3, 1, 2]).then_some(())?;
    let mut chain = vec![cast, nchw];
    let mut x = g.out(nchw);
    let mut window = [0..size.height, 0..size.width];
    if let [crop] = g.readers(x)?[..] {
        if g.node(crop).op_type == "Slice" {
            window = g.crop(crop, x, size)?;
            chain.push(crop);
            x = g.out(crop);
        }
    }
    let (tail, scaling) = per_image(&g, x).or_else(|| per_channel(&g, x))?;
    chain.extend(tail);
    let last = *chain.last()?;
    let [rows, cols] = window;
    let mut attribute = vec![window_attr("rows", &rows), window_attr("cols", &cols)];
    attribute.extend(scaling);
    let fused = NodeProto {
        name: g.node(last).name.clone(),
        op_type: PlaneStandardise::OP_TYPE.into(),
        domain: "ai.squeezebox".into(),
        input: vec![input.into()],
        output: vec![g.out(last).into()],
        attribute,
        ..Default::default()
    };
    Some((chain, fused))
}

/// The per-image standardisation of `x`: its nodes, and the attribute
/// (`floor`) of the op that does it.
fn per_image(g: &Graph, x: &str) -> Option<(Vec<usize>, Vec<AttributeProto>)> {
    let [a, b] = g.readers(x)?[..] else {
        return None;
    };
    let (mean, centre) = if g.is_mean(a, x) { (a, b) } else { (b, a) };
    let centred = g.out(centre);
    let mean_ok = g.is_mean(mean, x) && g.readers(g.out(mean))? == [centre];
    (mean_ok && g.is(centre, "Sub", &[x, g.out(mean)])).then_some(())?;
    let [a, b] = g.readers(centred)?[..] else {
        return None;
    };
    let (square, divide) = if g.node(a).op_type == "Mul" {
        (a, b)
    } else {
        (b, a)
    };
    g.is(square, "Mul", &[centred, centred]).then_some(())?;
    let var = g.only_reader(g.out(square))?;
    let std = g.only_reader(g.out(var))?;
    (g.is_mean(var, g.out(square)) && g.is(std, "Sqrt", &[g.out(var)])).then_some(())?;
    let floored = g.only_reader(g.out(std))?;
    let floor_name = g.node(floored).input.get(1)?;
    let [floor] = g.floats(floor_name)?[..] else {
        return None;
    };
    (floor.is_finite() && floor > 0.0).then_some(())?;
    (g.is(floored, "Max", &[g.out(std), floor_name])).then_some(())?;
    (g.readers(g.out(floored))? == [divide]).then_some(())?;
    g.is(divide, "Div", &[centred, g.out(floored)])
        .then_some(())?;
    let nodes = vec![mean, centre, square, var, std, floored, divide];
    Some((nodes, vec![float_attr("floor", &[floor])]))
}

/// The per-channel normalisation of `x`, `x * scale + shift` with three
/// values each: its nodes, and the attributes (`scale`, `shift`) of the op
/// that does it.
fn per_channel(g: &Graph, x: &str) -> Option<(Vec<usize>, Vec<AttributeProto>)> {
    let scale = g.only_reader(x)?;
    let scale_name = g.node(scale).input.get(1)?;
    g.is(scale, "Mul", &[x, scale_name]).then_some(())?;
    let shift = g.only_reader(g.out(scale))?;
    let shift_name = g.node(shift).input.get(1)?;
    g.is(shift, "Add", &[g.out(scale), shift_name])
        .then_some(())?;
    let three = |name: &str| -> Option<Vec<f32>> {
        let shape = g.constant(name)?.shape().to_vec();
        let values = g.floats(name)?;
        let across_channels = matches!(shape[..], [1, 3, 1, 1] | [3, 1, 1]);
        (across_channels && values.iter().all(|v| v.is_finite())).then_some(values)
    };
    let (scales, shifts) = (three(scale_name)?, three(shift_name)?);
    Some((
        vec![scale, shift],
        vec![float_attr("scale", &scales), float_attr("shift", &shifts)],
    ))
}

/// A float attribute, or a list of them.
fn float_attr(name: &str, values: &[f32]) -> AttributeProto {
    match values {
        [one] => AttributeProto {
            name: name.into(),
            r#type: AttributeType::Float as i32,
            f: *one,
            ..Default::default()
        },
        many => AttributeProto {
            name: name.into(),
            r#type: AttributeType::Floats as i32,
            floats: many.to_vec(),
            ..Default::default()
        },
    }
}

fn window_attr(name: &str, window: &Range<usize>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: vec![window.start as i64, window.end as i64],
        ..Default::default()
    }
}

/// Lookups in a graph by node index and tensor name.
struct Graph<'g>(&'g GraphProto);

impl<'g> Graph<'g> {
    fn node(&self, i: usize) -> &'g NodeProto {
        &self.0.node[i]
    }

    /// The first output of node `i`.
    fn out(&self, i: usize) -> &'g str {
        self.0.node[i].output.first().map_or("", String::as_str)
    }

    /// Whether node `i` is `op_type` on exactly `inputs`, with one output.
    fn is(&self, i: usize, op_type: &str, inputs: &[&str]) -> bool {
        let node = self.node(i);
        node.op_type == op_type && node.input == inputs && node.output.len() == 1
    }

    /// The nodes reading `tensor`, or none if the graph outputs it.
    fn readers(&self, tensor: &str) -> Option<Vec<usize>> {
        if self.0.output.iter().any(|o| o.name == tensor) {
            return None;
        }
        let reads = |n: &NodeProto| n.input.iter().any(|i| i == tensor);
        Some(
            (0..self.0.node.len())
                .filter(|&i| reads(self.node(i)))
                .collect(),
        )
    }

    fn only_reader(&self, tensor: &str) -> Option<usize> {
        match self.readers(tensor)?[..] {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Whether node `i` is the mean of `x` over all but the batch axis,
    /// keeping the axes (opset 13's ReduceMean, whose axes are attributes).
    fn is_mean(&self, i: usize, x: &str) -> bool {
        let node = self.node(i);
        let axes = node.get_attr_slice::<i64>("axes").ok();
        let keepdims = node.get_attr_opt::<i64>("keepdims").ok().flatten();
        self.is(i, "ReduceMean", &[x]) && axes == Some(&[1, 2, 3]) && keepdims.unwrap_or(1) == 1
    }

    /// The rows and columns kept by node `i`, if it is a Slice of `x`
    /// (NCHW pictures of `size`) on the spatial axes with constant bounds
    /// and unit steps.
    fn crop(&self, i: usize, x: &str, size: ImageSize) -> Option<[Range<usize>; 2]> {
        let node = self.node(i);
        let [input, starts, ends, axes] = &node.input[..] else {
            return None;
        };
        (node.op_type == "Slice" && input == x && node.output.len() == 1).then_some(())?;
        let ints = |name: &str| -> Option<Vec<i64>> {
            let ints = self.constant(name)?.cast_to::<i64>().ok()?.into_owned();
            let ints = ints
                .try_as_plain_ram()
                .ok()?
                .as_slice::<i64>()
                .ok()?
                .to_vec();
            Some(ints)
        };
        let (starts, ends, axes) = (ints(starts)?, ints(ends)?, ints(axes)?);
        (starts.len() == axes.len() && ends.len() == axes.len()).then_some(())?;
        let mut window = [0..size.height, 0..size.width];
        for ((&axis, &start), &end) in axes.iter().zip(&starts).zip(&ends) {
            let side = match axis {
                2 | -2 => &mut window[0],
                3 | -1 => &mut window[1],
                _ => return None,
            };
            let end = end.min(side.end as i64);
            (0 <= start && start < end).then_some(())?;
            *side = start as usize..end as usize;
        }
        Some(window)
    }

    /// The f32 values of the initializer `name`.
    fn floats(&self, name: &str) -> Option<Vec<f32>> {
        let t = self.constant(name)?;
        let plain = t.try_as_plain_ram().ok()?;
        Some(plain.as_slice::<f32>().ok()?.to_vec())
    }

    /// The value of the initializer `name`.
    fn constant(&self, name: &str) -> Option<Tensor> {
        let proto = self.0.initializer.iter().find(|t| t.name == name)?;
        tract_onnx::tensor::load_tensor(&MmapDataResolver, proto, None).ok()
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::{GraphProto, ValueInfoProto};
    use tract_onnx::prelude::Framework;

    use super::fuse_standardisation;
    use crate::kernels::PlaneStandardise;
    use crate::ImageSize;

    /// The graph of the shipped file `name`.
    fn shipped(name: &str) -> GraphProto {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name);
        let bytes = std::fs::read(path).unwrap();
        let proto = crate::onnx_ops::reader()
            .proto_model_for_read(&mut &bytes[..])
            .unwrap();
        proto.graph.unwrap()
    }

    #[test]
    fn the_exporters_standardisation_becomes_one_node_for_the_first_conv() {
        for name in ["squeeze1.onnx", "squeeze1.int8.onnx"] {
            let mut graph = shipped(name);
            let before = graph.node.len();
            fuse_standardisation(&mut graph, ImageSize::CIFAR);
            // Cast, Transpose, Slice, two means, Sub, Mul, Sqrt, Max, Div.
            assert_eq!(graph.node.len(), before - 9, "{name}");
            let fused: Vec<_> = (graph.node.iter())
                .filter(|n| n.op_type == PlaneStandardise::OP_TYPE)
                .collect();
            let [fused] = fused[..] else {
                panic!("{name}: {} fused nodes", fused.len())
            };
            assert_eq!(fused.input, [graph.input[0].name.clone()]);
            let ints = |a: usize| fused.attribute[a].ints.clone();
            // squeeze1 takes the centre 24x24 of 32x32 pictures.
            assert_eq!((ints(0), ints(1)), (vec![4, 28], vec![4, 28]), "{name}");
            assert_eq!(fused.attribute[2].f, 1.0 / (3.0f32 * 24.0 * 24.0).sqrt());
            let readers = graph
                .node
                .iter()
                .filter(|n| n.input.contains(&fused.output[0]));
            let readers: Vec<_> = readers.map(|n| n.op_type.as_str()).collect();
            let first = if name.contains("int8") {
                "QuantizeLinear"
            } else {
                "Conv"
            };
            assert_eq!(readers, [first], "{name}");
        }
    }

    /// The imported example's Cast, Transpose, Mul and Add become one
    /// node with torchvision's scale and shift per channel.
    #[test]
    fn an_imported_models_normalisation_becomes_one_node() {
        let name = "imported/resnet-style.p50.int8.onnx";
        let mut graph = shipped(name);
        let before = graph.node.len();
        fuse_standardisation(&mut graph, ImageSize::CIFAR);
        assert_eq!(graph.node.len(), before - 3);
        let fused: Vec<_> = (graph.node.iter())
            .filter(|n| n.op_type == PlaneStandardise::OP_TYPE)
            .collect();
        let [fused] = fused[..] else {
            panic!("{} fused nodes", fused.len())
        };
        let names: Vec<_> = fused.attribute.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rows", "cols", "scale", "shift"]);
        assert_eq!((fused.attribute[0].ints.clone()), vec![0, 32]);
        // (x / 255 - mean) / std, with the mean and std given at import.
        let scale = &fused.attribute[2].floats;
        assert_eq!(scale.len(), 3);
        assert!(scale.iter().all(|&s| s > 0.0 && s < 1.0), "{scale:?}");
    }

    /// Each edit makes the chain compute something else, or expose a
    /// tensor the fused op would not produce.
    #[test]
    fn a_chain_that_differs_is_left_as_it_is() {
        let node = |g: &GraphProto, name: &str| -> usize {
            g.node.iter().position(|n| n.name == name).unwrap()
        };
        type Edit = fn(&mut GraphProto, usize);
        let edits: [(&str, Edit); 5] = [
            ("pre.centre", |g, i| {
                let name = g.node[i].output[0].clone();
                g.output.push(ValueInfoProto {
                    name,
                    ..Default::default()
                });
            }),
            ("pre.nchw", |g, i| {
                g.node[i].attribute[0].ints = vec![0, 3, 2, 1]
            }),
            ("pre.mean", |g, i| g.node[i].attribute[0].ints = vec![2, 3]),
            ("pre.std_adjusted", |g, i| g.node[i].op_type = "Min".into()),
            ("pre.crop", |g, i| {
                g.node[i].input.push("pre.crop.axes".into())
            }),
        ];
        for (name, edit) in edits {
            let mut graph = shipped("squeeze1.onnx");
            let i = node(&graph, name);
            edit(&mut graph, i);
            let before = graph.clone();
            fuse_standardisation(&mut graph, ImageSize::CIFAR);
            assert_eq!(graph, before, "editing {name}");
        }
        let mut graph = shipped("squeeze1.onnx");
        fuse_standardisation(&mut graph, ImageSize::CIFAR);
        let fused = graph.clone();
        fuse_standardisation(&mut graph, ImageSize::CIFAR);
        assert_eq!(graph, fused, "a second pass changes nothing");
    }
}
