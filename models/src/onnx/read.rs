//! ONNX -> what squeezebox needs to know: the input contract, the metadata,
//! and (for tools that edit models) the layer graph and its weights.

use prost::Message;

use super::proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, GraphProto, ModelProto,
    ValueInfoProto,
};
use super::tensors::float_values;
use super::validate::{validate, Scope};
use super::{keys, Metadata, INPUT, LOGITS, PROBABILITIES};
use crate::error::ModelError;
use crate::graph::{Graph, RAW_CHANNELS};
use crate::weights::{Tensor, Weights};

/// What the runtime needs to know about a model file's interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Number of classes, from the logits output.
    pub classes: usize,
    /// Height of the input images, in pixels.
    pub height: usize,
    /// Width of the input images, in pixels.
    pub width: usize,
}

/// The largest height or width an input may declare: twice a 2K picture's
/// side, far past any classifier's input, and a bound on what a file can
/// make the runtime allocate per image.
pub const MAX_SIDE: usize = 4096;

/// A decoded squeezebox model: the protobuf, its metadata and contract.
#[derive(Debug, Clone)]
pub struct FrozenModel {
    pub proto: ModelProto,
    pub meta: Metadata,
    pub contract: Contract,
}

impl FrozenModel {
    /// The layer graph stored in the metadata, for tools that edit models.
    pub fn layer_graph(&self) -> Result<Graph, ModelError> {
        let json = self
            .proto
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some(keys::LAYER_GRAPH))
            .and_then(|p| p.value.as_deref())
            .ok_or_else(|| ModelError::Contract("no layer graph in metadata".into()))?;
        Graph::from_json(json)
    }
}

/// Decodes `bytes` as a squeezebox ONNX model and checks its contract:
/// one `uint8 [N,H,W,3]` input named `pixels` (H and W numbers, each at
/// most [`MAX_SIDE`]), float `logits` and `probabilities` outputs of the
/// same width, and labels for every class. Then every stored tensor is
/// checked (`onnx/validate.rs`), so that nothing downstream evaluates a
/// tensor that disagrees with itself or asks for more memory than the
/// file's size allows.
pub fn decode(bytes: &[u8]) -> Result<FrozenModel, ModelError> {
    let proto = parse(bytes).map_err(ModelError::Contract)?;
    let graph = proto.graph.as_ref().expect("parse checks the graph");
    let want =
        format!("squeezebox models take one uint8 [N,H,W,{RAW_CHANNELS}] input named '{INPUT}'");
    let inputs = image_inputs(graph);
    let [input] = inputs[..] else {
        return Err(ModelError::Contract(format!(
            "the model has {} inputs; {want}",
            inputs.len()
        )));
    };
    let (ty, dims) = tensor_type(input);
    let name = input.name.as_deref().unwrap_or("");
    let nhwc = matches!(dims[..], [_, _, _, Some(c)] if c == RAW_CHANNELS as i64);
    if name != INPUT || ty != DataType::Uint8 as i32 || !nhwc {
        return Err(ModelError::Contract(format!(
            "input '{name}' is {} {}; {want}",
            type_name(ty),
            dims_text(&dims)
        )));
    }
    let (height, width) = image_size(name, &dims, 1).map_err(ModelError::Contract)?;
    let output = |want_name: &str| {
        let o = graph.output.iter().find(|o| o.name.as_deref() == Some(want_name)).ok_or_else(|| {
            ModelError::Contract(format!("no '{want_name}' output; squeezebox models output '{LOGITS}' and '{PROBABILITIES}'"))
        })?;
        classes_of(o).map_err(ModelError::Contract)
    };
    let classes = output(LOGITS)?;
    if output(PROBABILITIES)? != classes {
        return Err(ModelError::Contract(
            "logits and probabilities differ in width".into(),
        ));
    }
    let meta = Metadata::from_props(&proto.metadata_props)?;
    if meta.labels.len() != classes {
        return Err(ModelError::Contract(format!(
            "{} labels in metadata for {classes} classes",
            meta.labels.len()
        )));
    }
    validate(graph, &Scope::squeezebox(bytes.len(), height.max(width)))?;
    Ok(FrozenModel {
        proto,
        meta,
        contract: Contract {
            classes,
            height,
            width,
        },
    })
}

/// Another tool's image classifier (`torch.onnx.export`'s, say), as far as
/// the runtime needs to know it to run it on pictures: the preprocessing is
/// the caller's, outside the graph.
#[derive(Debug, Clone)]
pub struct ForeignModel {
    pub proto: ModelProto,
    pub contract: Contract,
    /// The name of the image input.
    pub input: String,
    /// Whether the input's batch is fixed at 1 (else it is symbolic).
    pub single: bool,
    /// The logits and the probabilities, where the graph ends in Softmax:
    /// the Softmax's input and its output.
    pub softmax: Option<(String, String)>,
}

/// Decodes `bytes` as an image classifier of any origin: one float
/// `[N,3,H,W]` input (N symbolic or 1, H and W numbers up to
/// [`MAX_SIDE`]) and one float `[N,classes]` output, logits or already
/// probabilities. Its stored tensors are checked as a squeezebox file's
/// are, except that a Reshape may compute its shape (exporters do).
pub fn decode_foreign(bytes: &[u8]) -> Result<ForeignModel, ModelError> {
    let refuse = ModelError::Classifier;
    let proto = parse(bytes).map_err(refuse)?;
    let graph = proto.graph.as_ref().expect("parse checks the graph");
    let want = "image classifiers take one float [N,3,H,W] input";
    let inputs = image_inputs(graph);
    let [input] = inputs[..] else {
        return Err(refuse(format!(
            "the model has {} inputs; {want}",
            inputs.len()
        )));
    };
    let (ty, dims) = tensor_type(input);
    let name = input.name.as_deref().unwrap_or("").to_string();
    let nchw = matches!(dims[..], [_, Some(c), _, _] if c == RAW_CHANNELS as i64);
    if ty != DataType::Float as i32 || !nchw {
        return Err(refuse(format!(
            "input '{name}' is {} {}; {want}",
            type_name(ty),
            dims_text(&dims)
        )));
    }
    let single = match dims[0] {
        None => false,
        Some(1) => true,
        Some(n) => {
            return Err(refuse(format!(
            "input '{name}' has a fixed batch of {n}; export it with a batch of 1 or a dynamic one"
        )))
        }
    };
    let (height, width) = image_size(&name, &dims, 2).map_err(refuse)?;
    let [output] = &graph.output[..] else {
        return Err(refuse(format!(
            "the model has {} outputs; image classifiers have one, float [N,classes]",
            graph.output.len()
        )));
    };
    let classes = classes_of(output).map_err(refuse)?;
    let out_name = output.name.as_deref().unwrap_or("");
    let softmax = graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == out_name))
        .filter(|n| n.op_type.as_deref() == Some("Softmax"))
        .and_then(|n| n.input.first())
        .map(|logits| (logits.clone(), out_name.to_string()));
    validate(graph, &Scope::foreign(bytes.len(), height.max(width)))?;
    Ok(ForeignModel {
        contract: Contract {
            classes,
            height,
            width,
        },
        proto,
        input: name,
        single,
        softmax,
    })
}

/// `bytes` as an ONNX model with a graph of at least one node, or why not.
fn parse(bytes: &[u8]) -> Result<ModelProto, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let proto =
        ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model, or truncated ({e})"))?;
    match &proto.graph {
        None => Err("not an ONNX model, or truncated (no graph)".into()),
        Some(g) if g.node.is_empty() => {
            Err("not an ONNX model, or truncated (the graph has no nodes)".into())
        }
        Some(_) => Ok(proto),
    }
}

/// The graph's inputs that no initializer fills: what a caller must give.
fn image_inputs(graph: &GraphProto) -> Vec<&ValueInfoProto> {
    let initialised: Vec<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    graph
        .input
        .iter()
        .filter(|i| !initialised.contains(&i.name.as_deref().unwrap_or("")))
        .collect()
}

/// The height and width of input `name` of `dims`, at `dims[at]` and
/// `dims[at + 1]`: numbers from 1 to [`MAX_SIDE`].
fn image_size(name: &str, dims: &[Option<i64>], at: usize) -> Result<(usize, usize), String> {
    let side = |d: Option<i64>| {
        d.and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=MAX_SIDE).contains(d))
    };
    match (side(dims[at]), side(dims[at + 1])) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ if dims[at].is_none() || dims[at + 1].is_none() => Err(format!(
            "input '{name}' is {} with a symbolic height or width; export it with a fixed size",
            dims_text(dims)
        )),
        _ => Err(format!(
            "input '{name}' is {}; its height and width must be 1 to {MAX_SIDE}",
            dims_text(dims)
        )),
    }
}

/// The width of a float `[N,classes]` output.
fn classes_of(output: &ValueInfoProto) -> Result<usize, String> {
    let (ty, dims) = tensor_type(output);
    match dims[..] {
        [_, Some(c)] if ty == DataType::Float as i32 && c > 0 => Ok(c as usize),
        _ => Err(format!(
            "output '{}' is {} {}; expected float [N,classes]",
            output.name.as_deref().unwrap_or(""),
            type_name(ty),
            dims_text(&dims)
        )),
    }
}

/// The weights of `graph`'s layers, read from the model's initializers.
/// Per-channel tensors stored broadcastable (`[C,1,1]`) come back as `[C]`.
pub fn read_weights(model: &ModelProto, graph: &Graph) -> Result<Weights, ModelError> {
    let inits = &model
        .graph
        .as_ref()
        .expect("decoded models have a graph")
        .initializer;
    let mut weights = Weights::new();
    for spec in graph.params()? {
        let t = inits
            .iter()
            .find(|t| t.name.as_deref() == Some(spec.name.as_str()))
            .ok_or_else(|| {
                ModelError::Weights(format!("initializer '{}' is missing", spec.name))
            })?;
        if t.data_type != Some(DataType::Float as i32) {
            return Err(ModelError::Weights(format!(
                "initializer '{}' is not float32",
                spec.name
            )));
        }
        let tensor = Tensor::new(spec.shape.clone(), float_values(t))
            .map_err(|e| ModelError::Weights(format!("initializer '{}': {e}", spec.name)))?;
        weights.insert(spec.name, tensor);
    }
    Ok(weights)
}

/// Element type and dimensions (`None` where symbolic) of a value.
fn tensor_type(v: &ValueInfoProto) -> (i32, Vec<Option<i64>>) {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            let dims = t
                .shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match d.value {
                            Some(dimension::Value::DimValue(n)) => Some(n),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            (t.elem_type.unwrap_or(0), dims)
        }
        _ => (0, vec![]),
    }
}

fn type_name(ty: i32) -> String {
    DataType::try_from(ty)
        .map(|t| t.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("type {ty}"))
}

/// `[?,3,32,32]`: dimensions, `?` where symbolic.
pub(super) fn dims_text(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |n| n.to_string()))
        .collect();
    format!("[{}]", parts.join(","))
}
