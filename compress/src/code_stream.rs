//! The one stream of packed codes that a file's coded tensors share (read
//! by `models::onnx::codes`). Weight sharing codes kernel values into it
//! (`codebook.rs`) and sparse storage codes its gaps into it
//! (`sparse_storage.rs`), so a file unpacks one stream, once: standard
//! opset-13 nodes (`BitShift`, `Cast`, `Slice`, `Mul`, `ReduceSum`) turn
//! bytes into codes, and each tensor's `Gather` looks its codes up in its
//! own codebook. Every ONNX runtime folds them into constants at load.

use models::onnx::build::{i32_tensor, i64_tensor, int_attr, node, tensor};
use models::onnx::codes::{codebook_size, BIT_COUNT, SHAPE, STREAM};
use models::onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
    TensorProto,
};

/// Coded tensors, gathered until [`CodeStream::finish`] puts them into a
/// graph.
#[derive(Debug)]
pub struct CodeStream {
    bits: u32,
    codes: Vec<u8>,
    initializers: Vec<TensorProto>,
    lookups: Vec<NodeProto>,
    /// Tensors pushed so far; each names its lookup's values by its index.
    tensors: usize,
}

impl CodeStream {
    /// An empty stream of `bits`-bit codes (2 to 8).
    pub fn new(bits: u32) -> CodeStream {
        assert!(
            models::onnx::codes::BITS.contains(&(bits as i64)),
            "codes are 2-8 bits"
        );
        CodeStream {
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
        self.lookups.extend(lookup(name, self.tensors, reshaped));
        self.tensors += 1;
    }

    /// Bytes `count` codes take in the stream.
    pub fn packed_bytes(&self, count: usize) -> usize {
        (count * self.bits as usize).div_ceil(8)
    }

    /// Puts the stream into `graph`: its parts after the initializers, its
    /// nodes before every other node (they read only initializers). An
    /// empty stream leaves `graph` as it is.
    pub fn finish(self, graph: &mut GraphProto) {
        if self.lookups.is_empty() {
            return;
        }
        graph.initializer.extend(self.initializers);
        graph
            .initializer
            .extend(stream_parts(&self.codes, self.bits));
        let mut nodes = unpacking();
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

/// The constants the unpacking reads.
const COLUMN: &str = "codes/column";
const LEFTS: &str = "codes/lefts";
const SEVEN: &str = "codes/seven";
const FLAT: &str = "codes/flat";
const START: &str = "codes/start";
const ROWS: &str = "codes/rows";
const PLACES: &str = "codes/places";
/// Every code of the stream, as int32.
const INDEX: &str = "~ci";

/// The stream of `codes` packed, with the constants that unpack it.
fn stream_parts(codes: &[u8], bits: u32) -> Vec<TensorProto> {
    let places: Vec<i32> = (0..bits).map(|b| 1 << b).collect();
    let packed = pack(codes, bits);
    vec![
        tensor(STREAM, &[packed.len()], DataType::Uint8, packed),
        i64_tensor(SHAPE, &[2], &[codes.len() as i64, bits as i64]),
        i64_tensor(BIT_COUNT, &[1], &[(codes.len() * bits as usize) as i64]),
        i64_tensor(COLUMN, &[2], &[-1, 1]),
        // Shifting bit k up to the top, then down to the bottom, isolates it.
        tensor(LEFTS, &[8], DataType::Uint8, (0..8).rev().collect()),
        tensor(SEVEN, &[], DataType::Uint8, vec![7]),
        i64_tensor(FLAT, &[1], &[-1]),
        i64_tensor(START, &[1], &[0]),
        i64_tensor(ROWS, &[1], &[1]),
        i32_tensor(PLACES, &[bits as usize], &places),
    ]
}

/// The nodes that unpack the stream: bytes to bits, bits to codes.
fn unpacking() -> Vec<NodeProto> {
    let direction = |d: &str| AttributeProto {
        name: Some("direction".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(d.as_bytes().to_vec()),
        ..Default::default()
    };
    let cast = int_attr("to", DataType::Int32 as i64);
    let keepdims = int_attr("keepdims", 0);
    [
        ("Reshape", [STREAM, COLUMN].as_slice(), "~c1", vec![]),
        ("BitShift", &["~c1", LEFTS], "~c2", vec![direction("LEFT")]),
        ("BitShift", &["~c2", SEVEN], "~c3", vec![direction("RIGHT")]),
        ("Cast", &["~c3"], "~c4", vec![cast]),
        ("Reshape", &["~c4", FLAT], "~c5", vec![]),
        ("Slice", &["~c5", START, BIT_COUNT], "~c6", vec![]),
        ("Reshape", &["~c6", SHAPE], "~c7", vec![]),
        ("Mul", &["~c7", PLACES], "~c8", vec![]),
        ("ReduceSum", &["~c8", ROWS], INDEX, vec![keepdims]),
    ]
    .into_iter()
    .map(|(op, inputs, output, attrs)| {
        let inputs = inputs.iter().map(|i| i.to_string()).collect();
        unnamed(node(op, "", inputs, output, attrs))
    })
    .collect()
}

/// The nodes that look tensor `name`'s codes up in its codebook, then
/// give it its dims if it is `reshaped`.
fn lookup(name: &str, id: usize, reshaped: bool) -> Vec<NodeProto> {
    let part = |s: &str| format!("{name}/{s}");
    let value = |s: &str| format!("~c{id}.{s}");
    let looked_up = if reshaped { value("v") } else { name.to_string() };
    let mut nodes = vec![
        node(
            "Slice",
            "",
            vec![INDEX.into(), part("code_start"), part("code_end")],
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
        nodes.push(node("Reshape", "", vec![looked_up, part("dims")], name, vec![]));
    }
    nodes.into_iter().map(unnamed).collect()
}

/// `n` without a name: runtimes name a node by its output, and every byte
/// of the graph is a byte of the file.
pub(crate) fn unnamed(n: NodeProto) -> NodeProto {
    NodeProto { name: None, ..n }
}
