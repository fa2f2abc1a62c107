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
        let [output, ..] = &node.output[..] else {
            return Err("has no output".into());
        };
        self.reading = output.clone();
        let ins = self.inputs(node)?;
        let attrs = Attrs(&node.attribute);
        let name = self.name_for(node);
        let value = match node.op_type.as_deref().unwrap_or("") {
            "Conv" => self.conv(&name, &ins, &attrs)?,
            "BatchNormalization" => self.batch_norm(&name, &ins, &attrs)?,
            "Relu" => self.unary(&name, Op::Relu, ins.layer(0)?)?,
            "Sigmoid" => self.unary(&name, Op::Sigmoid, ins.layer(0)?)?,
            "HardSwish" => self.unary(&name, Op::HardSwish, ins.layer(0)?)?,
            "LeakyRelu" => {
                let alpha = attrs.float("alpha")?.unwrap_or(0.01);
                self.unary(&name, Op::LeakyRelu { alpha }, ins.layer(0)?)?
            }
            "HardSigmoid" => {
                let alpha = attrs.float("alpha")?.unwrap_or(0.2);
                let beta = attrs.float("beta")?.unwrap_or(0.5);
                self.unary(&name, Op::HardSigmoid { alpha, beta }, ins.layer(0)?)?
            }
            "Clip" => self.unary(&name, clip(&ins, &attrs)?, ins.layer(0)?)?,
            op @ ("MaxPool" | "AveragePool") => {
                if node.output.len() > 1 {
                    return Err("with an indices output is not read".into());
                }
                self.unary(&name, pool(op, &attrs)?, ins.layer(0)?)?
            }
            "GlobalAveragePool" => self.unary(&name, Op::GlobalAvgPool, ins.layer(0)?)?,
            "ReduceMean" => self.reduce_mean(&name, &ins, &attrs)?,
            "Add" | "Mul" => self.binary(&name, node, ins.get(0), ins.get(1))?,
            "Concat" => self.concat(&name, &ins, &attrs)?,
            "Flatten" => {
                if attrs.int("axis")?.unwrap_or(1) != 1 {
                    return Err("is only read with axis 1".into());
                }
                self.flatten(&name, ins.layer(0)?)?
            }
            "Reshape" => self.reshape(&name, &ins)?,
            "Gemm" => self.gemm(&name, &ins, &attrs)?,
            "MatMul" => {
                let weight = transpose(&ins.floats(1)?)?;
                self.dense(&name, ins.layer(0)?, weight, None)?
            }
            // The last node's softmax is the `probabilities` export adds.
            "Softmax" if Some(output) == self.probabilities.as_ref() => Value::Layer(ins.layer(0)?),
            "Softmax" => return Err("is only read as the model's last node".into()),
            "Dropout" | "Identity" => ins.get(0).cloned().ok_or("has no input")?,
            "Constant" => {
                let tensor = attrs
                    .tensor("value")
                    .ok_or("only a 'value' tensor is read")?;
                constant(tensor, self.max_values).map_err(|e| e.to_string())?
            }
            "Shape" => {
                let dims: Vec<usize> = match self.shapes[ins.layer(0)?] {
                    Shape::Map { c, h, w } => vec![c, h, w],
                    Shape::Flat(f) => vec![f],
                };
                let mut shape = vec![None];
                shape.extend(dims.into_iter().map(|d| Some(d as i64)));
                Value::Ints(shape)
            }
            "Gather" => gather(&ins, &attrs)?,
            // A shape's numbers stay the same numbers.
            "Unsqueeze" | "Squeeze" | "Cast" => match ins.get(0) {
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

    /// The values `node` reads, each of which an earlier node or a stored
    /// tensor must have given; cloned, so that reading may add layers.
    fn inputs(&self, node: &NodeProto) -> Read<Inputs> {
        let values = node
            .input
            .iter()
            .map(|name| match name.as_str() {
                // An optional input left out.
                "" => Ok(None),
                _ => match self.values.get(name) {
                    Some(v) => Ok(Some(v.clone())),
                    None => Err(format!("reads '{name}' before anything computes it")),
                },
            })
            .collect::<Read<Vec<_>>>()?;
        Ok(Inputs(values))
    }

    fn conv(&mut self, name: &str, ins: &Inputs, attrs: &Attrs) -> Read<Value> {
        let weight = ins.floats(1)?;
        let [out, _, kh, kw] = weight.shape[..] else {
            return Err("needs a 4-D kernel".into());
        };
        no_dilation(attrs)?;
        let groups = attrs.int("group")?.unwrap_or(1);
        let op = Op::Conv {
            out,
            kernel: square(kh, kw, "kernel")?,
            stride: strides(attrs)?,
            groups: usize::try_from(groups).map_err(|_| "has a negative group")?,
            bias: ins.get(2).is_some(),
            pads: pads(attrs)?,
        };
        let id = self.layer(name, op, vec![ins.layer(0)?])?;
        let mut tensors = vec![("weight", weight)];
        if ins.get(2).is_some() {
            tensors.push(("bias", ins.floats(2)?));
        }
        self.store(id, tensors)
    }

    fn batch_norm(&mut self, name: &str, ins: &Inputs, attrs: &Attrs) -> Read<Value> {
        let eps = attrs.float("epsilon")?.unwrap_or(1e-5);
        let id = self.layer(name, Op::BatchNorm { eps }, vec![ins.layer(0)?])?;
        let parts = ["weight", "bias", "running_mean", "running_var"];
        let tensors = (1..=4)
            .map(|i| Ok((parts[i - 1], ins.floats(i)?)))
            .collect::<Read<Vec<_>>>()?;
        self.store(id, tensors)
    }

    /// The spatial mean: GlobalAveragePool, flattened without keepdims.
    fn reduce_mean(&mut self, name: &str, ins: &Inputs, attrs: &Attrs) -> Read<Value> {
        // Axes: an attribute before opset 18, an input since.
        let axes = match ins.get(1) {
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
        let pooled = self.layer(name, Op::GlobalAvgPool, vec![ins.layer(0)?])?;
        if attrs.int("keepdims")?.unwrap_or(1) != 0 {
            return Ok(Value::Layer(pooled));
        }
        let flat = format!("{name}.flatten");
        Ok(Value::Layer(self.layer(
            &flat,
            Op::Flatten,
            vec![pooled],
        )?))
    }

    /// Channel concatenation of layers, or the joining of shape numbers.
    fn concat(&mut self, name: &str, ins: &Inputs, attrs: &Attrs) -> Read<Value> {
        let numbers: Option<Vec<Vec<Option<i64>>>> = (ins.0.iter())
            .map(|v| match v {
                Some(Value::Ints(i)) => Some(i.clone()),
                _ => None,
            })
            .collect();
        if let Some(parts) = numbers {
            return Ok(Value::Ints(parts.concat()));
        }
        let axis = attrs.int("axis")?.ok_or("has no axis")?;
        if axis != 1 && axis != -3 {
            return Err(format!(
                "on axis {axis} is not read; only channels (axis 1) are"
            ));
        }
        let ids = (0..ins.0.len())
            .map(|i| ins.layer(i))
            .collect::<Read<Vec<_>>>()?;
        Ok(Value::Layer(self.layer(name, Op::Concat, ids)?))
    }

    /// A Reshape to `[N, features]`, which is a flatten.
    fn reshape(&mut self, name: &str, ins: &Inputs) -> Read<Value> {
        let x = ins.layer(0)?;
        let Some(Value::Ints(target)) = ins.get(1) else {
            return Err("needs a shape that folds to constants".into());
        };
        let numel = self.shapes[x].numel() as i64;
        if !matches!(target[..], [_, Some(n)] if n == numel || n == -1) {
            return Err(format!(
                "to {} is not read; only flattening to [N, {numel}] is",
                dims_text(target)
            ));
        }
        self.flatten(name, x)
    }

    /// `alpha * x B^T + beta * C` as a dense layer.
    fn gemm(&mut self, name: &str, ins: &Inputs, attrs: &Attrs) -> Read<Value> {
        if attrs.int("transA")?.unwrap_or(0) != 0 {
            return Err("with transA is not read".into());
        }
        let mut weight = ins.floats(1)?;
        if attrs.int("transB")?.unwrap_or(0) == 0 {
            weight = transpose(&weight)?;
        }
        let alpha = attrs.float("alpha")?.unwrap_or(1.0);
        let beta = attrs.float("beta")?.unwrap_or(1.0);
        weight.data.iter_mut().for_each(|v| *v *= alpha);
        let bias = match ins.get(2) {
            Some(_) => {
                let mut b = ins.floats(2)?;
                b.data.iter_mut().for_each(|v| *v *= beta);
                Some(b)
            }
            None => None,
        };
        self.dense(name, ins.layer(0)?, weight, bias)
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

    /// Stores layer `id`'s tensors, `(part, values)`, under the names and
    /// in the shapes the layer graph gives them (`[C]` for a bias stored
    /// as `[1,C]`, say): the values must be as many as the shape holds.
    fn store(&mut self, id: NodeId, tensors: Vec<(&str, Tensor)>) -> Read<Value> {
        let specs = self.graph.params_of(id, &self.shapes);
        let node = &self.graph.nodes[id].name;
        for (part, t) in tensors {
            let name = format!("{node}.{part}");
            let Some(spec) = specs.iter().find(|s| s.name == name) else {
                return Err(format!("has a {part} its layer does not take"));
            };
            let want: usize = spec.shape.iter().product();
            if t.data.len() != want {
                return Err(format!(
                    "has a {part} of shape {:?} where the layer needs {:?}",
                    t.shape, spec.shape
                ));
            }
            let reshaped = Tensor {
                shape: spec.shape.clone(),
                data: t.data,
            };
            self.weights.insert(name, reshaped);
        }
        Ok(Value::Layer(id))
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
        let [out, _] = weight.shape[..] else {
            return Err("needs a 2-D weight".into());
        };
        let bias = match bias {
            // A bias broadcast from one value.
            Some(b) if b.data.len() == 1 => Some(Tensor::filled(vec![out], b.data[0])),
            other => other,
        };
        let op = Op::Dense {
            out,
            bias: bias.is_some(),
        };
        let id = self.layer(name, op, vec![x])?;
        let mut tensors = vec![("weight", weight)];
        tensors.extend(bias.map(|b| ("bias", b)));
        self.store(id, tensors)
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

/// The values a node reads, by input position; `None` where an optional
/// input is left out.
struct Inputs(Vec<Option<Value>>);

impl Inputs {
    fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i).and_then(Option::as_ref)
    }

    /// Input `i`, which must be a layer's output.
    fn layer(&self, i: usize) -> Read<NodeId> {
        match self.get(i) {
            Some(Value::Layer(id)) => Ok(*id),
            _ => Err(format!("input {i} must be computed from the image")),
        }
    }

    /// Input `i`, which must be a stored float tensor.
    fn floats(&self, i: usize) -> Read<Tensor> {
        match self.get(i) {
            Some(Value::Floats(t)) => Ok(t.clone()),
            _ => Err(format!("input {i} must be a stored float tensor")),
        }
    }
}

/// Clip's bounds: attributes before opset 11, inputs since. `[0, inf)` is
/// a ReLU.
fn clip(ins: &Inputs, attrs: &Attrs) -> Read<Op> {
    let bound = |i: usize, attr: &str, default: f32| -> Read<f32> {
        match ins.get(i) {
            Some(Value::Floats(t)) if t.data.len() == 1 => Ok(t.data[0]),
            Some(_) => Err(format!("bound {i} must be one stored float")),
            None => Ok(attrs.float(attr)?.unwrap_or(default)),
        }
    };
    // Infinite bounds are stored as the largest floats (JSON has no inf).
    let min = bound(1, "min", f32::MIN)?.max(f32::MIN);
    let max = bound(2, "max", f32::MAX)?.min(f32::MAX);
    Ok(if min == 0.0 && max == f32::MAX {
        Op::Relu
    } else {
        Op::Clip { min, max }
    })
}

/// MaxPool or AveragePool: square window and stride, no ceil mode.
fn pool(op: &str, attrs: &Attrs) -> Read<Op> {
    let [kh, kw] = attrs.ints("kernel_shape")?[..] else {
        return Err("needs a 2-D kernel_shape".into());
    };
    let kernel = square(to_usize(kh)?, to_usize(kw)?, "kernel")?;
    let stride = strides(attrs)?;
    no_dilation(attrs)?;
    if attrs.int("ceil_mode")?.unwrap_or(0) != 0 {
        return Err("with ceil_mode is not read".into());
    }
    let pads = pads(attrs)?;
    Ok(if op == "MaxPool" {
        Op::MaxPool {
            kernel,
            stride,
            pads,
        }
    } else {
        Op::AvgPool {
            kernel,
            stride,
            pads: Some(pads.unwrap_or([0; 4])),
            count_include_pad: attrs.int("count_include_pad")?.unwrap_or(0) != 0,
        }
    })
}

/// Picks shape numbers by index (axis 0), as `x.size(0)` exports do.
fn gather(ins: &Inputs, attrs: &Attrs) -> Read<Value> {
    let (Some(Value::Ints(data)), Some(Value::Ints(index))) = (ins.get(0), ins.get(1)) else {
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
    Ok(Value::Ints(picked))
}

fn no_dilation(attrs: &Attrs) -> Read<()> {
    match attrs.ints("dilations")?.iter().all(|&d| d == 1) {
        true => Ok(()),
        false => Err("with dilation is not read".into()),
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
