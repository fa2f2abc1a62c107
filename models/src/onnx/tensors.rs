//! Stored tensors (initializers, tensor attributes) as values: their length
//! checked against their dims, and their numbers read from either form ONNX
//! allows (`raw_data`, or the typed field for the dtype).

use super::proto::{tensor_proto::DataLocation, tensor_proto::DataType, GraphProto, TensorProto};

/// The initializer named `name`.
pub fn find<'g>(graph: &'g GraphProto, name: &str) -> Option<&'g TensorProto> {
    graph
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
}

/// The initializer `name`, of rank 1 and, where `ty` is given, of that
/// dtype: the shape of every part of a sparse or coded tensor.
pub fn vector<'g>(
    graph: &'g GraphProto,
    name: &str,
    ty: Option<DataType>,
) -> Result<&'g TensorProto, String> {
    let t = find(graph, name).ok_or_else(|| format!("'{name}' is missing"))?;
    if t.dims.len() != 1 {
        return Err(format!("'{name}' must be of rank 1"));
    }
    match ty {
        Some(ty) if t.data_type != Some(ty as i32) => Err(format!(
            "'{name}' must be {}",
            ty.as_str_name().to_lowercase()
        )),
        _ => Ok(t),
    }
}

/// Bytes per element of the dtypes a squeezebox file may hold, and the
/// range of values the integer ones take in the typed `int32_data` field.
fn layout(ty: DataType) -> Option<(usize, Option<(i64, i64)>)> {
    Some(match ty {
        DataType::Float | DataType::Int32 => (4, None),
        DataType::Int64 | DataType::Double => (8, None),
        DataType::Float16 => (2, Some((0, u16::MAX as i64))),
        // Biases that fit, cast to int32 at load.
        DataType::Int16 => (2, Some((i16::MIN as i64, i16::MAX as i64))),
        DataType::Int8 => (1, Some((i8::MIN as i64, i8::MAX as i64))),
        DataType::Uint8 => (1, Some((0, u8::MAX as i64))),
        DataType::Bool => (1, Some((0, 1))),
        _ => return None,
    })
}

/// Checks that `t` holds exactly the values its dims ask for, at most
/// `max_values` of them, in the file itself; returns how many.
pub fn check_length(t: &TensorProto, max_values: u64) -> Result<u64, String> {
    if t.data_location == Some(DataLocation::External as i32) {
        return Err("its data is stored outside the file".into());
    }
    let ty = DataType::try_from(t.data_type.unwrap_or(0))
        .ok()
        .filter(|&ty| layout(ty).is_some())
        .ok_or_else(|| {
            format!(
                "dtype {} is not one squeezebox files use",
                t.data_type.unwrap_or(0)
            )
        })?;
    let (size, range) = layout(ty).expect("filtered above");
    let values = t
        .dims
        .iter()
        .try_fold(1u64, |n, &d| {
            u64::try_from(d).ok().and_then(|d| n.checked_mul(d))
        })
        .filter(|&n| n <= max_values)
        .ok_or_else(|| format!("dims {:?} ask for more than {max_values} values", t.dims))?;
    let (stored, need, unit) = match &t.raw_data {
        Some(raw) => (
            raw.len() as u64,
            values.saturating_mul(size as u64),
            "bytes",
        ),
        None => (typed_len(t, ty) as u64, values, "values"),
    };
    if stored != need {
        return Err(format!(
            "holds {stored} {unit} where dims {:?} of {} need {need}",
            t.dims,
            ty.as_str_name().to_lowercase()
        ));
    }
    if let (None, Some((lo, hi))) = (&t.raw_data, range) {
        if let Some(v) = t
            .int32_data
            .iter()
            .find(|&&v| !(lo..=hi).contains(&(v as i64)))
        {
            return Err(format!("value {v} is out of range for its dtype"));
        }
    }
    Ok(values)
}

/// Length of the typed field that holds `ty`'s values without `raw_data`.
fn typed_len(t: &TensorProto, ty: DataType) -> usize {
    match ty {
        DataType::Float => t.float_data.len(),
        DataType::Int64 => t.int64_data.len(),
        DataType::Double => t.double_data.len(),
        _ => t.int32_data.len(),
    }
}

/// The values of an integer tensor (int8, uint8, int16, int32, int64), widened;
/// empty for other dtypes.
pub fn ints(t: &TensorProto) -> Vec<i64> {
    let raw = t.raw_data.as_deref();
    match DataType::try_from(t.data_type.unwrap_or(0)) {
        Ok(DataType::Int64) => raw.map_or_else(
            || t.int64_data.clone(),
            |r| {
                r.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("eight bytes")))
                    .collect()
            },
        ),
        Ok(DataType::Int32) => raw.map_or_else(
            || t.int32_data.iter().map(|&v| v as i64).collect(),
            |r| {
                r.chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().expect("four bytes")) as i64)
                    .collect()
            },
        ),
        Ok(DataType::Int16) => raw.map_or_else(
            || t.int32_data.iter().map(|&v| v as i64).collect(),
            |r| {
                r.chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
                    .collect()
            },
        ),
        Ok(DataType::Int8) => raw.map_or_else(
            || t.int32_data.iter().map(|&v| v as i64).collect(),
            |r| r.iter().map(|&b| b as i8 as i64).collect(),
        ),
        Ok(DataType::Uint8) => raw.map_or_else(
            || t.int32_data.iter().map(|&v| v as i64).collect(),
            |r| r.iter().map(|&b| b as i64).collect(),
        ),
        _ => Vec::new(),
    }
}

/// The values of a float32 tensor; empty for other dtypes. The one reader
/// of stored floats, for squeezebox's own tools as for the validation pass.
pub fn float_values(t: &TensorProto) -> Vec<f32> {
    if t.data_type != Some(DataType::Float as i32) {
        return Vec::new();
    }
    match &t.raw_data {
        Some(raw) => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
            .collect(),
        None => t.float_data.clone(),
    }
}
