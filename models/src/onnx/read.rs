//! ONNX -> what squeezebox needs to know: the input contract, the metadata,
//! and (for tools that edit models) the layer graph and its weights.

use prost::Message;

use super::proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto,
};
use super::tensors::float_values;
use super::validate::validate;
use super::{keys, Metadata, INPUT, LOGITS, PROBABILITIES};
use crate::error::ModelError;
use crate::graph::{Graph, RAW_CHANNELS, RAW_SIZE};
use crate::weights::{Tensor, Weights};

/// What the runtime needs to know about a model file's interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Number of classes, from the logits output.
    pub classes: usize,
}

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
/// one `uint8 [N,32,32,3]` input named `pixels`, float `logits` and
/// `probabilities` outputs of the same width, and labels for every class.
/// Then every stored tensor is checked (`onnx/validate.rs`), so that nothing
/// downstream evaluates a tensor that disagrees with itself or asks for
/// more memory than the file's size allows.
pub fn decode(bytes: &[u8]) -> Result<FrozenModel, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Contract("the file is empty".into()));
    }
    let proto = ModelProto::decode(bytes)
        .map_err(|e| ModelError::Contract(format!("not an ONNX model, or truncated ({e})")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::Contract("not an ONNX model, or truncated (no graph)".into()))?;
    if graph.node.is_empty() {
        return Err(ModelError::Contract(
            "not an ONNX model, or truncated (the graph has no nodes)".into(),
        ));
    }
    let initialised: Vec<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !initialised.contains(&i.name.as_deref().unwrap_or("")))
        .collect();
    let want = format!("squeezebox models take one uint8 [N,{RAW_SIZE},{RAW_SIZE},{RAW_CHANNELS}] input named '{INPUT}'");
    let [input] = inputs[..] else {
        return Err(ModelError::Contract(format!(
            "the model has {} inputs; {want}",
            inputs.len()
        )));
    };
    let (ty, dims) = tensor_type(input);
    let name = input.name.as_deref().unwrap_or("");
    let raw = [RAW_SIZE, RAW_SIZE, RAW_CHANNELS].map(|d| Some(d as i64));
    if name != INPUT || ty != DataType::Uint8 as i32 || dims.len() != 4 || dims[1..] != raw {
        return Err(ModelError::Contract(format!(
            "input '{name}' is {} {}; {want}",
            type_name(ty),
            dims_text(&dims)
        )));
    }
    let output = |want_name: &str| {
        let o = graph.output.iter().find(|o| o.name.as_deref() == Some(want_name)).ok_or_else(|| {
            ModelError::Contract(format!("no '{want_name}' output; squeezebox models output '{LOGITS}' and '{PROBABILITIES}'"))
        })?;
        let (ty, dims) = tensor_type(o);
        match dims[..] {
            [_, Some(c)] if ty == DataType::Float as i32 && c > 0 => Ok(c as usize),
            _ => Err(ModelError::Contract(format!(
                "output '{want_name}' is {} {}; expected float [N,classes]",
                type_name(ty),
                dims_text(&dims)
            ))),
        }
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
    validate(graph, bytes.len())?;
    Ok(FrozenModel {
        proto,
        meta,
        contract: Contract { classes },
    })
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

fn dims_text(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |n| n.to_string()))
        .collect();
    format!("[{}]", parts.join(","))
}
