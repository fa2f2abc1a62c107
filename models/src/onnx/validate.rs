//! One pass over everything a model file stores, run by [`super::decode`]
//! before any runtime evaluates a node, so that the runtime, compress and
//! report all refuse a corrupt or hostile file the same way: with one line
//! naming the tensor, where tract would index past the end of a buffer or
//! allocate whatever a small file asks for.

use std::borrow::Cow;
use std::collections::HashSet;

use half::f16;

use super::build::f32_tensor;
use super::codes::coded_tensors;
use super::proto::{tensor_proto::DataType, GraphProto, NodeProto, TensorProto};
use super::sparse::{drop_unused, stored_runs};
use super::tensors::{check_length, find, float_values, ints};
use crate::error::ModelError;

/// Values any file may ask for, whatever its size: 1 GiB of f32.
const MAX_VALUES: u64 = 1 << 28;
/// Values any file may ask for, however small: 4 MiB of f32.
const MIN_VALUES: u64 = 1 << 20;
/// Values a file may ask for per byte it holds. A dense tensor holds at
/// most one value a byte (int8); a sparse int8 kernel at most 255 per 2
/// bytes (a filler's gap and value), and packed codes take less.
const VALUES_PER_BYTE: u64 = 256;

/// How many values, in all, a file of `file_bytes` may ask for: stored,
/// decoded (sparse kernels) or built by its nodes (`ConstantOfShape`).
pub fn max_values(file_bytes: usize) -> u64 {
    (file_bytes as u64)
        .saturating_mul(VALUES_PER_BYTE)
        .clamp(MIN_VALUES, MAX_VALUES)
}

/// What is left of a file's [`max_values`] as the pass goes.
struct Budget {
    file_bytes: usize,
    left: u64,
}

impl Budget {
    fn new(file_bytes: usize) -> Budget {
        Budget {
            file_bytes,
            left: max_values(file_bytes),
        }
    }

    /// The most values one tensor may have.
    fn total(&self) -> u64 {
        max_values(self.file_bytes)
    }

    fn charge(&mut self, name: &str, values: u64) -> Result<(), ModelError> {
        self.left = self.left.checked_sub(values).ok_or_else(|| {
            tensor_err(
                name,
                format!(
                    "asks for {values} values, past the {} that a {}-byte file may ask for",
                    self.total(),
                    self.file_bytes
                ),
            )
        })?;
        Ok(())
    }
}

/// What a file may hold: what its size and its pictures' size allow.
pub struct Scope {
    file_bytes: usize,
    /// The larger side of the input images, which bounds kernels and pads.
    side: usize,
    /// Whether a Reshape may compute its shape, as other exporters write
    /// it; squeezebox's files store every shape.
    computed_shapes: bool,
}

impl Scope {
    /// A squeezebox file's scope.
    pub fn squeezebox(file_bytes: usize, side: usize) -> Scope {
        Scope {
            file_bytes,
            side,
            computed_shapes: false,
        }
    }

    /// The scope of another tool's file.
    pub fn foreign(file_bytes: usize, side: usize) -> Scope {
        Scope {
            computed_shapes: true,
            ..Scope::squeezebox(file_bytes, side)
        }
    }
}

/// Checks every stored tensor and every node input that sizes a tensor or
/// scales int8 data. The input/output contract is [`super::decode`]'s.
pub fn validate(graph: &GraphProto, scope: &Scope) -> Result<(), ModelError> {
    let mut budget = Budget::new(scope.file_bytes);
    let attribute_tensors = graph
        .node
        .iter()
        .flat_map(|n| &n.attribute)
        .flat_map(|a| a.t.iter().chain(&a.tensors));
    for t in graph.initializer.iter().chain(attribute_tensors) {
        let name = t.name.as_deref().unwrap_or("(unnamed)");
        let values = check_length(t, budget.total()).map_err(|why| tensor_err(name, why))?;
        budget.charge(name, values)?;
    }
    // A bound, not a tally: a decoded tensor's values count here (the copy
    // compress decodes) and again for its decoding nodes' ConstantOfShape.
    let coded = coded_tensors(graph, budget.total() as usize)?;
    for c in &coded {
        budget.charge(&c.name, c.decoded.dims.iter().product::<i64>() as u64)?;
    }
    // Sparse kernels whose values are codes are read from a copy with the
    // codes decoded; a file without codes is read as it is, uncopied.
    let with_codes;
    let kernels_in = if coded.is_empty() {
        graph
    } else {
        let mut g = graph.clone();
        drop_unused(&mut g, coded.into_iter().map(|c| c.decoded).collect());
        with_codes = g;
        &with_codes
    };
    for run in stored_runs(kernels_in, budget.total() as usize)? {
        for kernel in &run.kernels {
            budget.charge(&kernel.name, kernel.numel() as u64)?;
        }
    }
    check_wiring(graph)?;
    for node in &graph.node {
        check_arity(node)?;
        check_attributes(node, scope.side)?;
        check_node(graph, node, scope, &mut budget)?;
    }
    Ok(())
}

/// Every value that a node or the graph's outputs read is made somewhere:
/// tract's reader panicked on an output that nothing makes.
fn check_wiring(graph: &GraphProto) -> Result<(), ModelError> {
    let made: HashSet<&str> = graph
        .input
        .iter()
        .filter_map(|i| i.name.as_deref())
        .chain(graph.initializer.iter().filter_map(|t| t.name.as_deref()))
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    let mut read = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .filter(|name| !name.is_empty())
        .chain(graph.output.iter().map(|o| o.name.as_deref().unwrap_or("")));
    match read.find(|name| !made.contains(name)) {
        Some(name) => Err(tensor_err(name, "is read, but nothing makes it".into())),
        None => Ok(()),
    }
}

/// The inputs an op needs at least: tract's ops index them unchecked.
fn required_inputs(op: &str) -> usize {
    match op {
        "QLinearConv" => 8,
        "BatchNormalization" => 5,
        "Slice" | "ScatterElements" => 3,
        "Add" | "BitShift" | "Conv" | "CumSum" | "DequantizeLinear" | "Div" | "Gather" | "Gemm"
        | "Mul" | "QuantizeLinear" | "Reshape" | "Split" | "Sub" => 2,
        "AveragePool" | "Cast" | "Concat" | "ConstantOfShape" | "Erf" | "Flatten"
        | "GlobalAveragePool" | "HardSigmoid" | "Identity" | "LRN" | "LeakyRelu" | "Max"
        | "MaxPool" | "Min" | "ReduceMean" | "ReduceSum" | "Relu" | "Sigmoid" | "Softmax"
        | "Sqrt" | "Sum" | "Transpose" => 1,
        // Other tools' ops (`Constant` has none): tract-onnx's own checks.
        _ => 0,
    }
}

/// Every node has the inputs its op needs, each named, and an output.
fn check_arity(node: &NodeProto) -> Result<(), ModelError> {
    let op = node.op_type.as_deref().unwrap_or("");
    let needed = required_inputs(op);
    let named = node
        .input
        .iter()
        .take(needed)
        .filter(|i| !i.is_empty())
        .count();
    if named < needed || node.output.is_empty() {
        return Err(ModelError::Node {
            name: node_name(node).into(),
            why: format!("{op} needs {needed} inputs and an output"),
        });
    }
    Ok(())
}

/// Highest rank of a squeezebox tensor: images are `[N,C,H,W]`.
const MAX_RANK: i64 = 4;

/// The integer attributes that tract indexes or divides by, within what
/// 2-D convolutions and pools over a picture of `side` pixels a side, of
/// rank-4 tensors, allow: tract panics (or allocates without bound) on a
/// stride of 0, a pad of 2^30, a missing pad, an axis or a permutation
/// past the rank.
fn check_attributes(node: &NodeProto, side: usize) -> Result<(), ModelError> {
    let side = side as i64;
    for a in &node.attribute {
        let name = a.name.as_deref().unwrap_or("");
        // As tract reads them: `axis` from the int, the rest from the list.
        let values: Vec<i64> = match name {
            "axis" => a.i.into_iter().collect(),
            _ => a.ints.clone(),
        };
        let ok = match name {
            "kernel_shape" | "strides" | "dilations" => {
                values.len() == 2 && values.iter().all(|v| (1..=side).contains(v))
            }
            "pads" => values.len() == 4 && values.iter().all(|v| (0..=side).contains(v)),
            "axis" | "axes" => values.iter().all(|v| (-MAX_RANK..MAX_RANK).contains(v)),
            "perm" => {
                // tract-hir indexes the input's dims by the permutation.
                let mut sorted = values.clone();
                sorted.sort_unstable();
                values.len() <= MAX_RANK as usize && sorted.into_iter().eq(0..values.len() as i64)
            }
            _ => true,
        };
        if !ok {
            return Err(ModelError::Node {
                name: node_name(node).into(),
                why: format!("attribute '{name}' {values:?} is out of range"),
            });
        }
    }
    Ok(())
}

/// The checks on one node's inputs: shapes it builds, int8 parameters.
fn check_node(
    graph: &GraphProto,
    node: &NodeProto,
    scope: &Scope,
    budget: &mut Budget,
) -> Result<(), ModelError> {
    let stored = |i: usize| stored_input(graph, node, i);
    match node.op_type.as_deref().unwrap_or("") {
        "ConstantOfShape" => {
            let (name, shape) = shape_input(stored(0)?)?;
            let values = product(&shape, name, |d| d >= 0, budget.total())?;
            budget.charge(name, values)?;
        }
        "Reshape"
            if scope.computed_shapes
                && (node.input.get(1)).is_some_and(|shape| find(graph, shape).is_none()) => {}
        "Reshape" => {
            let (name, shape) = shape_input(stored(1)?)?;
            // No allocation of its own, but no larger than any tensor.
            product(&shape, name, |d| d >= -1, budget.total())?;
        }
        "Split" => {
            // tract indexes the parts by the sizes, and the input's dims by
            // the axis. squeezebox splits a 1-D block of sparse kernels,
            // at stored sizes, one a part.
            let (name, sizes) = shape_input(stored(1)?)?;
            let along_0 = node
                .attribute
                .iter()
                .all(|a| a.name.as_deref() != Some("axis") || a.i == Some(0));
            if sizes.len() != node.output.len() || sizes.iter().any(|&s| s < 1) || !along_0 {
                return Err(tensor_err(
                    name,
                    format!(
                        "a Split must cut axis 0 into {} parts of at least one value",
                        node.output.len()
                    ),
                ));
            }
        }
        "BitShift" => {
            // tract shifts with Rust's operators, which panic past the width.
            let shifts = stored(1)?;
            let name = shifts.name.as_deref().unwrap_or_default();
            if shifts.data_type != Some(DataType::Uint8 as i32)
                || ints(shifts).iter().any(|&s| s >= 8)
            {
                return Err(tensor_err(
                    name,
                    "shifts must be uint8, each under 8".into(),
                ));
            }
        }
        "QLinearConv" => {
            let weights = kernel_dims(graph, node, 3)?;
            let channels = weights.first().copied().unwrap_or(1);
            for (scale, zero_point, per_channel) in [(1, 2, false), (4, 5, true), (6, 7, false)] {
                let counts: &[i64] = if per_channel { &[1, channels] } else { &[1] };
                let scale = stored_or_widened(graph, node, scale)?;
                check_quantization(&scale, stored(zero_point)?, counts)?;
            }
        }
        "QuantizeLinear" | "DequantizeLinear" => {
            // Per-axis parameters (int8-weights kernels) have one value for
            // each slice of a stored input along the axis.
            let axis = node
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("axis"))
                .and_then(|a| a.i)
                .unwrap_or(1);
            let slices = kernel_dims(graph, node, 0).ok().and_then(|dims| {
                let rank = dims.len() as i64;
                let axis = if axis < 0 { axis + rank } else { axis };
                usize::try_from(axis)
                    .ok()
                    .and_then(|a| dims.get(a).copied())
            });
            let counts: Vec<i64> = std::iter::once(1).chain(slices).collect();
            check_quantization(stored(1)?, stored(2)?, &counts)?;
        }
        _ => {}
    }
    Ok(())
}

/// Input `i` of `node`, stored as float32 or as float16 that one `Cast`
/// widens to float32 at load (compress stores a kernel's scales so), as
/// the float32 values the node reads.
fn stored_or_widened<'g>(
    graph: &'g GraphProto,
    node: &NodeProto,
    i: usize,
) -> Result<Cow<'g, TensorProto>, ModelError> {
    let input = node.input.get(i);
    let narrow = graph
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("Cast") && n.output.first() == input)
        .find(|n| {
            n.attribute
                .iter()
                .any(|a| a.i == Some(DataType::Float as i64))
        })
        .and_then(|cast| find(graph, cast.input.first()?))
        .filter(|t| t.data_type == Some(DataType::Float16 as i32));
    let Some(narrow) = narrow else {
        return stored_input(graph, node, i).map(Cow::Borrowed);
    };
    let bits: Vec<u16> = match &narrow.raw_data {
        Some(raw) => raw
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect(),
        None => narrow.int32_data.iter().map(|&v| v as u16).collect(),
    };
    let values: Vec<f32> = bits
        .into_iter()
        .map(|b| f16::from_bits(b).to_f32())
        .collect();
    let dims: Vec<usize> = narrow.dims.iter().map(|&d| d.max(0) as usize).collect();
    Ok(Cow::Owned(f32_tensor(
        input.map_or("", String::as_str),
        &dims,
        &values,
    )))
}

/// `node`'s name, or the first output's, by which runtimes name a node
/// that has none (stored files leave out names that repeat it).
fn node_name(node: &NodeProto) -> &str {
    node.name
        .as_deref()
        .or(node.output.first().map(String::as_str))
        .unwrap_or("(unnamed)")
}

/// Input `i` of `node`, which squeezebox files always store as an
/// initializer: a computed one could ask for anything.
fn stored_input<'g>(
    graph: &'g GraphProto,
    node: &NodeProto,
    i: usize,
) -> Result<&'g TensorProto, ModelError> {
    let op = node.op_type.as_deref().unwrap_or("");
    let node_name = node_name(node);
    let input = node.input.get(i).map(String::as_str).unwrap_or("");
    find(graph, input).ok_or_else(|| ModelError::Tensor {
        name: input.into(),
        why: format!("input {i} of {op} node '{node_name}' must be stored in the file"),
    })
}

/// The dims of input `i` of `node`, a kernel: stored in the file, or
/// decoded from values and gaps, or from codes, whose dims are stored
/// (checked, with the other parts, by `stored_runs` and `coded_tensors`).
fn kernel_dims(graph: &GraphProto, node: &NodeProto, i: usize) -> Result<Vec<i64>, ModelError> {
    let input = node.input.get(i).map(String::as_str).unwrap_or("");
    let stored_dims = |marker: &str, dims: &str| {
        find(graph, &format!("{input}/{marker}"))?;
        find(graph, &format!("{input}/{dims}")).map(ints)
    };
    // A sparse kernel's values may be codes; its shape never is.
    match stored_dims("shape", "shape").or_else(|| stored_dims("codebook", "dims")) {
        Some(dims) => Ok(dims),
        None => stored_input(graph, node, i).map(|t| t.dims.clone()),
    }
}

/// A shape input's name and dims: int64, one dimension.
fn shape_input(t: &TensorProto) -> Result<(&str, Vec<i64>), ModelError> {
    let name = t.name.as_deref().unwrap_or("");
    if t.data_type != Some(DataType::Int64 as i32) || t.dims.len() != 1 {
        return Err(tensor_err(name, "a shape must be int64 of rank 1".into()));
    }
    Ok((name, ints(t)))
}

/// The product of a shape's positive dims, each of which must pass `ok`,
/// at most `max`.
fn product(
    shape: &[i64],
    name: &str,
    ok: impl Fn(i64) -> bool,
    max: u64,
) -> Result<u64, ModelError> {
    shape
        .iter()
        .try_fold(1u64, |n, &d| {
            ok(d).then(|| n.checked_mul(d.max(1) as u64))?
        })
        .filter(|&n| n <= max)
        .ok_or_else(|| {
            tensor_err(
                name,
                format!("shape {shape:?} is invalid or asks for more than {max} values"),
            )
        })
}

/// An int8 scale and zero point: as many as `counts` allows, scales finite
/// and positive, zero points 8-bit (whose range their dtype then bounds).
fn check_quantization(
    scale: &TensorProto,
    zero_point: &TensorProto,
    counts: &[i64],
) -> Result<(), ModelError> {
    let name = |t: &TensorProto| t.name.clone().unwrap_or_default();
    let scales = float_values(scale);
    if scale.data_type != Some(DataType::Float as i32) || !counts.contains(&(scales.len() as i64)) {
        return Err(tensor_err(
            &name(scale),
            format!("a scale must be float32, {counts:?} values"),
        ));
    }
    if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(tensor_err(
            &name(scale),
            format!("scale {s} is not finite and positive"),
        ));
    }
    let eight_bit = [DataType::Int8 as i32, DataType::Uint8 as i32];
    let zero_points = ints(zero_point).len() as i64;
    if !zero_point.data_type.is_some_and(|t| eight_bit.contains(&t))
        || !counts.contains(&zero_points)
    {
        return Err(tensor_err(
            &name(zero_point),
            format!("a zero point must be int8 or uint8, {counts:?} values"),
        ));
    }
    Ok(())
}

fn tensor_err(name: &str, why: String) -> ModelError {
    ModelError::Tensor {
        name: name.into(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::build::{f32_tensor, i64_tensor, int_attr, node, tensor};
    use crate::onnx::proto::{AttributeProto, ValueInfoProto};
    use crate::onnx::sparse::Gaps;

    /// A 1000-byte squeezebox file of 32x32 pictures.
    const SCOPE: Scope = Scope {
        file_bytes: 1000,
        side: 32,
        computed_shapes: false,
    };

    /// A graph holding kernel `k` stored sparse, with its decoding
    /// ConstantOfShape and Reshape, as compress writes it.
    fn sparse_graph() -> GraphProto {
        let g = Gaps::encode_f32(&[0.0, 1.0, 0.0, 2.0, 0.0, 0.0]);
        GraphProto {
            initializer: vec![
                tensor("k/values", &[2], DataType::Float, g.values),
                tensor("k/gaps", &[2], DataType::Uint8, g.gaps),
                i64_tensor("k/numel", &[1], &[6]),
                i64_tensor("k/shape", &[2], &[2, 3]),
            ],
            node: vec![
                node(
                    "ConstantOfShape",
                    "k/zeros",
                    vec!["k/numel".into()],
                    "z",
                    vec![],
                ),
                node(
                    "Reshape",
                    "k/reshape",
                    vec!["z".into(), "k/shape".into()],
                    "k",
                    vec![],
                ),
            ],
            ..Default::default()
        }
    }

    /// A graph input named `x`.
    fn pixels() -> ValueInfoProto {
        ValueInfoProto {
            name: Some("x".into()),
            ..Default::default()
        }
    }

    fn refusal(graph: &GraphProto) -> String {
        validate(graph, &SCOPE).unwrap_err().to_string()
    }

    fn edited(name: &str, edit: impl FnOnce(&mut TensorProto)) -> GraphProto {
        let mut graph = sparse_graph();
        let t = graph.initializer.iter_mut();
        edit(
            t.into_iter()
                .find(|t| t.name.as_deref() == Some(name))
                .unwrap(),
        );
        graph
    }

    fn set_i64(v: i64) -> impl FnOnce(&mut TensorProto) {
        move |t| t.raw_data = Some(v.to_le_bytes().to_vec())
    }

    #[test]
    fn an_honest_sparse_kernel_passes() {
        validate(&sparse_graph(), &SCOPE).unwrap();
    }

    #[test]
    fn sparse_parts_that_disagree_are_named() {
        let e = refusal(&edited("k/numel", set_i64(1 << 40)));
        assert!(
            e.contains("'k/gaps'") && e.contains("numel 1099511627776"),
            "{e}"
        );
        let e = refusal(&edited("k/numel", set_i64(5)));
        assert!(e.contains("not the product of shape [2, 3]"), "{e}");
        let e = refusal(&edited("k/gaps", |t| t.raw_data = Some(vec![1, 5])));
        assert!(e.contains("position 6, past its 6 values"), "{e}");
        let e = refusal(&edited("k/gaps", |t| {
            t.data_type = Some(DataType::Int8 as i32)
        }));
        assert!(e.contains("'k/gaps' must be uint8"), "{e}");
        let mut graph = sparse_graph();
        graph.initializer.remove(0);
        assert!(refusal(&graph).contains("'k/values' is missing"));
    }

    #[test]
    fn byte_lengths_must_match_dims() {
        let e = refusal(&edited("k/values", |t| t.dims = vec![3]));
        assert!(e.starts_with("tensor 'k/values': holds 8 bytes"), "{e}");
        let e = refusal(&edited("k/values", |t| {
            t.raw_data.as_mut().unwrap().push(0)
        }));
        assert!(e.contains("holds 9 bytes"), "{e}");
        let e = refusal(&edited("k/shape", |t| {
            t.raw_data = None;
            t.int64_data = vec![2];
        }));
        assert!(e.contains("holds 1 values"), "{e}");
        let e = refusal(&edited("k/gaps", |t| {
            t.raw_data = None;
            t.int32_data = vec![1, 300];
        }));
        assert!(e.contains("value 300 is out of range"), "{e}");
    }

    #[test]
    fn size_bombs_are_refused_by_the_files_budget() {
        let e = refusal(&edited("k/values", |t| t.dims = vec![1 << 30]));
        assert!(e.contains("dims [1073741824] ask for more than"), "{e}");
        let e = refusal(&edited("k/numel", set_i64(1 << 30)));
        assert!(
            e.contains("numel 1073741824 is not between 1 and 1048576"),
            "{e}"
        );
        // Shapes built by nodes: each within the budget, and all together.
        let zeros = |shapes: &[&[i64]]| GraphProto {
            initializer: (0..shapes.len())
                .map(|i| i64_tensor(&format!("s{i}"), &[shapes[i].len()], shapes[i]))
                .collect(),
            node: (0..shapes.len())
                .map(|i| node("ConstantOfShape", "z", vec![format!("s{i}")], "z", vec![]))
                .collect(),
            ..Default::default()
        };
        validate(&zeros(&[&[1 << 10, 1 << 9]]), &SCOPE).unwrap();
        let e = refusal(&zeros(&[&[1 << 15, 1 << 15]]));
        assert!(
            e.contains("tensor 's0': shape [32768, 32768] is invalid or asks"),
            "{e}"
        );
        // Half the budget, a quarter twice, and the six stored dims.
        let e = refusal(&zeros(&[
            &[1 << 10, 1 << 8],
            &[1 << 10, 1 << 8],
            &[1 << 10, 1 << 9],
        ]));
        assert!(
            e.contains("tensor 's2': asks for 524288 values, past the 1048576"),
            "{e}"
        );
        let mut graph = sparse_graph();
        // A value a node makes (the kernel itself, here), not a stored one.
        graph.node[0].input[0] = "k".into();
        let e = refusal(&graph);
        assert!(
            e.contains("input 0 of ConstantOfShape node 'k/zeros' must be stored"),
            "{e}"
        );
    }

    /// Kernels `a` (2x3) and `b` (4) stored as one float32 block, with
    /// the nodes that cut it and give each its shape.
    fn block_graph() -> GraphProto {
        let g = Gaps::encode_f32(&[0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0]);
        assert_eq!(g.gaps, [1, 2, 5]);
        let (a, b) = g.values.split_at(8);
        let split = NodeProto {
            output: vec!["pa".into(), "pb".into()],
            ..node(
                "Split",
                "cut",
                vec!["flat".into(), "sparse/f32/sizes".into()],
                "",
                vec![],
            )
        };
        GraphProto {
            initializer: vec![
                tensor("a/values", &[2], DataType::Float, a.to_vec()),
                tensor("b/values", &[1], DataType::Float, b.to_vec()),
                tensor("sparse/f32/gaps", &[3], DataType::Uint8, g.gaps),
                i64_tensor("sparse/f32/numel", &[1], &[10]),
                i64_tensor("sparse/f32/sizes", &[2], &[6, 4]),
                i64_tensor("a/shape", &[2], &[2, 3]),
                i64_tensor("b/shape", &[1], &[4]),
            ],
            node: vec![
                node(
                    "ConstantOfShape",
                    "zeros",
                    vec!["sparse/f32/numel".into()],
                    "flat",
                    vec![],
                ),
                split,
                node(
                    "Reshape",
                    "",
                    vec!["pa".into(), "a/shape".into()],
                    "a",
                    vec![],
                ),
                node(
                    "Reshape",
                    "",
                    vec!["pb".into(), "b/shape".into()],
                    "b",
                    vec![],
                ),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_block_of_sparse_kernels_decodes_each_and_its_parts_must_agree() {
        let graph = block_graph();
        validate(&graph, &SCOPE).unwrap();
        let runs = stored_runs(&graph, 100).unwrap();
        let decoded = runs[0].decode().unwrap();
        let values: Vec<Vec<f32>> = decoded.iter().map(float_values).collect();
        assert_eq!(values[0], [0.0, 1.0, 0.0, 2.0, 0.0, 0.0]);
        assert_eq!(values[1], [0.0, 0.0, 3.0, 0.0]);
        assert_eq!(
            (&decoded[0].dims[..], &decoded[1].dims[..]),
            (&[2, 3][..], &[4][..])
        );

        let with = |t: TensorProto| {
            let mut graph = block_graph();
            let slot = graph.initializer.iter_mut().find(|i| i.name == t.name);
            *slot.unwrap() = t;
            refusal(&graph)
        };
        let e = with(i64_tensor("sparse/f32/sizes", &[2], &[6, 5]));
        assert!(
            e.contains("'b' holds 5 values, not the product of shape [4]"),
            "{e}"
        );
        let e = with(i64_tensor("sparse/f32/numel", &[1], &[12]));
        assert!(
            e.contains("numel 12 is not the 10 values of its kernels"),
            "{e}"
        );
        let e = with(tensor(
            "sparse/f32/gaps",
            &[3],
            DataType::Uint8,
            vec![1, 2, 7],
        ));
        assert!(e.contains("position 10, past its 10 values"), "{e}");
        let e = with(tensor("b/values", &[1], DataType::Int8, vec![3]));
        assert!(
            e.contains("'b/values' must be float, float16 or int8, as the run's"),
            "{e}"
        );
        let edit = |edit: &dyn Fn(&mut GraphProto)| {
            let mut graph = block_graph();
            edit(&mut graph);
            refusal(&graph)
        };
        let e = edit(&|g| g.node[1].output.push("pc".into()));
        assert!(e.contains("its Split makes 3 parts of 2 sizes"), "{e}");
        let e = edit(&|g| g.node.truncate(3));
        assert!(e.contains("no Reshape reads its part 'pb'"), "{e}");
        // The Split itself: along axis 0 only, a part a size.
        let e = edit(&|g| g.node[1].attribute.push(int_attr("axis", 1)));
        assert!(e.contains("a Split must cut axis 0 into 2 parts"), "{e}");
        assert!(e.starts_with("tensor 'sparse/f32/sizes'"), "{e}");
    }

    #[test]
    fn int8_scales_and_zero_points_are_checked() {
        let graph = |scale: f32, zero_point: TensorProto| GraphProto {
            initializer: vec![f32_tensor("s", &[], &[scale]), zero_point],
            node: vec![node(
                "QuantizeLinear",
                "q",
                vec!["x".into(), "s".into(), "z".into()],
                "y",
                vec![],
            )],
            input: vec![pixels()],
            ..Default::default()
        };
        let zero = || tensor("z", &[], DataType::Int8, vec![0]);
        validate(&graph(0.5, zero()), &SCOPE).unwrap();
        for bad in [f32::NAN, 0.0, -1.0, f32::INFINITY] {
            let e = validate(&graph(bad, zero()), &SCOPE)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("tensor 's': scale") && e.contains("finite"),
                "{e}"
            );
        }
        let wide = i64_tensor("z", &[], &[0]);
        let e = validate(&graph(0.5, wide), &SCOPE).unwrap_err().to_string();
        assert!(e.contains("int8 or uint8"), "{e}");
    }

    #[test]
    fn attributes_out_of_range_are_named() {
        use crate::onnx::build::{int_attr, ints_attr};
        let graph = |attr| GraphProto {
            node: vec![node("MaxPool", "pool", vec!["x".into()], "y", vec![attr])],
            input: vec![pixels()],
            ..Default::default()
        };
        validate(&graph(ints_attr("strides", &[2, 2])), &SCOPE).unwrap();
        validate(&graph(ints_attr("perm", &[0, 2, 3, 1])), &SCOPE).unwrap();
        for (attr, says) in [
            (ints_attr("strides", &[0, 2]), "'strides' [0, 2]"),
            (ints_attr("strides", &[2]), "'strides' [2]"),
            (ints_attr("pads", &[0, 0, 1 << 30, 0]), "'pads'"),
            (ints_attr("perm", &[0, 1, 38, 2]), "'perm'"),
            (ints_attr("perm", &[0, 0, 1, 2]), "'perm'"),
            (int_attr("axis", -7), "'axis' [-7]"),
            (ints_attr("perm", &[0, 1, 2, 3, 4]), "'perm'"),
            // tract reads a list from its ints alone: three pads and an int.
            (
                AttributeProto {
                    i: Some(0),
                    ..ints_attr("pads", &[0, 0, 0])
                },
                "'pads' [0, 0, 0]",
            ),
        ] {
            let e = validate(&graph(attr), &SCOPE).unwrap_err().to_string();
            assert!(
                e.starts_with("node 'pool': attribute ") && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn a_node_without_the_inputs_its_op_needs_is_named() {
        let graph = |inputs: Vec<String>| GraphProto {
            node: vec![node("Transpose", "nchw", inputs, "y", vec![])],
            input: vec![pixels()],
            ..Default::default()
        };
        validate(&graph(vec!["x".into()]), &SCOPE).unwrap();
        for inputs in [vec![], vec![String::new()]] {
            let e = validate(&graph(inputs), &SCOPE).unwrap_err().to_string();
            assert_eq!(e, "node 'nchw': Transpose needs 1 inputs and an output");
        }
    }

    #[test]
    fn values_that_nothing_makes_are_named() {
        let mut graph = sparse_graph();
        graph.node[1].input[0] = "nowhere".into();
        assert_eq!(
            refusal(&graph),
            "tensor 'nowhere': is read, but nothing makes it"
        );
    }
}
