//! The streams of packed codes that a file's coded tensors share (read by
//! `models::onnx::codes`). Weight sharing codes kernel values into the
//! value stream (`codebook.rs`) and sparse storage codes its gaps into it
//! too (`sparse_storage.rs`), or into a gap stream of its own width where
//! that is smaller, so a file unpacks each stream once: standard opset-13
//! nodes (`BitShift`, `Cast`, `Slice`, `Mul`, `ReduceSum`) turn bytes into
//! codes, and each tensor's `Gather` looks its codes up in its own
//! codebook. Every ONNX runtime folds them into constants at load.

use models::onnx::build::{i32_tensor, i64_tensor, int_attr, node, tensor};
use models::onnx::codes::{codebook_size, stream_part, GAP_STREAM, VALUE_STREAM};
use models::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
    TensorProto,
};

/// Coded tensors, gathered until [`CodeStream::finish`] puts them into a
/// graph.
#[derive(Debug)]
pub struct CodeStream {
    /// `VALUE_STREAM` or `GAP_STREAM`, which prefixes its parts.
    name: &'static str,
    /// The letter of its nodes' values (`~c4`, `~g4`).
    tag: char,
    bits: u32,
    codes: Vec<u8>,
    initializers: Vec<TensorProto>,
    lookups: Vec<NodeProto>,
    /// Tensors pushed so far; each names its lookup's values by its index.
    tensors: usize,
}

impl CodeStream {
    /// An empty value stream of `bits`-bit codes (2 to 8).
    pub fn new(bits: u32) -> CodeStream {
        CodeStream::named(VALUE_STREAM, 'c', bits)
    }

    /// An empty stream for sparse kernels' gaps alone, which a file
    /// with a value stream of another width needs.
    pub fn for_gaps(bits: u32) -> CodeStream {
        CodeStream::named(GAP_STREAM, 'g', bits)
    }

    fn named(name: &'static str, tag: char, bits: u32) -> CodeStream {
        assert!(
            models::onnx::codes::BITS.contains(&(bits as i64)),
            "codes are 2-8 bits"
        );
        CodeStream {
            name,
            tag,
            bits,
            codes: Vec::new(),
            initializers: Vec::new(),
            lookups: Vec::new(),
            tensors: 0,
        }
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Adds tensor `name` of `dims`: `codes` into `codebook`, the raw bytes
    /// of its entries in `ty` (at most 2^bits of them). The graph's nodes
    /// will decode it under its own name.
    pub fn push(
        &mut self,
        name: &str,
        dims: &[i64],
        ty: DataType,
        codebook: Vec<u8>,
        codes: &[u8],
    ) {
        let size = codebook_size(ty).expect("a codebook's type");
        let part = |s: &str| format!("{name}/{s}");
        let start = self.codes.len();
        self.codes.extend(codes);
        self.initializers.extend([
            tensor(&part("codebook"), &[codebook.len() / size], ty, codebook),
            i64_tensor(&part("code_start"), &[1], &[start as i64]),
            i64_tensor(&part("code_end"), &[1], &[self.codes.len() as i64]),
        ]);
        // A run of codes is already the shape of a 1-D tensor.
        let reshaped = dims.len() != 1;
        if reshaped {
            self.initializers
                .push(i64_tensor(&part("dims"), &[dims.len()], dims));
        }
        self.lookups
            .extend(lookup(name, self.tag, self.tensors, reshaped));
        self.tensors += 1;
    }

    /// Bytes `count` codes take in the stream.
    pub fn packed_bytes(&self, count: usize) -> usize {
        (count * self.bits as usize).div_ceil(8)
    }

    /// Puts the stream into `graph`: its parts after the initializers
    /// (the constants that another stream already put there once), its
    /// nodes before every other node (they read only initializers). An
    /// empty stream leaves `graph` as it is.
    pub fn finish(self, graph: &mut GraphProto) {
        if self.lookups.is_empty() {
            return;
        }
        graph.initializer.extend(self.initializers);
        let parts: Vec<TensorProto> = stream_parts(self.name, &self.codes, self.bits)
            .into_iter()
            .filter(|p| !graph.initializer.iter().any(|t| t.name == p.name))
            .collect();
        graph.initializer.extend(parts);
        let mut nodes = unpacking(self.name, self.tag);
        nodes.extend(self.lookups);
        nodes.append(&mut graph.node);
        graph.node = nodes;
    }
}

/// `codes` of `bits` each as a bit stream, least significant bit first.
pub fn pack(codes: &[u8], bits: u32) -> Vec<u8> {
    let mut packed = vec![0u8; (codes.len() * bits as usize).div_ceil(8)];
    for (i, &code) in codes.iter().enumerate() {
        for b in 0..bits as usize {
            if code >> b & 1 == 1 {
                let at = i * bits as usize + b;
                packed[at / 8] |= 1 << (at % 8);
            }
        }
    }
    packed
}

/// The constants the unpacking of every stream reads.
const COLUMN: &str = "codes/column";
const LEFTS: &str = "codes/lefts";
const SEVEN: &str = "codes/seven";
const FLAT: &str = "codes/flat";
const START: &str = "codes/start";
const ROWS: &str = "codes/rows";

/// Every code of the stream tagged `tag`, as int32.
fn index(tag: char) -> String {
    format!("~{tag}i")
}

/// Stream `name` of `codes` packed, with the constants that unpack it.
fn stream_parts(name: &str, codes: &[u8], bits: u32) -> Vec<TensorProto> {
    let places: Vec<i32> = (0..bits).map(|b| 1 << b).collect();
    let packed = pack(codes, bits);
    let part = |p: &str| stream_part(name, p);
    vec![
        tensor(&part("stream"), &[packed.len()], DataType::Uint8, packed),
        i64_tensor(&part("shape"), &[2], &[codes.len() as i64, bits as i64]),
        i64_tensor(
            &part("bit_count"),
            &[1],
            &[(codes.len() * bits as usize) as i64],
        ),
        // Its own width's place values.
        i32_tensor(&part("places"), &[bits as usize], &places),
        i64_tensor(COLUMN, &[2], &[-1, 1]),
        // Shifting bit k up to the top, then down to the bottom, isolates it.
        tensor(LEFTS, &[8], DataType::Uint8, (0..8).rev().collect()),
        tensor(SEVEN, &[], DataType::Uint8, vec![7]),
        i64_tensor(FLAT, &[1], &[-1]),
        i64_tensor(START, &[1], &[0]),
        i64_tensor(ROWS, &[1], &[1]),
    ]
}

/// The nodes that unpack stream `name` (tagged `tag`): bytes to bits,
/// bits to codes.
fn unpacking(name: &str, tag: char) -> Vec<NodeProto> {
    let direction = |d: &str| AttributeProto {
        name: Some("direction".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(d.as_bytes().to_vec()),
        ..Default::default()
    };
    let cast = int_attr("to", DataType::Int32 as i64);
    let keepdims = int_attr("keepdims", 0);
    let part = |p: &str| stream_part(name, p);
    let value = |i: usize| format!("~{tag}{i}");
    [
        (
            "Reshape",
            vec![part("stream"), COLUMN.into()],
            value(1),
            vec![],
        ),
        (
            "BitShift",
            vec![value(1), LEFTS.into()],
            value(2),
            vec![direction("LEFT")],
        ),
        (
            "BitShift",
            vec![value(2), SEVEN.into()],
            value(3),
            vec![direction("RIGHT")],
        ),
        ("Cast", vec![value(3)], value(4), vec![cast]),
        ("Reshape", vec![value(4), FLAT.into()], value(5), vec![]),
        (
            "Slice",
            vec![value(5), START.into(), part("bit_count")],
            value(6),
            vec![],
        ),
        ("Reshape", vec![value(6), part("shape")], value(7), vec![]),
        ("Mul", vec![value(7), part("places")], value(8), vec![]),
        (
            "ReduceSum",
            vec![value(8), ROWS.into()],
            index(tag),
            vec![keepdims],
        ),
    ]
    .into_iter()
    .map(|(op, inputs, output, attrs)| unnamed(node(op, "", inputs, &output, attrs)))
    .collect()
}

/// The nodes that look tensor `name`'s codes up in its codebook, then
/// give it its dims if it is `reshaped`.
fn lookup(name: &str, tag: char, id: usize, reshaped: bool) -> Vec<NodeProto> {
    let part = |s: &str| format!("{name}/{s}");
    let value = |s: &str| format!("~{tag}{id}.{s}");
    let looked_up = if reshaped {
        value("v")
    } else {
        name.to_string()
    };
    let mut nodes = vec![
        node(
            "Slice",
            "",
            vec![index(tag), part("code_start"), part("code_end")],
            &value("c"),
            vec![],
        ),
        node(
            "Gather",
            "",
            vec![part("codebook"), value("c")],
            &looked_up,
            vec![int_attr("axis", 0)],
        ),
    ];
    if reshaped {
        nodes.push(node(
            "Reshape",
            "",
            vec![looked_up, part("dims")],
            name,
            vec![],
        ));
    }
    nodes.into_iter().map(unnamed).collect()
}

/// `n` without a name: runtimes name a node by its output, and every byte
/// of the graph is a byte of the file.
pub(crate) fn unnamed(n: NodeProto) -> NodeProto {
    NodeProto { name: None, ..n }
}
