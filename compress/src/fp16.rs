//! Float16 weight storage: every float initializer is stored as f16 and
//! cast back to f32 once, at load. The file is about half the size; the
//! computation and its speed stay f32, since runtimes fold the casts.

use half::f16;
use models::onnx::float_values;
use models::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto,
};
use models::onnx::{FrozenModel, Metadata};

use crate::sparse_storage::{kernels_of, store_sparse_noted};
use crate::stages::{for_storage, then};
use crate::CompressError;

/// Returns `model` with its float initializers stored as f16. Scalars stay
/// f32: they cost nothing and some are precision-sensitive (epsilons).
pub fn to_fp16(
    model: &FrozenModel,
) -> Result<(models::onnx::proto::ModelProto, Metadata), CompressError> {
    let model = &for_storage(model, "fp16")?;
    let mut proto = model.proto.clone();
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    let mut casts = Vec::new();
    let mut converted = 0usize;
    for init in graph.initializer.iter_mut() {
        let numel: i64 = init.dims.iter().product();
        if init.data_type != Some(DataType::Float as i32) || init.dims.is_empty() || numel <= 1 {
            continue;
        }
        let values = float_values(init);
        let name = init.name.clone().unwrap_or_default();
        let stored = format!("{name}.f16");
        init.name = Some(stored.clone());
        init.data_type = Some(DataType::Float16 as i32);
        init.float_data.clear();
        init.raw_data = Some(
            values
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
        );
        converted += values.len();
        casts.push(NodeProto {
            op_type: Some("Cast".into()),
            name: Some(format!("{name}.cast")),
            input: vec![stored],
            output: vec![name],
            attribute: vec![AttributeProto {
                name: Some("to".into()),
                r#type: Some(AttributeType::Int as i32),
                i: Some(DataType::Float as i64),
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    casts.append(&mut graph.node);
    graph.node = casts;
    let mut meta = model.meta.clone();
    meta.variant = then(&meta.variant, "fp16");
    // The float model's figure; this file's is measured with `label-image --eval`.
    meta.test_accuracy = None;
    meta.compression.push(format!(
        "fp16: {converted} weights stored as float16, computed in float32"
    ));
    let kernels = kernels_of(&proto);
    store_sparse_noted(&mut proto, &kernels, &mut meta, &model.layer_graph()?);
    Ok((proto, meta))
}
