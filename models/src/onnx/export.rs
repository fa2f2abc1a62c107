//! Graph + weights -> ONNX. Preprocessing is emitted first, so the file
//! takes raw pixels; then each layer becomes one ONNX node, or a few where
//! ONNX opset 13 has no single op (LayerNorm, GELU).

use std::path::Path;

use prost::Message;

use super::build::{self, float_attr, int_attr, ints_attr};
use super::proto::{
    tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use super::{Metadata, INPUT, LOGITS, PROBABILITIES};
use crate::error::ModelError;
use crate::graph::{window, Graph, Normalise, Op, Pads, Preprocess, Shape, RAW_CHANNELS};
use crate::weights::{check, Weights};

/// The ONNX opset squeezebox writes: old enough for every runtime, new
/// enough for `Slice` with tensor inputs and `Softmax` on one axis.
pub const OPSET: i64 = 13;
const IR_VERSION: i64 = 8;

/// Builds the ONNX model for `graph` with `weights` and `meta`.
pub fn encode(graph: &Graph, weights: &Weights, meta: &Metadata) -> Result<ModelProto, ModelError> {
    check(graph, weights)?;
    let shapes = graph.shapes()?;
    let classes = shapes[graph.output].channels();
    let mut e = Emitter::default();

    // Values by node: the ONNX name each node's output is known by.
    let mut value = vec![String::new(); graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        let out = if id == graph.output {
            LOGITS.to_string()
        } else {
            node.name.clone()
        };
        let ins: Vec<String> = node.inputs.iter().map(|&i| value[i].clone()).collect();
        let in_shape = node.inputs.first().map(|&i| shapes[i]);
        let param = |suffix: &str| format!("{}.{suffix}", node.name);
        value[id] = match node.op {
            Op::Input => e.preprocess(&graph.preprocess, &out),
            Op::Conv {
                kernel,
                stride,
                groups,
                bias,
                pads,
                ..
            } => {
                let mut inputs = vec![ins[0].clone(), e.weight(weights, &param("weight"), None)];
                if bias {
                    inputs.push(e.weight(weights, &param("bias"), None));
                }
                let mut attrs = window_attrs(in_shape, pads, kernel, stride);
                attrs.push(int_attr("group", groups as i64));
                e.node("Conv", &node.name, inputs, &out, attrs)
            }
            Op::Dense { bias, .. } => {
                let mut inputs = vec![ins[0].clone(), e.weight(weights, &param("weight"), None)];
                if bias {
                    inputs.push(e.weight(weights, &param("bias"), None));
                }
                e.node(
                    "Gemm",
                    &node.name,
                    inputs,
                    &out,
                    vec![int_attr("transB", 1)],
                )
            }
            Op::BatchNorm { eps } => {
                let mut inputs = vec![ins[0].clone()];
                for p in ["weight", "bias", "running_mean", "running_var"] {
                    inputs.push(e.weight(weights, &param(p), None));
                }
                e.node(
                    "BatchNormalization",
                    &node.name,
                    inputs,
                    &out,
                    vec![float_attr("epsilon", eps)],
                )
            }
            Op::LayerNorm { eps } => {
                let per_channel = channel_shape(in_shape.expect("has input"));
                let gamma = e.weight(weights, &param("weight"), Some(&per_channel));
                let beta = e.weight(weights, &param("bias"), Some(&per_channel));
                e.layer_norm(&node.name, &ins[0], eps, &gamma, &beta, &out)
            }
            Op::ChannelScale => {
                let per_channel = channel_shape(in_shape.expect("has input"));
                let gamma = e.weight(weights, &param("weight"), Some(&per_channel));
                e.node("Mul", &node.name, vec![ins[0].clone(), gamma], &out, vec![])
            }
            Op::Scale { factor } => {
                let c = e.constant(&format!("{}.factor", node.name), &[], &[factor]);
                e.node("Mul", &node.name, vec![ins[0].clone(), c], &out, vec![])
            }
            Op::Relu => e.node("Relu", &node.name, ins, &out, vec![]),
            Op::Gelu => e.gelu(&node.name, &ins[0], &out),
            Op::MaxPool {
                kernel,
                stride,
                pads,
            } => {
                let attrs = window_attrs(in_shape, pads, kernel, stride);
                e.node("MaxPool", &node.name, ins, &out, attrs)
            }
            Op::AvgPool {
                kernel,
                stride,
                pads,
                count_include_pad,
            } => {
                let mut attrs = window_attrs(in_shape, pads, kernel, stride);
                attrs.push(int_attr("count_include_pad", count_include_pad as i64));
                e.node("AveragePool", &node.name, ins, &out, attrs)
            }
            // Max then Min: the runtime's lean registry reads those already.
            Op::Clip { min, max } => {
                let lo = e.constant(&param("min"), &[], &[min]);
                let hi = e.constant(&param("max"), &[], &[max]);
                let floor = format!("{}/floor", node.name);
                let x = e.node("Max", &floor, vec![ins[0].clone(), lo], &floor, vec![]);
                e.node("Min", &node.name, vec![x, hi], &out, vec![])
            }
            Op::LeakyRelu { alpha } => {
                let attrs = vec![float_attr("alpha", alpha)];
                e.node("LeakyRelu", &node.name, ins, &out, attrs)
            }
            Op::Sigmoid => e.node("Sigmoid", &node.name, ins, &out, vec![]),
            Op::HardSigmoid { alpha, beta } => {
                let attrs = vec![float_attr("alpha", alpha), float_attr("beta", beta)];
                e.node("HardSigmoid", &node.name, ins, &out, attrs)
            }
            // Opset 13 has no HardSwish: x * HardSigmoid(x) with 1/6 and 1/2.
            Op::HardSwish => {
                let attrs = vec![float_attr("alpha", 1.0 / 6.0), float_attr("beta", 0.5)];
                let gate = format!("{}/gate", node.name);
                let g = e.node("HardSigmoid", &gate, ins.clone(), &gate, attrs);
                e.node("Mul", &node.name, vec![ins[0].clone(), g], &out, vec![])
            }
            Op::Mul => e.node("Mul", &node.name, ins, &out, vec![]),
            Op::GlobalAvgPool => e.node("GlobalAveragePool", &node.name, ins, &out, vec![]),
            Op::Lrn {
                size,
                alpha,
                beta,
                bias,
            } => {
                let attrs = vec![
                    int_attr("size", size as i64),
                    float_attr("alpha", alpha),
                    float_attr("beta", beta),
                    float_attr("bias", bias),
                ];
                e.node("LRN", &node.name, ins, &out, attrs)
            }
            Op::Flatten => e.node("Flatten", &node.name, ins, &out, vec![int_attr("axis", 1)]),
            Op::Concat => e.node("Concat", &node.name, ins, &out, vec![int_attr("axis", 1)]),
            Op::Add if ins.len() == 2 => e.node("Add", &node.name, ins, &out, vec![]),
            Op::Add => e.node("Sum", &node.name, ins, &out, vec![]),
            // Inference ignores dropout: readers see its input directly.
            Op::Dropout { .. } if id == graph.output => {
                e.node("Identity", &node.name, ins, &out, vec![])
            }
            Op::Dropout { .. } => ins[0].clone(),
        };
    }
    e.node(
        "Softmax",
        "softmax",
        vec![LOGITS.into()],
        PROBABILITIES,
        vec![int_attr("axis", 1)],
    );

    let batch = || tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimParam("N".into())),
        denotation: None,
    };
    let fixed = |n: usize| tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimValue(n as i64)),
        denotation: None,
    };
    let Preprocess { height, width, .. } = graph.preprocess;
    let input = value_info(
        INPUT,
        DataType::Uint8,
        vec![batch(), fixed(height), fixed(width), fixed(RAW_CHANNELS)],
    );
    let outputs = [LOGITS, PROBABILITIES]
        .map(|n| value_info(n, DataType::Float, vec![batch(), fixed(classes)]));
    let graph_proto = GraphProto {
        node: e.nodes,
        name: Some(graph.arch.clone()),
        initializer: e.initializers,
        input: vec![input],
        output: outputs.to_vec(),
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("squeezebox".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph_proto),
        metadata_props: meta.to_props(graph),
        ..Default::default()
    })
}

/// Exports `graph` with `weights` to `path`, atomically.
pub fn export(
    path: &Path,
    graph: &Graph,
    weights: &Weights,
    meta: &Metadata,
) -> Result<(), ModelError> {
    let model = encode(graph, weights, meta)?;
    crate::atomic::write_atomic(path, &model.encode_to_vec())
}

/// The `kernel_shape`, `strides` and `pads` of a window over `input`.
fn window_attrs(
    input: Option<Shape>,
    pads: Option<Pads>,
    kernel: usize,
    stride: usize,
) -> Vec<AttributeProto> {
    let Some(Shape::Map { h, w, .. }) = input else {
        unreachable!("shapes checked")
    };
    let ([t, l, b, r], ..) = window(pads, (h, w), kernel, stride).expect("shapes checked");
    let (k, s) = (kernel as i64, stride as i64);
    vec![
        ints_attr("kernel_shape", &[k, k]),
        ints_attr("strides", &[s, s]),
        ints_attr("pads", &[t as i64, l as i64, b as i64, r as i64]),
    ]
}

/// Shape of a per-channel parameter that broadcasts over `shape`.
fn channel_shape(shape: Shape) -> Vec<usize> {
    match shape {
        Shape::Map { c, .. } => vec![c, 1, 1],
        Shape::Flat(f) => vec![f],
    }
}

fn value_info(
    name: &str,
    ty: DataType,
    dims: Vec<tensor_shape_proto::Dimension>,
) -> ValueInfoProto {
    let tensor = type_proto::Tensor {
        elem_type: Some(ty as i32),
        shape: Some(TensorShapeProto { dim: dims }),
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// Accumulates nodes and initializers.
#[derive(Default)]
struct Emitter {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Emitter {
    /// Adds a node; returns the name of its output.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: Vec<String>,
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes
            .push(build::node(op, name, inputs, output, attrs));
        output.to_string()
    }

    /// Adds an f32 initializer; returns its name.
    fn constant(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        self.initializers.push(build::f32_tensor(name, shape, data));
        name.to_string()
    }

    fn constant_i64(&mut self, name: &str, data: &[i64]) -> String {
        self.initializers
            .push(build::i64_tensor(name, &[data.len()], data));
        name.to_string()
    }

    /// Stores the named weight, reshaped to `shape` when given.
    fn weight(&mut self, weights: &Weights, name: &str, shape: Option<&[usize]>) -> String {
        let t = &weights[name];
        self.constant(name, shape.unwrap_or(&t.shape), &t.data)
    }

    /// Raw `uint8 NHWC` pixels -> normalised `float NCHW`, centre-cropped
    /// to `crop`.
    fn preprocess(&mut self, pre: &Preprocess, out: &str) -> String {
        let to_float = vec![int_attr("to", DataType::Float as i64)];
        let mut x = self.node(
            "Cast",
            "pre.cast",
            vec![INPUT.into()],
            "pre.float",
            to_float,
        );
        x = self.node(
            "Transpose",
            "pre.nchw",
            vec![x],
            "pre.nchw",
            vec![ints_attr("perm", &[0, 3, 1, 2])],
        );
        let (h, w) = pre.input_size();
        if (h, w) != (pre.height, pre.width) {
            let top = ((pre.height - h) / 2) as i64;
            let left = ((pre.width - w) / 2) as i64;
            let starts = self.constant_i64("pre.crop.starts", &[top, left]);
            let ends = self.constant_i64("pre.crop.ends", &[top + h as i64, left + w as i64]);
            let axes = self.constant_i64("pre.crop.axes", &[2, 3]);
            x = self.node(
                "Slice",
                "pre.crop",
                vec![x, starts, ends, axes],
                "pre.crop",
                vec![],
            );
        }
        match pre.normalise {
            Normalise::PerImage => self.standardise(x, h * w, out),
            Normalise::Channels { mean, std } => {
                // (x / 255 - mean) / std as one multiply and one add.
                let scale = std.map(|s| 1.0 / (255.0 * s));
                let shift: Vec<f32> = (0..3).map(|c| -mean[c] / std[c]).collect();
                let scale = self.constant("pre.scale.factors", &[1, 3, 1, 1], &scale);
                let shift = self.constant("pre.shift.offsets", &[1, 3, 1, 1], &shift);
                let scaled = self.node("Mul", "pre.scale", vec![x, scale], "pre.scaled", vec![]);
                self.node("Add", "pre.shift", vec![scaled, shift], out, vec![])
            }
        }
    }

    /// TensorFlow's `per_image_standardization` of `x`, whose standard
    /// deviation is floored at `1/sqrt(pixel values)`.
    fn standardise(&mut self, x: String, positions: usize, out: &str) -> String {
        let all = ints_attr("axes", &[1, 2, 3]);
        let mean = self.node(
            "ReduceMean",
            "pre.mean",
            vec![x.clone()],
            "pre.mean",
            vec![all.clone(), int_attr("keepdims", 1)],
        );
        let centred = self.node("Sub", "pre.centre", vec![x, mean], "pre.centred", vec![]);
        let sq = self.node(
            "Mul",
            "pre.square",
            vec![centred.clone(), centred.clone()],
            "pre.square",
            vec![],
        );
        let var = self.node(
            "ReduceMean",
            "pre.var",
            vec![sq],
            "pre.var",
            vec![all, int_attr("keepdims", 1)],
        );
        let std = self.node("Sqrt", "pre.std", vec![var], "pre.std", vec![]);
        let floor_value = 1.0 / ((RAW_CHANNELS * positions) as f32).sqrt();
        let floor = self.constant("pre.std_floor", &[], &[floor_value]);
        let adjusted = self.node(
            "Max",
            "pre.std_adjusted",
            vec![std, floor],
            "pre.std_adjusted",
            vec![],
        );
        self.node(
            "Div",
            "pre.standardise",
            vec![centred, adjusted],
            out,
            vec![],
        )
    }

    /// Layer normalisation over axis 1, in opset-13 ops.
    fn layer_norm(
        &mut self,
        name: &str,
        x: &str,
        eps: f32,
        gamma: &str,
        beta: &str,
        out: &str,
    ) -> String {
        let axis = || vec![ints_attr("axes", &[1]), int_attr("keepdims", 1)];
        let n = |s: &str| format!("{name}/{s}");
        let mean = self.node("ReduceMean", &n("mean"), vec![x.into()], &n("mean"), axis());
        let d = self.node(
            "Sub",
            &n("centre"),
            vec![x.into(), mean],
            &n("centred"),
            vec![],
        );
        let sq = self.node(
            "Mul",
            &n("square"),
            vec![d.clone(), d.clone()],
            &n("square"),
            vec![],
        );
        let var = self.node("ReduceMean", &n("var"), vec![sq], &n("var"), axis());
        let eps = self.constant(&n("eps"), &[], &[eps]);
        let var_eps = self.node("Add", &n("var_eps"), vec![var, eps], &n("var_eps"), vec![]);
        let std = self.node("Sqrt", &n("std"), vec![var_eps], &n("std"), vec![]);
        let normed = self.node(
            "Div",
            &n("normalise"),
            vec![d, std],
            &n("normalised"),
            vec![],
        );
        let scaled = self.node(
            "Mul",
            &n("scale"),
            vec![normed, gamma.into()],
            &n("scaled"),
            vec![],
        );
        self.node("Add", &n("shift"), vec![scaled, beta.into()], out, vec![])
    }

    /// Exact GELU: `x * (1 + erf(x / sqrt 2)) / 2`.
    fn gelu(&mut self, name: &str, x: &str, out: &str) -> String {
        let n = |s: &str| format!("{name}/{s}");
        let sqrt2 = self.constant(&n("sqrt2"), &[], &[std::f32::consts::SQRT_2]);
        let one = self.constant(&n("one"), &[], &[1.0]);
        let half = self.constant(&n("half"), &[], &[0.5]);
        let scaled = self.node(
            "Div",
            &n("div"),
            vec![x.into(), sqrt2],
            &n("scaled"),
            vec![],
        );
        let erf = self.node("Erf", &n("erf"), vec![scaled], &n("erf"), vec![]);
        let plus = self.node("Add", &n("add"), vec![erf, one], &n("plus_one"), vec![]);
        let prod = self.node(
            "Mul",
            &n("mul"),
            vec![x.into(), plus],
            &n("product"),
            vec![],
        );
        self.node("Mul", &n("halve"), vec![prod, half], out, vec![])
    }
}
