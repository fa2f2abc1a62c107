//! Pruned kernels stored without their zeros: the non-zero values in the
//! kernel's own type (float32, float16 or int8) and, for each, the gap
//! from the previous one's position. The sparse kernels of one type form
//! a block, laid end to end, so that one run of gaps and one set of
//! standard opset-13 nodes (`Concat`, `ConstantOfShape`, `Cast`, `CumSum`,
//! `ScatterElements`, `Split`, then a `Reshape` a kernel) rebuild them all:
//! every ONNX runtime loads the file as it is and folds them into
//! constants at load. Decoded one by one, their nodes and small parts were
//! 4 KB of a 64 KB squeeze1.
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

/// Stores the `kernels` as values and gaps where that takes fewer bytes,
/// in one block a type: the gaps a byte each, or as codes of `gaps` (at
/// most 2^bits - 1, so wider gaps take fillers). Returns the names of
/// those it stored so; their decoding nodes go before the graph's, and a
/// code stream's must go before them ([`CodeStream::finish`]).
pub fn store_sparse_into(
    proto: &mut ModelProto,
    kernels: &BTreeSet<String>,
    mut gaps: Option<&mut CodeStream>,
) -> Vec<String> {
    let max_gap = gaps.as_ref().map_or(MAX_GAP, |s| (1 << s.bits()) - 1);
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    let mut blocks: Vec<(Element, Vec<TensorProto>)> = Vec::new();
    let mut initializers = Vec::new();
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
        // Whether it pays is the kernel's own affair: stored alone, its
        // values and gaps take fewer bytes than it does dense.
        let alone = Gaps::encode(element, dense, max_gap);
        let gap_bytes = gaps
            .as_ref()
            .map_or(alone.len(), |s| s.packed_bytes(alone.len()));
        if alone.is_empty() || alone.values.len() + gap_bytes >= dense.len() {
            initializers.push(init);
            continue;
        }
        match blocks.iter_mut().find(|(e, _)| *e == element) {
            Some((_, members)) => members.push(init),
            None => blocks.push((element, vec![init])),
        }
    }
    let mut decoders = Vec::new();
    let mut stored = Vec::new();
    for (id, (element, members)) in blocks.into_iter().enumerate() {
        let block = element.block();
        let part = |s: &str| format!("{block}/{s}");
        let joint: Vec<u8> = members
            .iter()
            .flat_map(|k| k.raw_data.iter().flatten().copied())
            .collect();
        let sizes: Vec<i64> = members
            .iter()
            .map(|k| k.dims.iter().product::<i64>())
            .collect();
        let encoded = Gaps::encode(element, &joint, max_gap);
        let count = encoded.len();
        let names: Vec<String> = members.iter().filter_map(|k| k.name.clone()).collect();
        for ((name, kernel), run) in names.iter().zip(&members).zip(value_runs(&encoded, &sizes)) {
            let size = element.size();
            let values = encoded.values[run.start * size..run.end * size].to_vec();
            initializers.push(tensor(
                &format!("{name}/values"),
                &[run.len()],
                element.data_type(),
                values,
            ));
            initializers.push(i64_tensor(
                &format!("{name}/shape"),
                &[kernel.dims.len()],
                &kernel.dims,
            ));
        }
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
        let numel = joint.len() / element.size();
        initializers.push(i64_tensor(&part("numel"), &[1], &[numel as i64]));
        initializers.push(i64_tensor(&part("sizes"), &[sizes.len()], &sizes));
        decoders.extend(decoder(&block, element, id, &names));
        stored.extend(names);
    }
    if !stored.is_empty() {
        initializers.push(i64_tensor(AXIS, &[], &[0]));
    }
    graph.initializer = initializers;
    decoders.append(&mut graph.node);
    graph.node = decoders;
    stored
}

/// Which of a block's stored values (by index) each kernel's `K/values`
/// holds, its elements `sizes` long in turn: its own non-zero values and
/// the fillers between them. Fillers that bridge the end of one kernel and
/// the start of the next may go to either, and go to one that has zero
/// among its values already, so that weight sharing, which gives zero an
/// exact entry, finds the same codebook as for the kernel alone.
fn value_runs(encoded: &Gaps, sizes: &[i64]) -> Vec<std::ops::Range<usize>> {
    let size = encoded.element.size();
    let is_filler = |i: usize| {
        encoded.values[i * size..(i + 1) * size]
            .iter()
            .all(|&b| b == 0)
    };
    // The kernel of each value, by its position.
    let mut ends = sizes.iter().scan(0i64, |end, &s| {
        *end += s;
        Some(*end)
    });
    let (mut kernel, mut end) = (0usize, ends.next().unwrap_or(0));
    let mut position = 0i64;
    let mut owner: Vec<usize> = Vec::with_capacity(encoded.len());
    for &gap in &encoded.gaps {
        position += gap as i64;
        while position >= end {
            kernel += 1;
            end = ends.next().unwrap_or(i64::MAX);
        }
        owner.push(kernel);
    }
    // Each kernel's first and last non-filler value.
    let mut first = vec![usize::MAX; sizes.len()];
    let mut last = vec![0usize; sizes.len()];
    for (i, &k) in owner.iter().enumerate() {
        if !is_filler(i) {
            first[k] = first[k].min(i);
            last[k] = i;
        }
    }
    let has_zero = |k: usize| (first[k]..=last[k]).any(is_filler);
    // A run ends at the kernel's last value, or after the fillers that
    // follow it where they go to it.
    let mut runs = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for k in 0..sizes.len() {
        let end = match k + 1 < sizes.len() {
            false => encoded.len(),
            true if has_zero(k) || !has_zero(k + 1) => first[k + 1],
            true => last[k] + 1,
        };
        runs.push(start..end);
        start = end;
    }
    runs
}

/// The nodes that rebuild the `kernels` of block `block` of `element`s
/// from its stored parts. They have no names (runtimes name a node by its
/// output), and their values short ones (`~s0z`: block 0's zeros): every
/// byte of the graph is a byte of the file.
fn decoder(block: &str, element: Element, id: usize, kernels: &[String]) -> Vec<NodeProto> {
    let part = |s: &str| format!("{block}/{s}");
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
    let values = kernels.iter().map(|k| format!("{k}/values")).collect();
    let parts: Vec<String> = (0..kernels.len())
        .map(|i| value(&format!(".{i}")))
        .collect();
    let mut nodes: Vec<NodeProto> = [
        ("Concat", values, value("v"), vec![int_attr("axis", 0)]),
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
            vec![value("z"), value("p"), value("v")],
            value("f"),
            vec![int_attr("axis", 0)],
        ),
    ]
    .into_iter()
    .map(|(op, inputs, output, attrs)| node(op, "", inputs, &output, attrs))
    .collect();
    nodes.push(NodeProto {
        output: parts.clone(),
        ..node("Split", "", vec![value("f"), part("sizes")], "", vec![])
    });
    nodes.extend(kernels.iter().zip(parts).map(|(kernel, flat)| {
        node(
            "Reshape",
            "",
            vec![flat, format!("{kernel}/shape")],
            kernel,
            vec![],
        )
    }));
    nodes.into_iter().map(unnamed).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fillers_between_two_kernels_go_to_one_that_has_zero_among_its_values() {
        // Kernel a: a 1, then 30 zeros. Kernel b: 5 zeros, a 2, 20 zeros, a 3.
        let mut a = vec![0u8; 31];
        a[0] = 1;
        let mut b = vec![0u8; 27];
        (b[5], b[26]) = (2, 3);
        let joint = [a.clone(), b.clone()].concat();
        // Gaps of at most 15: fillers at 15 and 30 (in a) reach b's 2 at 36,
        // and one at 51 (in b) its 3 at 57.
        let encoded = Gaps::encode(Element::I8, &joint, 15);
        assert_eq!(encoded.values, [1, 0, 0, 2, 0, 3]);
        // Only b has a zero of its own, so b takes the two between.
        assert_eq!(value_runs(&encoded, &[31, 27]), [0..1, 1..6]);
        // Where a has one too, a takes them, even one that falls in b: a 4
        // at 20 leaves a filler at 15 in a, and one at 35 before b's 2.
        a[20] = 4;
        let encoded = Gaps::encode(Element::I8, &[a, b].concat(), 15);
        assert_eq!(encoded.values, [1, 0, 4, 0, 2, 0, 3]);
        assert_eq!(value_runs(&encoded, &[31, 27]), [0..4, 4..7]);
    }
}
