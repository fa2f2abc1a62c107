//! int8 weight storage: every convolution and dense kernel is stored as
//! symmetric int8 with one scale per output channel, and a
//! `DequantizeLinear` turns it back into float once, at load. The file is
//! about a quarter of the size; the computation stays float, so speed is
//! float speed and accuracy loses only the weights' rounding.

use std::collections::HashSet;

use models::graph::ParamRole;
use models::onnx::build::{f32_tensor, i8_tensor, int_attr, node};
use models::onnx::proto::{tensor_proto::DataType, ModelProto};
use models::onnx::FrozenModel;
use serde_json::json;

use crate::onnx_util::quantize_per_channel;
use crate::quantize::QUANTIZATION_KEY;
use crate::sparse_storage::{kernels_of, store_sparse_noted};
use crate::stages::{for_storage, then};
use crate::CompressError;
use models::onnx::float_values;

/// Returns `model` with its kernels stored as int8, and its metadata.
pub fn weights_only(
    model: &FrozenModel,
) -> Result<(ModelProto, models::onnx::Metadata), CompressError> {
    let model = &for_storage(model, "int8 weight storage")?;
    let graph = model.layer_graph()?;
    let kernels: HashSet<String> = graph
        .params()?
        .into_iter()
        .filter(|p| p.role == ParamRole::Weight)
        .map(|p| p.name)
        .collect();
    let mut proto = model.proto.clone();
    let g = proto.graph.as_mut().expect("decoded models have a graph");
    let mut dequantize = Vec::new();
    let mut initializers = Vec::with_capacity(g.initializer.len());
    let mut converted = 0usize;
    let mut layers = 0usize;
    for init in std::mem::take(&mut g.initializer) {
        let name = init.name.clone().unwrap_or_default();
        if !kernels.contains(&name) || init.data_type != Some(DataType::Float as i32) {
            initializers.push(init);
            continue;
        }
        let dims: Vec<usize> = init.dims.iter().map(|&d| d as usize).collect();
        let values = float_values(&init);
        let (q, scales) = quantize_per_channel(&values, dims[0]);
        let (stored, scale, zero) = (
            format!("{name}.int8"),
            format!("{name}.scale"),
            format!("{name}.zero_point"),
        );
        initializers.push(i8_tensor(&stored, &dims, &q));
        initializers.push(f32_tensor(&scale, &[dims[0]], &scales));
        initializers.push(i8_tensor(&zero, &[dims[0]], &vec![0; dims[0]]));
        dequantize.push(node(
            "DequantizeLinear",
            &format!("{name}.dequantize"),
            vec![stored, scale, zero],
            &name,
            vec![int_attr("axis", 0)],
        ));
        layers += 1;
        converted += values.len();
    }
    g.initializer = initializers;
    dequantize.append(&mut g.node);
    g.node = dequantize;
    let mut meta = model.meta.clone();
    meta.variant = then(&meta.variant, "int8-weights");
    // The float model's figure; this file's is measured with `label-image --eval`.
    meta.test_accuracy = None;
    meta.compression.push(format!(
        "int8-weights: {converted} kernel weights in {} layers stored as symmetric int8 (one scale per output channel), \
         dequantized once at load, computed in float32",
        layers
    ));
    let details = json!({"weights": "int8 symmetric per output channel", "activations": "float32"});
    meta.extra
        .insert(QUANTIZATION_KEY.into(), details.to_string());
    let kernels = kernels_of(&proto);
    store_sparse_noted(&mut proto, &kernels, &mut meta, &graph);
    Ok((proto, meta))
}
