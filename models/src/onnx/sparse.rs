//! Reading pruned kernels stored without their zeros (compress writes them:
//! `compress/src/sparse_storage.rs`). The sparse kernels of one element
//! type form a block, `sparse/i8` (or `sparse/f32`, `sparse/f16`): laid end
//! to end, their non-zero values are kernel `K`'s `K/values` (float32,
//! float16 or int8, the kernel's own type) in turn, the gap before each is
//! one byte of `sparse/i8/gaps`, and `sparse/i8/numel` and `sparse/i8/sizes`
//! (int64) count the elements of the whole and of each kernel, whose dims
//! are `K/shape`. Files written before blocks store each kernel as a run of
//! its own: `K/gaps` and `K/numel` beside `K/values` and `K/shape`.
//! The runtime never decodes them itself (the graph's nodes do), but the
//! validation pass and [`densify`], for the tools that read weights, both
//! go through [`stored_runs`], so a hostile file is refused the same way
//! everywhere.

use std::collections::BTreeSet;

use prost::Message;

use super::build::tensor;
use super::codes::densify_codes;
use super::proto::{tensor_proto::DataType, GraphProto, ModelProto, TensorProto};
use super::tensors::{find, ints, vector};
use super::validate::max_values;
use crate::error::ModelError;

/// The group of the blocks' parts, and of the one CumSum axis every
/// block's decoding nodes share.
pub const BLOCKS: &str = "sparse";
pub const AXIS: &str = "sparse/axis";
/// Largest gap one byte holds; narrower gaps are packed as codes
/// (`compress/src/sparse_storage.rs`) and decode to the same bytes.
pub const MAX_GAP: usize = u8::MAX as usize;

/// The element types a kernel may be stored sparse in. Zero is all-zero
/// bytes in each, so kernels are encoded and decoded as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    F32,
    F16,
    I8,
}

impl Element {
    /// The element type of `ty`, if kernels of it may be stored sparse.
    pub fn of(ty: DataType) -> Option<Element> {
        match ty {
            DataType::Float => Some(Element::F32),
            DataType::Float16 => Some(Element::F16),
            DataType::Int8 => Some(Element::I8),
            _ => None,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            Element::F32 => DataType::Float,
            Element::F16 => DataType::Float16,
            Element::I8 => DataType::Int8,
        }
    }

    /// The name of its block of sparse kernels.
    pub fn block(self) -> String {
        let tag = match self {
            Element::F32 => "f32",
            Element::F16 => "f16",
            Element::I8 => "i8",
        };
        format!("{BLOCKS}/{tag}")
    }

    pub fn size(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F16 => 2,
            Element::I8 => 1,
        }
    }

    /// Whether the little-endian `bytes` of one element are zero; a float's
    /// -0 counts (a pruning mask times a negative weight makes it).
    fn is_zero(self, bytes: &[u8]) -> bool {
        let (last, rest) = bytes.split_last().expect("elements have bytes");
        let sign_free = match self {
            Element::F32 | Element::F16 => last & 0x7f,
            Element::I8 => *last,
        };
        sign_free == 0 && rest.iter().all(|&b| b == 0)
    }
}

/// A kernel as its non-zero values and the gaps between their positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaps {
    pub element: Element,
    /// The values' little-endian bytes, `element.size()` each.
    pub values: Vec<u8>,
    /// `gaps[0]` is the first position, then each the distance from the last.
    pub gaps: Vec<u8>,
}

impl Gaps {
    /// Encodes the little-endian bytes of a dense tensor of `element`s;
    /// fillers (value 0) bridge gaps longer than `max_gap` (1 to
    /// [`MAX_GAP`]).
    pub fn encode(element: Element, dense: &[u8], max_gap: usize) -> Gaps {
        assert!((1..=MAX_GAP).contains(&max_gap), "gaps fit a byte");
        let size = element.size();
        let (mut values, mut gaps, mut last) = (Vec::new(), Vec::new(), 0usize);
        for (position, v) in dense.chunks_exact(size).enumerate() {
            if element.is_zero(v) {
                continue;
            }
            let mut gap = position - last;
            while gap > max_gap {
                values.extend(std::iter::repeat_n(0, size));
                gaps.push(max_gap as u8);
                gap -= max_gap;
            }
            values.extend_from_slice(v);
            gaps.push(gap as u8);
            last = position;
        }
        Gaps {
            element,
            values,
            gaps,
        }
    }

    /// Encodes float32 values with one-byte gaps.
    pub fn encode_f32(dense: &[f32]) -> Gaps {
        let bytes: Vec<u8> = dense.iter().flat_map(|v| v.to_le_bytes()).collect();
        Gaps::encode(Element::F32, &bytes, MAX_GAP)
    }

    /// How many values (fillers included) are stored.
    pub fn len(&self) -> usize {
        self.gaps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gaps.is_empty()
    }

    /// The little-endian bytes of the dense tensor of `numel` values, as the
    /// decoding nodes compute it; an error where the parts disagree or a
    /// position falls past the end.
    pub fn decode(&self, numel: usize) -> Result<Vec<u8>, String> {
        let size = self.element.size();
        if self.values.len() != self.gaps.len() * size {
            return Err(format!(
                "{} values but {} gaps",
                self.values.len() / size,
                self.gaps.len()
            ));
        }
        let mut dense = vec![0; numel * size];
        let mut position = 0usize;
        for (v, &gap) in self.values.chunks_exact(size).zip(&self.gaps) {
            position += gap as usize;
            dense
                .get_mut(position * size..(position + 1) * size)
                .ok_or_else(|| {
                    format!("the gaps reach position {position}, past its {numel} values")
                })?
                .copy_from_slice(v);
        }
        Ok(dense)
    }

    /// Bytes of the stored data.
    pub fn bytes(&self) -> usize {
        self.values.len() + self.gaps.len()
    }
}

/// One kernel of a [`StoredRun`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKernel {
    pub name: String,
    pub shape: Vec<usize>,
}

impl StoredKernel {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Sparse kernels stored as one run of values and gaps over their
/// elements laid end to end, checked: a block of every kernel of one type
/// (`sparse/i8`), or one kernel alone, as files written before blocks hold
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// The prefix of the run's parts: `sparse/i8`, or the kernel's name.
    pub name: String,
    pub gaps: Gaps,
    /// In the order the run holds them.
    pub kernels: Vec<StoredKernel>,
}

impl StoredRun {
    pub fn numel(&self) -> usize {
        self.kernels.iter().map(StoredKernel::numel).sum()
    }

    /// Each kernel dense, as an initializer under its own name.
    pub fn decode(&self) -> Result<Vec<TensorProto>, String> {
        let element = self.gaps.element;
        let dense = self.gaps.decode(self.numel())?;
        let mut rest = &dense[..];
        Ok(self
            .kernels
            .iter()
            .map(|k| {
                let (kernel, tail) = rest.split_at(k.numel() * element.size());
                rest = tail;
                tensor(&k.name, &k.shape, element.data_type(), kernel.to_vec())
            })
            .collect())
    }
}

/// Every run of sparse kernels in `graph` (found by its `R/gaps`
/// initializer), each checked: its parts present with their dtypes and
/// ranks, one type of values as many as the gaps, `numel` the sum of its
/// kernels' shapes and at most `max_numel`, and the last position inside
/// it. Initializers' byte lengths must already have been checked.
pub fn stored_runs(graph: &GraphProto, max_numel: usize) -> Result<Vec<StoredRun>, ModelError> {
    graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref()?.strip_suffix("/gaps"))
        .map(|name| {
            read_run(graph, name, max_numel).map_err(|why| ModelError::Tensor {
                name: format!("{name}/gaps"),
                why: format!("sparse '{name}': {why}"),
            })
        })
        .collect()
}

fn read_run(graph: &GraphProto, name: &str, max_numel: usize) -> Result<StoredRun, String> {
    let part = |p: &str, ty| vector(graph, &format!("{name}/{p}"), ty);
    let gaps = ints(part("gaps", Some(DataType::Uint8))?);
    let [numel] = ints(part("numel", Some(DataType::Int64))?)[..] else {
        return Err(format!("'{name}/numel' must hold one value"));
    };
    if !(numel > 0 && numel as u64 <= max_numel as u64) {
        return Err(format!(
            "numel {numel} is not between 1 and {max_numel}, this file's budget"
        ));
    }
    // A block names its kernels through the nodes that split it; a kernel
    // alone is the run.
    let (kernels, sizes) = match find(graph, &format!("{name}/sizes")) {
        Some(_) => {
            let sizes = ints(part("sizes", Some(DataType::Int64))?);
            (split_kernels(graph, name, sizes.len())?, sizes)
        }
        None => (vec![name.to_string()], vec![numel]),
    };
    let mut total = 0i64;
    let mut stored = Vec::new();
    for (kernel, size) in kernels.into_iter().zip(sizes) {
        let shape = ints(vector(
            graph,
            &format!("{kernel}/shape"),
            Some(DataType::Int64),
        )?);
        let product = shape
            .iter()
            .try_fold(1i64, |p, &d| if d > 0 { p.checked_mul(d) } else { None });
        if product != Some(size) {
            return Err(format!(
                "'{kernel}' holds {size} values, not the product of shape {shape:?}"
            ));
        }
        total = total.saturating_add(size);
        stored.push(StoredKernel {
            name: kernel,
            shape: shape.iter().map(|&d| d as usize).collect(),
        });
    }
    if total != numel {
        return Err(format!(
            "numel {numel} is not the {total} values of its kernels"
        ));
    }
    let mut element = None;
    let mut values = Vec::new();
    for kernel in &stored {
        let part = vector(graph, &format!("{}/values", kernel.name), None)?;
        let ty = DataType::try_from(part.data_type.unwrap_or(0))
            .ok()
            .and_then(Element::of)
            .filter(|&ty| element.is_none_or(|e| e == ty))
            .ok_or_else(|| {
                format!(
                    "'{}/values' must be float, float16 or int8, as the run's other values",
                    kernel.name
                )
            })?;
        element = Some(ty);
        values.extend(element_bytes(part, ty));
    }
    let element = element.expect("a run has a kernel");
    if values.len() != gaps.len() * element.size() {
        return Err(format!(
            "{} values but {} gaps",
            values.len() / element.size(),
            gaps.len()
        ));
    }
    let last: i64 = gaps.iter().sum();
    if last >= numel {
        return Err(format!(
            "the gaps reach position {last}, past its {numel} values"
        ));
    }
    Ok(StoredRun {
        name: name.to_string(),
        gaps: Gaps {
            element,
            values,
            gaps: gaps.iter().map(|&g| g as u8).collect(),
        },
        kernels: stored,
    })
}

/// The kernels of block `block`, in order: the outputs of the `Reshape`s
/// that read the parts its `Split` cuts at `block/sizes`.
fn split_kernels(graph: &GraphProto, block: &str, count: usize) -> Result<Vec<String>, String> {
    let sizes = format!("{block}/sizes");
    let reads = |op: &str, i: usize, input: &str| {
        graph
            .node
            .iter()
            .find(move |n| n.op_type() == op && n.input.get(i).map(String::as_str) == Some(input))
    };
    let split = reads("Split", 1, &sizes).ok_or_else(|| format!("no Split reads '{sizes}'"))?;
    if split.output.len() != count {
        return Err(format!(
            "its Split makes {} parts of {count} sizes",
            split.output.len()
        ));
    }
    split
        .output
        .iter()
        .map(|part| {
            reads("Reshape", 0, part)
                .and_then(|n| n.output.first().cloned())
                .ok_or_else(|| format!("no Reshape reads its part '{part}'"))
        })
        .collect()
}

/// The little-endian bytes of `t`'s `element`s, from either form ONNX
/// allows (float16 and int8 without raw data sit in `int32_data`).
fn element_bytes(t: &TensorProto, element: Element) -> Vec<u8> {
    if let Some(raw) = &t.raw_data {
        return raw.clone();
    }
    match element {
        Element::F32 => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Element::F16 => t
            .int32_data
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        Element::I8 => t.int32_data.iter().map(|&v| v as u8).collect(),
    }
}

/// The inverse of compress's `store_sparse` (and of its codebooks,
/// [`densify_codes`]): every kernel stored as values and gaps back as a
/// dense initializer of its type, the nodes and parts that decoded it
/// gone. For tools that read a model's weights, and for compression steps
/// that store them anew; a kernel whose parts disagree is an error.
pub fn densify(proto: &ModelProto) -> Result<ModelProto, ModelError> {
    let max = max_values(proto.encoded_len()) as usize;
    let mut proto = proto.clone();
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    densify_codes(graph, max)?;
    let mut dense = Vec::new();
    for run in stored_runs(graph, max)? {
        dense.extend(run.decode().map_err(|why| ModelError::Tensor {
            name: format!("{}/gaps", run.name),
            why,
        })?);
    }
    drop_unused(graph, dense);
    Ok(proto)
}

/// Puts `decoded` tensors into `graph` as initializers, then drops the
/// nodes that made them and whatever no longer leads to an output.
pub(crate) fn drop_unused(graph: &mut GraphProto, decoded: Vec<TensorProto>) {
    if decoded.is_empty() {
        return;
    }
    let names: BTreeSet<String> = decoded.iter().filter_map(|t| t.name.clone()).collect();
    graph
        .node
        .retain(|n| !n.output.iter().any(|o| names.contains(o)));
    graph
        .initializer
        .retain(|t| !names.contains(t.name.as_deref().unwrap_or_default()));
    graph.initializer.extend(decoded);
    let mut needed: BTreeSet<String> = graph.output.iter().filter_map(|o| o.name.clone()).collect();
    let mut kept = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            kept[i] = true;
            needed.extend(node.input.iter().cloned());
        }
    }
    let mut kept = kept.into_iter();
    graph.node.retain(|_| kept.next().unwrap_or(false));
    graph
        .initializer
        .retain(|t| needed.contains(t.name.as_deref().unwrap_or_default()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn gaps_round_trip_with_fillers_for_long_runs_of_zeros() {
        let mut dense = vec![0.0f32; 1000];
        dense[0] = 1.0;
        dense[3] = -2.0;
        dense[900] = 3.0;
        let g = Gaps::encode_f32(&dense);
        // 897 zeros between 3 and 900: three fillers of 255.
        assert_eq!(g.gaps, vec![0, 3, 255, 255, 255, 132]);
        assert_eq!(f32s(&g.values), vec![1.0, -2.0, 0.0, 0.0, 0.0, 3.0]);
        assert_eq!(f32s(&g.decode(1000).unwrap()), dense);
        // Gaps of at most 15 (four bits) need more fillers: 897 is 59 of 15
        // and 12.
        let bytes: Vec<u8> = dense.iter().flat_map(|v| v.to_le_bytes()).collect();
        let narrow = Gaps::encode(Element::F32, &bytes, 15);
        assert_eq!(narrow.len(), 3 + 59);
        assert_eq!(narrow.gaps[2..61], [15; 59]);
        assert_eq!(narrow.gaps[61], 12);
        assert_eq!(narrow.decode(1000).unwrap(), bytes);
        assert_eq!(
            f32s(&Gaps::encode_f32(&[0.0, 0.0, 5.0]).decode(3).unwrap()),
            vec![0.0, 0.0, 5.0]
        );
    }

    #[test]
    fn negative_zero_is_not_stored_and_int8_kernels_round_trip() {
        let g = Gaps::encode_f32(&[-0.0, 2.0, 0.0]);
        assert_eq!(g.gaps, vec![1]);
        let int8 = [0u8, 0, 0xff, 0, 0x7f, 0];
        let g = Gaps::encode(Element::I8, &int8, MAX_GAP);
        assert_eq!(
            (g.values.clone(), g.gaps.clone()),
            (vec![0xff, 0x7f], vec![2, 2])
        );
        assert_eq!(g.bytes(), 4);
        assert_eq!(g.decode(6).unwrap(), int8);
        // float16 -0 (0x8000) is zero; 0x0001 (the smallest subnormal) is not.
        let g = Gaps::encode(Element::F16, &[0x00, 0x80, 0x01, 0x00], MAX_GAP);
        assert_eq!(g.gaps, vec![1]);
    }

    #[test]
    fn gaps_that_run_past_the_end_are_an_error() {
        let g = Gaps::encode_f32(&[0.0, 0.0, 1.0, 2.0]);
        assert!(g.decode(4).is_ok());
        let err = g.decode(3).unwrap_err();
        assert!(err.contains("position 3"), "{err}");
        let unequal = Gaps {
            gaps: vec![0, 0, 0],
            ..g
        };
        assert!(unequal
            .decode(4)
            .unwrap_err()
            .contains("2 values but 3 gaps"));
    }
}
