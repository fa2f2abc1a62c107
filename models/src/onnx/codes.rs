//! Reading tensors stored as codebook codes (compress writes them:
//! `compress/src/codebook.rs`). The coded tensors of a file share a stream
//! of codes, packed least significant bit first: `codes/stream` (uint8),
//! `codes/shape` (int64 `[count, bits]`) and `codes/bit_count` (int64,
//! count times bits). Sparse kernels' gaps want fewer bits than values, so
//! where a file has a second stream, `gap_codes/...`, every `K/gaps` reads
//! that one instead. Tensor `T` (a kernel, or a sparse kernel's
//! `K/values` or `K/gaps`) owns the codes from `T/code_start` to
//! `T/code_end` (int64), looks them up in `T/codebook` (its own type) and
//! has dims `T/dims`, or none where it is the 1-D run of its codes.
//! As with sparse kernels, the graph's nodes decode them for a runtime;
//! the validation pass and [`densify_codes`] go through [`coded_tensors`],
//! so a code past its codebook is refused the same way everywhere.

use super::build::tensor;
use super::proto::{tensor_proto::DataType, GraphProto, TensorProto};
use super::sparse::{drop_unused, Element};
use super::tensors::{find, ints, vector};
use crate::error::ModelError;

/// The widths a code may have, in bits.
pub const BITS: std::ops::RangeInclusive<i64> = 2..=8;
/// The stream every coded tensor reads, and the one that a sparse
/// kernel's gaps read instead where a file has it. A stream `S`'s parts are
/// `S/stream`, `S/shape` and `S/bit_count`.
pub const VALUE_STREAM: &str = "codes";
pub const GAP_STREAM: &str = "gap_codes";
/// The suffix of a sparse kernel's gaps.
const GAPS: &str = "/gaps";

/// Part `part` (`stream`, `shape`, `bit_count`) of stream `stream`.
pub fn stream_part(stream: &str, part: &str) -> String {
    format!("{stream}/{part}")
}

/// One tensor stored as codes, checked and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedTensor {
    /// The decoded tensor's name; its parts are `name/codebook` and so on.
    pub name: String,
    pub entries: usize,
    /// The decoded tensor, as an initializer named `name`.
    pub decoded: TensorProto,
}

/// `count` codes of `bits` each from a bit stream, least significant bit
/// first; `None` where it is too short.
pub fn unpack(packed: &[u8], bits: u32, count: usize) -> Option<Vec<u8>> {
    if packed.len() < (count * bits as usize).div_ceil(8) {
        return None;
    }
    Some(
        (0..count)
            .map(|i| {
                (0..bits as usize).fold(0u8, |code, b| {
                    let at = i * bits as usize + b;
                    code | ((packed[at / 8] >> (at % 8)) & 1) << b
                })
            })
            .collect(),
    )
}

/// Every tensor `graph` stores as codes (found by its `T/codebook`
/// initializer), each checked and decoded: the stream's parts present with
/// their dtypes and ranks, bits in 2..=8, as many packed bytes as the count
/// needs; each tensor's range inside the stream, at most 2^bits entries and
/// no more than it has values, every code inside the codebook, and dims (if
/// stored) whose product is its count. Initializers' byte lengths must already
/// have been checked.
pub fn coded_tensors(graph: &GraphProto, max_numel: usize) -> Result<Vec<CodedTensor>, ModelError> {
    let names: Vec<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref()?.strip_suffix("/codebook"))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let stream = |stream: &str| {
        read_stream(graph, stream, max_numel).map_err(|why| ModelError::Tensor {
            name: stream_part(stream, "stream"),
            why: format!("the codes: {why}"),
        })
    };
    let has_gap_stream = find(graph, &stream_part(GAP_STREAM, "stream")).is_some();
    let reads_gaps = |name: &str| has_gap_stream && name.ends_with(GAPS);
    let values = names
        .iter()
        .any(|n| !reads_gaps(n))
        .then(|| stream(VALUE_STREAM))
        .transpose()?;
    let gaps = has_gap_stream.then(|| stream(GAP_STREAM)).transpose()?;
    names
        .into_iter()
        .map(|name| {
            let (codes, bits) = if reads_gaps(name) { &gaps } else { &values }
                .as_ref()
                .expect("read above");
            read_coded(graph, name, codes, *bits).map_err(|why| ModelError::Tensor {
                name: format!("{name}/codebook"),
                why: format!("coded tensor '{name}': {why}"),
            })
        })
        .collect()
}

/// Stream `stream`'s codes and their width.
fn read_stream(
    graph: &GraphProto,
    stream: &str,
    max_numel: usize,
) -> Result<(Vec<u8>, u32), String> {
    let (shape, bit_count) = (
        stream_part(stream, "shape"),
        stream_part(stream, "bit_count"),
    );
    let packed = vector(graph, &stream_part(stream, "stream"), Some(DataType::Uint8))?;
    let packed = packed.raw_data.as_deref().unwrap_or_default();
    let [count, bits] = ints(vector(graph, &shape, Some(DataType::Int64))?)[..] else {
        return Err(format!("'{shape}' must hold [count, bits]"));
    };
    if !BITS.contains(&bits) {
        return Err(format!("{bits} bits a code is outside 2-8"));
    }
    if !(0..=max_numel as i64).contains(&count) {
        return Err(format!(
            "{count} codes are past this file's budget of {max_numel}"
        ));
    }
    if ints(vector(graph, &bit_count, Some(DataType::Int64))?) != [count * bits] {
        return Err(format!("'{bit_count}' is not {count} times {bits}"));
    }
    let wanted = (count as usize * bits as usize).div_ceil(8);
    if packed.len() != wanted {
        return Err(format!(
            "{} bytes where {count} codes of {bits} bits need {wanted}",
            packed.len()
        ));
    }
    let codes = unpack(packed, bits as u32, count as usize).expect("length checked");
    Ok((codes, bits as u32))
}

fn read_coded(
    graph: &GraphProto,
    name: &str,
    codes: &[u8],
    bits: u32,
) -> Result<CodedTensor, String> {
    let p = |suffix: &str, ty| vector(graph, &format!("{name}/{suffix}"), ty);
    let codebook = p("codebook", None)?;
    let ty = DataType::try_from(codebook.data_type.unwrap_or(0)).ok();
    let size = ty
        .and_then(codebook_size)
        .ok_or_else(|| format!("'{name}/codebook' must be float, float16, int8 or uint8"))?;
    let entries = codebook.dims[0].max(0) as usize;
    let one = |suffix: &str| -> Result<i64, String> {
        match ints(p(suffix, Some(DataType::Int64))?)[..] {
            [v] => Ok(v),
            _ => Err(format!("'{name}/{suffix}' must hold one value")),
        }
    };
    let (start, end) = (one("code_start")?, one("code_end")?);
    if !(0 <= start && start <= end && end as usize <= codes.len()) {
        return Err(format!(
            "codes {start}..{end} are not inside the stream's {}",
            codes.len()
        ));
    }
    let codes = &codes[start as usize..end as usize];
    let count = codes.len();
    let dims = match find(graph, &format!("{name}/dims")) {
        Some(_) => ints(p("dims", Some(DataType::Int64))?),
        None => vec![count as i64],
    };
    if entries == 0 || entries > 1 << bits || entries > count {
        return Err(format!(
            "a codebook of {entries} entries does not suit {count} values of {bits}-bit codes"
        ));
    }
    let product = dims
        .iter()
        .try_fold(1i64, |p, &d| if d > 0 { p.checked_mul(d) } else { None });
    if product != Some(count as i64) {
        return Err(format!(
            "{count} codes are not the product of dims {dims:?}"
        ));
    }
    if let Some(c) = codes.iter().find(|&&c| c as usize >= entries) {
        return Err(format!("code {c} is past its {entries} entries"));
    }
    let book = codebook
        .raw_data
        .as_deref()
        .filter(|b| b.len() == entries * size)
        .ok_or_else(|| format!("'{name}/codebook' must hold its values as raw data"))?;
    let values: Vec<u8> = codes
        .iter()
        .flat_map(|&c| &book[c as usize * size..(c as usize + 1) * size])
        .copied()
        .collect();
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    Ok(CodedTensor {
        name: name.into(),
        entries,
        decoded: tensor(name, &dims, ty.expect("sized above"), values),
    })
}

/// Bytes of one codebook entry of `ty`: a kernel's own element type, or
/// uint8 for a sparse kernel's gaps.
pub fn codebook_size(ty: DataType) -> Option<usize> {
    match ty {
        DataType::Uint8 => Some(1),
        ty => Element::of(ty).map(Element::size),
    }
}

/// Every tensor stored as codes back as a plain initializer, the nodes and
/// parts that decoded it gone.
pub fn densify_codes(graph: &mut GraphProto, max_numel: usize) -> Result<(), ModelError> {
    let coded = coded_tensors(graph, max_numel)?;
    drop_unused(graph, coded.into_iter().map(|c| c.decoded).collect());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_bit_codes_unpack_across_bytes() {
        // Codes 5, 3, 7 of three bits: 101 011 111, least significant first.
        let packed = [0b1101_1101, 0b0000_0001];
        assert_eq!(unpack(&packed, 3, 3), Some(vec![5, 3, 7]));
        assert_eq!(unpack(&packed[..1], 3, 3), None);
    }
}
