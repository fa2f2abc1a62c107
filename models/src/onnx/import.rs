//! A foreign ONNX image classifier (what `torch.onnx.export` writes, say)
//! -> a squeezebox layer graph and its weights. Export then writes the
//! file anew with the preprocessing in front, so that every stage that
//! reads a layer graph (quantize, prune, the report) works on an imported
//! model as on the zoo's.
//!
//! Nodes are read in file order, which ONNX requires to be topological.
//! Tensor values are either layer outputs (graph nodes) or constants; the
//! integer constants exporters compute shapes with (Shape, Gather,
//! Unsqueeze, Concat) are folded, the batch size kept as an unknown.

use std::collections::{HashMap, HashSet};

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
    TensorProto,
};
use super::read::{decode_foreign, dims_text, ForeignModel};
use super::tensors::{check_length, float_values, ints};
use super::validate::max_values;
use crate::error::ModelError;
use crate::fold::fold_batchnorm;
use crate::graph::{Graph, Node, NodeId, Normalise, Op, Pads, Preprocess, Shape};
use crate::weights::{Tensor, Weights};

/// The ONNX ops `compress import` reads, for its error message.
pub const IMPORTED_OPS: &str = "Conv, BatchNormalization, Relu, Clip, LeakyRelu, Sigmoid, \
HardSigmoid, HardSwish, MaxPool, AveragePool, GlobalAveragePool, ReduceMean, Add, Mul, Concat, \
Flatten, Reshape, Gemm, MatMul, Dropout, Identity, Softmax, Constant, Shape, Gather, Unsqueeze, \
Squeeze, Cast";

/// A classifier read from a foreign file: its layer graph (batch norms
/// folded) and weights, and how many classes it has.
#[derive(Debug, Clone)]
pub struct Imported {
    pub graph: Graph,
    pub weights: Weights,
    pub classes: usize,
}

/// Reads `bytes` as a foreign image classifier named `arch`, whose pixels
/// are normalised per channel as `normalise` says.
pub fn import(bytes: &[u8], arch: &str, normalise: Normalise) -> Result<Imported, ModelError> {
    let foreign = decode_foreign(bytes)?;
    let proto = foreign
        .proto
        .graph
        .as_ref()
        .expect("decoded models have a graph");
    let contract = &foreign.contract;
    let preprocess = Preprocess {
        crop: None,
        height: contract.height,
        width: contract.width,
        normalise,
    };
    let mut reader = Reader::new(arch, preprocess, proto, &foreign, bytes.len())?;
    for node in &proto.node {
        reader.read(node).map_err(|why| ModelError::Node {
            name: node.name.clone().unwrap_or_default(),
            why: format!("{} {why}", node.op_type.as_deref().unwrap_or("?")),
        })?;
    }
    let logits = match &foreign.softmax {
        Some((logits, _)) => logits.clone(),
        None => proto.output[0].name.clone().unwrap_or_default(),
    };
    let Some(Value::Layer(output)) = reader.values.get(&logits).cloned() else {
        return Err(ModelError::Classifier(format!(
            "its output '{logits}' is not computed from the image"
        )));
    };
    let graph = Graph {
        output,
        ..reader.graph
    };
    let (graph, weights) = fold_batchnorm(&graph, &reader.weights)?;
    let classes = graph.classes()?;
    if classes != contract.classes {
        return Err(ModelError::Classifier(format!(
            "the layers give {classes} classes where the output declares {}",
            contract.classes
        )));
    }
    Ok(Imported {
        graph,
        weights,
        classes,
    })
}

/// An ONNX value as the import sees it.
#[derive(Debug, Clone)]
enum Value {
    /// The output of a layer of the graph being built.
    Layer(NodeId),
    /// A float constant.
    Floats(Tensor),
    /// An integer constant, one value per element; `None` is the batch size.
    Ints(Vec<Option<i64>>),
}

struct Reader<'a> {
    graph: Graph,
    weights: Weights,
    values: HashMap<String, Value>,
    shapes: Vec<Shape>,
    /// How many nodes read each value, so that a bias is only folded into
    /// a layer nothing else reads.
    readers: HashMap<&'a str, usize>,
    max_values: u64,
    /// The output of the Softmax the model ends in, if it does.
    probabilities: Option<String>,
    /// The names of the graph's nodes, kept unique.
    names: HashSet<String>,
    /// The ONNX value each graph node was made for.
    origin: Vec<String>,
    /// The ONNX value of the node being read.
    reading: String,
}

type Read<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn new(
        arch: &str,
        preprocess: Preprocess,
        proto: &'a GraphProto,
        foreign: &ForeignModel,
        file_bytes: usize,
    ) -> Result<Reader<'a>, ModelError> {
        let graph = Graph {
            arch: arch.into(),
            preprocess,
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
            }],
            output: 0,
        };
        let shapes = graph.shapes()?;
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for name in proto.node.iter().flat_map(|n| &n.input) {
            *readers.entry(name.as_str()).or_default() += 1;
        }
        let max_values = max_values(file_bytes);
        let mut values = HashMap::new();
        for t in &proto.initializer {
            let name = t.name.clone().unwrap_or_default();
            values.insert(name, constant(t, max_values)?);
        }
        values.insert(foreign.input.clone(), Value::Layer(0));
        Ok(Reader {
            graph,
            weights: Weights::new(),
            values,
            shapes,
            readers,
            max_values,
            probabilities: foreign.softmax.as_ref().map(|(_, p)| p.clone()),
            names: HashSet::from(["input".to_string()]),
            origin: vec![foreign.input.clone()],
            reading: String::new(),
        })
    }

    /// Reads one node into the graph, or into a constant.
    fn read(&mut self, node: &NodeProto) -> Read<()> {
        let op = node.op_type.as_deref().unwrap_or("");
        let [output, ..] = &node.output[..] else {
            return Err("has no output".into());
        };
        self.reading = output.clone();
        // Cloned, so that reading a node may add layers: a tensor is read
        // by one node, or a few.
        let inputs: Vec<Option<Value>> = node
            .input
            .iter()
            .map(|name| {
                (!name.is_empty())
                    .then(|| self.values.get(name).cloned())
                    .flatten()
            })
            .collect();
        if let Some(i) = node
            .input
            .iter()
            .zip(&inputs)
            .position(|(n, v)| !n.is_empty() && v.is_none())
        {
            return Err(format!(
                "reads '{}' before anything computes it",
                node.input[i]
            ));
        }
        let input = |i: usize| inputs.get(i).and_then(Option::as_ref);
        let layer = |i: usize| match input(i) {
            Some(Value::Layer(id)) => Ok(*id),
            _ => Err(format!("input {i} must be computed from the image")),
        };
        let floats = |i: usize| match input(i) {
            Some(Value::Floats(t)) => Ok(t.clone()),
            _ => Err(format!("input {i} must be a stored float tensor")),
        };
        let attrs = Attrs(&node.attribute);
        let name = self.name_for(node);
        let value = match op {
            "Conv" => {
                let x = layer(0)?;
                let weight = floats(1)?;
                let bias = input(2).map(|_| floats(2)).transpose()?;
                let [out, _, kh, kw] = weight.shape[..] else {
                    return Err("needs a 4-D kernel".into());
                };
                if attrs.ints("dilations")?.iter().any(|&d| d != 1) {
                    return Err("with dilation is not read".into());
                }
                let kernel = square(kh, kw, "kernel")?;
                let stride = strides(&attrs)?;
                let groups = attrs.int("group")?.unwrap_or(1);
                let groups = usize::try_from(groups).map_err(|_| "has a negative group")?;
                let pads = pads(&attrs)?;
                let op = Op::Conv {
                    out,
                    kernel,
                    stride,
                    groups,
                    bias: bias.is_some(),
                    pads,
                };
                let id = self.layer(&name, op, vec![x])?;
                self.weights.insert(format!("{name}.weight"), weight);
                if let Some(b) = bias {
                    self.weights.insert(
                        format!("{name}.bias"),
                        Tensor::new(vec![out], b.data).map_err(|e| e.to_string())?,
                    );
                }
                self.check_weights(id)?;
                Value::Layer(id)
            }
            "BatchNormalization" => {
                let x = layer(0)?;
                let eps = attrs.float("epsilon")?.unwrap_or(1e-5);
                let id = self.layer(&name, Op::BatchNorm { eps }, vec![x])?;
                for (i, part) in ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .enumerate()
                {
                    let t = floats(i + 1)?;
                    let n = t.data.len();
                    self.weights.insert(
                        format!("{name}.{part}"),
                        Tensor::new(vec![n], t.data).map_err(|e| e.to_string())?,
                    );
                }
                self.check_weights(id)?;
                Value::Layer(id)
            }
            "Relu" => self.unary(&name, Op::Relu, layer(0)?)?,
            "Sigmoid" => self.unary(&name, Op::Sigmoid, layer(0)?)?,
            "HardSwish" => self.unary(&name, Op::HardSwish, layer(0)?)?,
            "LeakyRelu" => {
                let alpha = attrs.float("alpha")?.unwrap_or(0.01);
                self.unary(&name, Op::LeakyRelu { alpha }, layer(0)?)?
            }
            "HardSigmoid" => {
                let alpha = attrs.float("alpha")?.unwrap_or(0.2);
                let beta = attrs.float("beta")?.unwrap_or(0.5);
                self.unary(&name, Op::HardSigmoid { alpha, beta }, layer(0)?)?
            }
            "Clip" => {
                // Opset 11 moved the bounds from attributes to inputs.
                let bound = |i: usize, attr: &str, default: f32| -> Read<f32> {
                    match input(i) {
                        Some(Value::Floats(t)) if t.data.len() == 1 => Ok(t.data[0]),
                        Some(_) => Err(format!("bound {i} must be one stored float")),
                        None => Ok(attrs.float(attr)?.unwrap_or(default)),
                    }
                };
                let min = bound(1, "min", f32::MIN)?.max(f32::MIN);
                let max = bound(2, "max", f32::MAX)?.min(f32::MAX);
                let op = if min == 0.0 && max == f32::MAX {
                    Op::Relu
                } else {
                    Op::Clip { min, max }
                };
                self.unary(&name, op, layer(0)?)?
            }
            "MaxPool" | "AveragePool" => {
                let x = layer(0)?;
                let [kh, kw] = attrs.ints("kernel_shape")?[..] else {
                    return Err("needs a 2-D kernel_shape".into());
                };
                let kernel = square(to_usize(kh)?, to_usize(kw)?, "kernel")?;
                let stride = strides(&attrs)?;
                if attrs.ints("dilations")?.iter().any(|&d| d != 1) {
                    return Err("with dilation is not read".into());
                }
                if node.output.len() > 1 {
                    return Err("with an indices output is not read".into());
                }
                let pads = pads(&attrs)?;
                if attrs.int("ceil_mode")?.unwrap_or(0) != 0 {
                    return Err("with ceil_mode is not read".into());
                }
                let op = if op == "MaxPool" {
                    Op::MaxPool {
                        kernel,
                        stride,
                        pads,
                    }
                } else {
                    let count_include_pad = attrs.int("count_include_pad")?.unwrap_or(0) != 0;
                    Op::AvgPool {
                        kernel,
                        stride,
                        pads: Some(pads.unwrap_or([0; 4])),
                        count_include_pad,
                    }
                };
                self.unary(&name, op, x)?
            }
            "GlobalAveragePool" => self.unary(&name, Op::GlobalAvgPool, layer(0)?)?,
            "ReduceMean" => {
                // Axes: an attribute before opset 18, an input since.
                let axes = match input(1) {
                    Some(Value::Ints(v)) => v
                        .iter()
                        .map(|a| a.ok_or("has unknown axes"))
                        .collect::<Result<Vec<_>, _>>()?,
                    Some(_) => return Err("axes must be stored integers".into()),
                    None => attrs.ints("axes")?,
                };
                if !matches!(axes[..], [2, 3] | [3, 2] | [-2, -1] | [-1, -2]) {
                    return Err(format!(
                        "over axes {axes:?} is not read; only the spatial mean (axes 2 and 3) is"
                    ));
                }
                let pooled = self.layer(&name, Op::GlobalAvgPool, vec![layer(0)?])?;
                if attrs.int("keepdims")?.unwrap_or(1) == 0 {
                    Value::Layer(self.layer(
                        &format!("{name}.flatten"),
                        Op::Flatten,
                        vec![pooled],
                    )?)
                } else {
                    Value::Layer(pooled)
                }
            }
            "Add" | "Mul" => self.binary(&name, node, input(0), input(1))?,
            "Concat" => {
                let axis = attrs.int("axis")?.ok_or("has no axis")?;
                if let Some(parts) = inputs
                    .iter()
                    .map(|v| match v {
                        Some(Value::Ints(i)) => Some(i.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                {
                    Value::Ints(parts.concat())
                } else {
                    let ids = (0..inputs.len()).map(layer).collect::<Read<Vec<_>>>()?;
                    if axis != 1 && axis != -3 {
                        return Err(format!(
                            "on axis {axis} is not read; only channels (axis 1) are"
                        ));
                    }
                    Value::Layer(self.layer(&name, Op::Concat, ids)?)
                }
            }
            "Flatten" => {
                if attrs.int("axis")?.unwrap_or(1) != 1 {
                    return Err("is only read with axis 1".into());
                }
                self.flatten(&name, layer(0)?)?
            }
            "Reshape" => {
                let x = layer(0)?;
                let Some(Value::Ints(target)) = input(1) else {
                    return Err("needs a shape that folds to constants".into());
                };
                let numel = self.shapes[x].numel() as i64;
                let flat = match target[..] {
                    [_, Some(n)] => n == numel || n == -1,
                    _ => false,
                };
                if !flat {
                    return Err(format!(
                        "to {} is not read; only flattening to [N, {numel}] is",
                        dims_text(target)
                    ));
                }
                self.flatten(&name, x)?
            }
            "Gemm" => {
                let x = layer(0)?;
                if attrs.int("transA")?.unwrap_or(0) != 0 {
                    return Err("with transA is not read".into());
                }
                let mut weight = floats(1)?;
                if attrs.int("transB")?.unwrap_or(0) == 0 {
                    weight = transpose(&weight)?;
                }
                let alpha = attrs.float("alpha")?.unwrap_or(1.0);
                let beta = attrs.float("beta")?.unwrap_or(1.0);
                weight.data.iter_mut().for_each(|v| *v *= alpha);
                let bias = input(2).map(|_| floats(2)).transpose()?.map(|mut b| {
                    b.data.iter_mut().for_each(|v| *v *= beta);
                    b
                });
                self.dense(&name, x, weight, bias)?
            }
            "MatMul" => {
                let weight = transpose(&floats(1)?)?;
                self.dense(&name, layer(0)?, weight, None)?
            }
            // The last node's softmax is the `probabilities` export adds.
            "Softmax" if Some(output) == self.probabilities.as_ref() => Value::Layer(layer(0)?),
            "Softmax" => return Err("is only read as the model's last node".into()),
            "Dropout" | "Identity" => input(0).cloned().ok_or("has no input")?,
            "Cast" => match input(0) {
                Some(v @ Value::Ints(_)) => v.clone(),
                _ => return Err("is only read on shape arithmetic".into()),
            },
            "Constant" => {
                let tensor = attrs
                    .tensor("value")
                    .ok_or("only a 'value' tensor is read")?;
                constant(tensor, self.max_values).map_err(|e| e.to_string())?
            }
            "Shape" => {
                let x = layer(0)?;
                let dims: Vec<usize> = match self.shapes[x] {
                    Shape::Map { c, h, w } => vec![c, h, w],
                    Shape::Flat(f) => vec![f],
                };
                let mut shape = vec![None];
                shape.extend(dims.into_iter().map(|d| Some(d as i64)));
                Value::Ints(shape)
            }
            "Gather" => {
                let (Some(Value::Ints(data)), Some(Value::Ints(index))) = (input(0), input(1))
                else {
                    return Err("is only read on shape arithmetic".into());
                };
                if attrs.int("axis")?.unwrap_or(0) != 0 {
                    return Err("is only read on axis 0".into());
                }
                let picked = index
                    .iter()
                    .map(|i| {
                        let i = i.ok_or("has an unknown index")?;
                        let at = if i < 0 { i + data.len() as i64 } else { i };
                        usize::try_from(at)
                            .ok()
                            .and_then(|at| data.get(at).copied())
                            .ok_or(format!("index {i} is out of range"))
                    })
                    .collect::<Read<Vec<_>>>()?;
                Value::Ints(picked)
            }
            "Unsqueeze" | "Squeeze" => match input(0) {
                Some(v @ Value::Ints(_)) => v.clone(),
                _ => return Err("is only read on shape arithmetic".into()),
            },
            _ => {
                return Err(format!(
                    "is not an op compress import reads (it reads {IMPORTED_OPS})"
                ))
            }
        };
        self.values.insert(output.clone(), value);
        Ok(())
    }

    /// A graph node name from the ONNX node's: squeezebox names parameters
    /// `{node}.weight`, so dots and slashes become underscores.
    fn name_for(&self, node: &NodeProto) -> String {
        let base: String = node
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(node.output.first().map(String::as_str))
            .unwrap_or("node")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = base.trim_matches('_').to_string();
        let base = if base.is_empty() {
            "node".to_string()
        } else {
            base
        };
        let taken = |n: &str| self.names.contains(n);
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !taken(n))
            .expect("a free name")
    }

    /// Adds a layer and computes its shape.
    fn layer(&mut self, name: &str, op: Op, inputs: Vec<NodeId>) -> Read<NodeId> {
        let id = self.graph.nodes.len();
        let name = if self.names.contains(name) {
            format!("{name}_{id}")
        } else {
            name.to_string()
        };
        self.graph.nodes.push(Node {
            name: name.clone(),
            op,
            inputs,
        });
        match self.graph.shape_of(id, &self.shapes) {
            Ok(shape) => {
                self.shapes.push(shape);
                self.names.insert(name);
                self.origin.push(self.reading.clone());
                Ok(id)
            }
            Err(e) => {
                self.graph.nodes.pop();
                Err(e.to_string())
            }
        }
    }

    fn unary(&mut self, name: &str, op: Op, x: NodeId) -> Read<Value> {
        Ok(Value::Layer(self.layer(name, op, vec![x])?))
    }

    /// Checks that the tensors just stored for layer `id` fit it.
    fn check_weights(&self, id: NodeId) -> Read<()> {
        let specs = self.graph.params().map_err(|e| e.to_string())?;
        for spec in specs.iter().filter(|s| s.node == id) {
            match self.weights.get(&spec.name) {
                Some(t) if t.shape == spec.shape => {}
                Some(t) => {
                    return Err(format!(
                        "has a {:?} tensor where the layer needs {:?}",
                        t.shape, spec.shape
                    ))
                }
                None => return Err(format!("lacks its tensor '{}'", spec.name)),
            }
        }
        Ok(())
    }

    /// Flattens a map; a vector is already flat.
    fn flatten(&mut self, name: &str, x: NodeId) -> Read<Value> {
        Ok(match self.shapes[x] {
            Shape::Flat(_) => Value::Layer(x),
            Shape::Map { .. } => Value::Layer(self.layer(name, Op::Flatten, vec![x])?),
        })
    }

    /// A fully connected layer with `weight` `[out, in]`.
    fn dense(
        &mut self,
        name: &str,
        x: NodeId,
        weight: Tensor,
        bias: Option<Tensor>,
    ) -> Read<Value> {
        let x = match self.shapes[x] {
            Shape::Flat(_) => x,
            // [N,C,1,1] maps are fed to Gemm once squeezed by the exporter.
            Shape::Map { h: 1, w: 1, .. } => {
                self.layer(&format!("{name}.flatten"), Op::Flatten, vec![x])?
            }
            Shape::Map { .. } => return Err("reads a feature map, not a vector".into()),
        };
        let out = weight.shape[0];
        let bias = match bias {
            Some(b) if b.data.len() == out => Some(b.data),
            // A bias broadcast from one value.
            Some(b) if b.data.len() == 1 => Some(vec![b.data[0]; out]),
            Some(b) => {
                return Err(format!(
                    "has a bias of {} values for {out} outputs",
                    b.data.len()
                ))
            }
            None => None,
        };
        let id = self.layer(
            name,
            Op::Dense {
                out,
                bias: bias.is_some(),
            },
            vec![x],
        )?;
        self.weights.insert(format!("{name}.weight"), weight);
        if let Some(b) = bias {
            self.weights.insert(
                format!("{name}.bias"),
                Tensor {
                    shape: vec![out],
                    data: b,
                },
            );
        }
        self.check_weights(id)?;
        Ok(Value::Layer(id))
    }

    /// Add or Mul: of two layers, or of a layer and a constant that is a
    /// bias (Add after a layer) or a scale (Mul by one number).
    fn binary(
        &mut self,
        name: &str,
        node: &NodeProto,
        a: Option<&Value>,
        b: Option<&Value>,
    ) -> Read<Value> {
        let add = node.op_type.as_deref() == Some("Add");
        let (x, c, via) = match (a, b) {
            (Some(Value::Layer(a)), Some(Value::Layer(b))) => {
                let op = if add { Op::Add } else { Op::Mul };
                return Ok(Value::Layer(self.layer(name, op, vec![*a, *b])?));
            }
            (Some(Value::Layer(x)), Some(Value::Floats(c))) => (*x, c, &node.input[0]),
            (Some(Value::Floats(c)), Some(Value::Layer(x))) => (*x, c, &node.input[1]),
            _ => return Err("is only read on layers".into()),
        };
        if add {
            return self.add_bias(x, c, via);
        }
        let [factor] = c.data[..] else {
            return Err("by a stored tensor is only read for a single number".into());
        };
        self.unary(name, Op::Scale { factor }, x)
    }

    /// Folds a constant added to a convolution's or dense layer's output
    /// into its bias, as `MatMul` + `Add` exports of a linear layer need.
    fn add_bias(&mut self, x: NodeId, c: &Tensor, via: &str) -> Read<Value> {
        let node = &self.graph.nodes[x];
        let layer_name = node.name.clone();
        let out = self.shapes[x].channels();
        // Nothing else may read the layer's output, or the sum.
        let read_once = |v: &str| self.readers.get(v).copied().unwrap_or(0) == 1;
        let only_reader = read_once(&self.origin[x]) && read_once(via);
        // The constant must broadcast along the layer's channels: [C,1,1]
        // over a map, [C] over a vector; or be one number.
        let fits = c.data.len() == 1
            || match (&node.op, &c.shape[..]) {
                (Op::Conv { .. }, [o, 1, 1] | [1, o, 1, 1]) => *o == out,
                (Op::Dense { .. }, [o] | [1, o]) => *o == out,
                _ => false,
            };
        let fits = fits && matches!(node.op, Op::Conv { .. } | Op::Dense { .. });
        if !fits || !only_reader {
            return Err(
                "of a stored tensor is only read as the bias of the layer before it".into(),
            );
        }
        let key = format!("{layer_name}.bias");
        match &mut self.graph.nodes[x].op {
            Op::Conv { bias, .. } | Op::Dense { bias, .. } => *bias = true,
            _ => unreachable!("checked above"),
        }
        let sum = self
            .weights
            .entry(key)
            .or_insert_with(|| Tensor::filled(vec![out], 0.0));
        let each = c.data.iter().cycle();
        sum.data.iter_mut().zip(each).for_each(|(b, v)| *b += v);
        Ok(Value::Layer(x))
    }
}

/// A stored tensor as a constant: floats, or integers.
fn constant(t: &TensorProto, max_values: u64) -> Result<Value, ModelError> {
    let name = t.name.clone().unwrap_or_default();
    let bad = |why: String| ModelError::Tensor {
        name: name.clone(),
        why,
    };
    check_length(t, max_values).map_err(bad)?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    match DataType::try_from(t.data_type.unwrap_or(0)) {
        Ok(DataType::Float) => Ok(Value::Floats(Tensor::new(shape, float_values(t))?)),
        Ok(DataType::Int64 | DataType::Int32 | DataType::Int8 | DataType::Uint8) => {
            Ok(Value::Ints(ints(t).into_iter().map(Some).collect()))
        }
        _ => Err(bad("only float and integer tensors are read".into())),
    }
}

/// A node's attributes, looked up by name.
struct Attrs<'a>(&'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name.as_deref() == Some(name))
    }

    fn int(&self, name: &str) -> Read<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == Some(AttributeType::Int as i32) || a.i.is_some() => Ok(a.i),
            Some(_) => Err(format!("attribute '{name}' is not an integer")),
        }
    }

    fn float(&self, name: &str) -> Read<Option<f32>> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.f.is_some_and(f32::is_finite) => Ok(a.f),
            Some(_) => Err(format!("attribute '{name}' is not a finite float")),
        }
    }

    fn ints(&self, name: &str) -> Read<Vec<i64>> {
        Ok(self.get(name).map(|a| a.ints.clone()).unwrap_or_default())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|a| a.s.as_deref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    fn tensor(&self, name: &str) -> Option<&TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }
}

fn to_usize(v: i64) -> Read<usize> {
    usize::try_from(v).map_err(|_| format!("has a negative size {v}"))
}

/// One side of a square kernel or stride; rectangular ones are not read.
fn square(a: usize, b: usize, what: &str) -> Read<usize> {
    if a == b {
        Ok(a)
    } else {
        Err(format!(
            "with a {a}x{b} {what} is not read; only square ones are"
        ))
    }
}

fn strides(attrs: &Attrs) -> Read<usize> {
    match attrs.ints("strides")?[..] {
        [] => Ok(1),
        [h, w] => square(to_usize(h)?, to_usize(w)?, "stride"),
        _ => Err("needs 2-D strides".into()),
    }
}

/// The padding of a window op: explicit `pads`, or SAME_UPPER, which is
/// TensorFlow's SAME (`None`).
fn pads(attrs: &Attrs) -> Read<Option<Pads>> {
    match attrs.text("auto_pad").as_deref() {
        None | Some("NOTSET") => {}
        Some("SAME_UPPER") => return Ok(None),
        Some("VALID") => return Ok(Some([0; 4])),
        Some(other) => return Err(format!("with auto_pad {other} is not read")),
    }
    match attrs.ints("pads")?[..] {
        [] => Ok(Some([0; 4])),
        [t, l, b, r] => Ok(Some([
            to_usize(t)?,
            to_usize(l)?,
            to_usize(b)?,
            to_usize(r)?,
        ])),
        _ => Err("needs 2-D pads".into()),
    }
}

/// `[a, b]` -> `[b, a]`.
fn transpose(t: &Tensor) -> Read<Tensor> {
    let [rows, cols] = t.shape[..] else {
        return Err("needs a 2-D weight".into());
    };
    let data = (0..cols)
        .flat_map(|c| (0..rows).map(move |r| t.data[r * cols + c]))
        .collect();
    Ok(Tensor {
        shape: vec![cols, rows],
        data,
    })
}
