//! Small builders for the ONNX nodes and tensors that compression steps add.

use models::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto,
};

pub fn node(
    op: &str,
    name: &str,
    inputs: Vec<String>,
    output: &str,
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs,
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

pub fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn tensor(name: &str, dims: &[usize], ty: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(ty as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

pub fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    tensor(
        name,
        dims,
        DataType::Float,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn i8_tensor(name: &str, dims: &[usize], data: &[i8]) -> TensorProto {
    tensor(
        name,
        dims,
        DataType::Int8,
        data.iter().map(|&v| v as u8).collect(),
    )
}

pub fn i32_tensor(name: &str, dims: &[usize], data: &[i32]) -> TensorProto {
    tensor(
        name,
        dims,
        DataType::Int32,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

pub fn i64_tensor(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    tensor(
        name,
        dims,
        DataType::Int64,
        data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// The values of a float initializer.
pub fn f32_values(t: &TensorProto) -> Vec<f32> {
    match &t.raw_data {
        Some(raw) => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        None => t.float_data.clone(),
    }
}

/// Symmetric int8 quantization of a kernel whose first axis is the output
/// channel: one scale per channel (`max |w| / 127`), values in -127..=127.
/// An all-zero channel gets scale 1.
pub fn quantize_per_channel(data: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = data.len() / channels;
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(channels);
    for c in 0..channels {
        let w = &data[c * per..(c + 1) * per];
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 && (max / 127.0).is_normal() {
            max / 127.0
        } else {
            1.0
        };
        scales.push(scale);
        q.extend(
            w.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}
