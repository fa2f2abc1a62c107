//! Builders for ONNX nodes, attributes and initializers: the export writes
//! graphs with them, and compression steps add nodes with the same ones.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto,
};

/// A node with one output.
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

pub fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(f),
        ..Default::default()
    }
}

/// An initializer from little-endian raw bytes.
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
