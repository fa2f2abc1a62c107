//! Pruned kernels stored without their zeros: the non-zero values in the
//! kernel's own type (float32, float16 or int8) and, for each, the gap from
//! the previous one's position. Five standard opset-13 nodes
//! (`ConstantOfShape`, `Cast`, `CumSum`, `ScatterElements`, `Reshape`)
//! rebuild the dense kernel, so every ONNX runtime loads the file as it is
//! and folds them into a constant at load.
//!
//! A gap takes a byte, or fewer bits as codes in the file's code stream
//! (`code_stream.rs`); a zero-valued filler bridges a gap wider than that.
//! Narrow gaps need more fillers, so the width is measured: the file is
//! built at each and the smallest kept. At 75% sparsity 4 bits win, at 50%
//! 3 bits.
//!
//! ONNX's own `sparse_initializer` was measured and rejected: the checker
//! demands int64 indices, and even packed as varints they cost 2-3 bytes a
//! value, leaving a 75%-sparse squeeze1 at 42% of its dense bytes.

use std::collections::BTreeSet;

use prost::Message;

use models::onnx::build::{i64_tensor, int_attr, node, tensor};
use models::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, ModelProto, NodeProto,
    TensorProto,
};
use models::onnx::sparse::{densify, Element, Gaps, AXIS, MAX_GAP};
use models::ModelError;

use models::graph::Graph;
use models::onnx::{float_values, Metadata};

use crate::code_stream::{unnamed, CodeStream};

/// What storing did.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The kernels stored as values and gaps.
    pub kernels: Vec<String>,
    /// Bits a gap: 8 is a byte each, fewer are codes.
    pub gap_bits: u32,
}

impl Stored {
    /// How the metadata says the kernels are stored.
    pub fn describe(&self) -> String {
        match self.gap_bits {
            8 => "kernels stored as non-zero values and one-byte gaps".into(),
            b => format!("kernels stored as non-zero values and {b}-bit gaps"),
        }
    }
}

/// Stores each initializer named in `kernels` whose type has an
/// [`Element`] as values and gaps, where that takes fewer bytes than the
/// dense tensor, with the gap width (2 to 8 bits) that makes the smallest
/// file. Kernels must be dense ([`densify`] undoes an earlier storing).
pub fn store_sparse(proto: &mut ModelProto, kernels: &BTreeSet<String>) -> Stored {
    let mut best: Option<(usize, ModelProto, Stored)> = None;
    // From a byte down, so that a tie keeps the simpler storage.
    for gap_bits in (2..=8).rev() {
        let mut candidate = proto.clone();
        let stored = if gap_bits == 8 {
            store_sparse_into(&mut candidate, kernels, None)
        } else {
            let mut stream = CodeStream::new(gap_bits);
            let stored = store_sparse_into(&mut candidate, kernels, Some(&mut stream));
            stream.finish(
                candidate
                    .graph
                    .as_mut()
                    .expect("decoded models have a graph"),
            );
            stored
        };
        let len = candidate.encoded_len();
        if best.as_ref().is_none_or(|(shortest, ..)| len < *shortest) {
            let stored = Stored {
                kernels: stored,
                gap_bits,
            };
            best = Some((len, candidate, stored));
        }
    }
    let (_, candidate, stored) = best.expect("eight widths were tried");
    *proto = candidate;
    stored
}

/// [`store_sparse`], then `meta` (of the layer graph `graph`) as `proto`'s
/// metadata, its last compression step saying how kernels are stored
/// where any are stored sparse.
pub fn store_sparse_noted(
    proto: &mut ModelProto,
    kernels: &BTreeSet<String>,
    meta: &mut Metadata,
    graph: &Graph,
) -> Stored {
    let stored = store_sparse(proto, kernels);
    if let (false, Some(step)) = (stored.kernels.is_empty(), meta.compression.last_mut()) {
        *step = format!("{step}; {}", stored.describe());
    }
    proto.metadata_props = meta.to_props(graph);
    stored
}

/// The kernels of `proto`: its initializers of rank two or more (biases,
/// scales and shapes are vectors). What pruning left zero stays zero in any
/// type, so each step stores its kernels sparse.
pub fn kernels_of(proto: &ModelProto) -> BTreeSet<String> {
    let inits = proto.graph.iter().flat_map(|g| &g.initializer);
    inits
        .filter(|t| t.dims.len() >= 2)
        .filter_map(|t| t.name.clone())
        .collect()
}

/// Stores the `kernels` as values and gaps where that takes fewer bytes:
/// the gaps a byte each, or as codes of `gaps` (at most 2^bits - 1, so
/// wider gaps take fillers). Returns the names of those it stored so;
/// their decoding nodes go before the graph's, and a code stream's must go
/// before them ([`CodeStream::finish`]).
pub fn store_sparse_into(
    proto: &mut ModelProto,
    kernels: &BTreeSet<String>,
    mut gaps: Option<&mut CodeStream>,
) -> Vec<String> {
    let max_gap = gaps.as_ref().map_or(MAX_GAP, |s| (1 << s.bits()) - 1);
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    let (mut decoders, mut initializers, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    for init in std::mem::take(&mut graph.initializer) {
        let name = init.name.clone().unwrap_or_default();
        let element = DataType::try_from(init.data_type.unwrap_or(0))
            .ok()
            .and_then(Element::of);
        let (Some(element), Some(dense), true) =
            (element, init.raw_data.as_deref(), kernels.contains(&name))
        else {
            initializers.push(init);
            continue;
        };
        let encoded = Gaps::encode(element, dense, max_gap);
        let count = encoded.len();
        let gap_bytes = gaps.as_ref().map_or(count, |s| s.packed_bytes(count));
        if encoded.is_empty() || encoded.values.len() + gap_bytes >= dense.len() {
            initializers.push(init);
            continue;
        }
        let part = |s: &str| format!("{name}/{s}");
        initializers.push(tensor(
            &part("values"),
            &[count],
            element.data_type(),
            encoded.values,
        ));
        match gaps.as_deref_mut() {
            Some(stream) => {
                // The distinct gaps are the codebook, in order.
                let mut book = encoded.gaps.clone();
                book.sort_unstable();
                book.dedup();
                let codes: Vec<u8> = encoded
                    .gaps
                    .iter()
                    .map(|g| book.binary_search(g).expect("in the book") as u8)
                    .collect();
                stream.push(
                    &part("gaps"),
                    &[count as i64],
                    DataType::Uint8,
                    book,
                    &codes,
                );
            }
            None => initializers.push(tensor(
                &part("gaps"),
                &[count],
                DataType::Uint8,
                encoded.gaps,
            )),
        }
        let numel = dense.len() / element.size();
        initializers.push(i64_tensor(&part("numel"), &[1], &[numel as i64]));
        initializers.push(i64_tensor(&part("shape"), &[init.dims.len()], &init.dims));
        decoders.extend(decoder(&name, element, stored.len()));
        stored.push(name);
    }
    if !stored.is_empty() {
        initializers.push(i64_tensor(AXIS, &[], &[0]));
    }
    graph.initializer = initializers;
    decoders.append(&mut graph.node);
    graph.node = decoders;
    stored
}

/// The nodes that rebuild kernel `name` of `element`s from its stored
/// parts. They have no names (runtimes name a node by its output), and
/// their values short ones (`~s3z`: kernel 3's zeros): every byte of the
/// graph is a byte of the file.
fn decoder(name: &str, element: Element, id: usize) -> Vec<NodeProto> {
    let part = |s: &str| format!("{name}/{s}");
    let value = |s: &str| format!("~s{id}{s}");
    let zero = AttributeProto {
        name: Some("value".into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(tensor(
            "",
            &[1],
            element.data_type(),
            vec![0; element.size()],
        )),
        ..Default::default()
    };
    let cast = int_attr("to", DataType::Int32 as i64);
    [
        // For float32 the value is ONNX's default, but tract's default is f64.
        (
            "ConstantOfShape",
            vec![part("numel")],
            value("z"),
            vec![zero],
        ),
        ("Cast", vec![part("gaps")], value("g"), vec![cast]),
        ("CumSum", vec![value("g"), AXIS.into()], value("p"), vec![]),
        (
            "ScatterElements",
            vec![value("z"), value("p"), part("values")],
            value("f"),
            vec![int_attr("axis", 0)],
        ),
        (
            "Reshape",
            vec![value("f"), part("shape")],
            name.into(),
            vec![],
        ),
    ]
    .into_iter()
    .map(|(op, inputs, output, attrs)| unnamed(node(op, "", inputs, &output, attrs)))
    .collect()
}

/// Stored kernel values that are zero, however the kernels are stored: sparse
/// (densified first), f32, f16 or int8. Kernels are the initializers of rank
/// two or more; biases, scales and shapes are vectors.
pub fn zero_kernel_values(proto: &ModelProto) -> Result<usize, ModelError> {
    let dense = densify(proto)?;
    let inits = dense.graph.iter().flat_map(|g| &g.initializer);
    Ok(inits
        .filter(|t| t.dims.len() >= 2)
        .map(|t| match DataType::try_from(t.data_type()) {
            Ok(DataType::Float) => float_values(t).iter().filter(|v| **v == 0.0).count(),
            // +0 and -0 in half precision.
            Ok(DataType::Float16) => raw(t)
                .chunks_exact(2)
                .filter(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7fff == 0)
                .count(),
            // Symmetric int8 kernels: zero point 0.
            Ok(DataType::Int8) => raw(t).iter().filter(|b| **b == 0).count(),
            _ => 0,
        })
        .sum())
}

fn raw(t: &TensorProto) -> &[u8] {
    t.raw_data.as_deref().unwrap_or_default()
}
