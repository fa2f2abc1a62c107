//! Seeded mutants of model files, for the tests that hold every loader to
//! "runs, or one clean error; never a panic, an abort or a hang": changed
//! bytes, truncations, size bombs and swapped tensors. The same seed gives
//! the same mutants on every machine.

use models::onnx::proto::{tensor_proto::DataType, ModelProto, TensorProto};
use prost::Message;

/// splitmix64: small, seeded and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One mutant and what was done to it, for the failure message.
pub struct Mutant {
    pub what: String,
    pub bytes: Vec<u8>,
}

/// `count` mutants of a model file's `bytes`, in turn: changed bytes, a
/// truncation, a size bomb or a bad attribute, and swapped tensors.
pub fn mutants(bytes: &[u8], seed: u64, count: usize) -> Vec<Mutant> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| match i % 4 {
            0 => changed_bytes(bytes, &mut rng),
            1 => {
                let len = rng.below(bytes.len());
                Mutant {
                    what: format!("cut to {len} bytes"),
                    bytes: bytes[..len].to_vec(),
                }
            }
            2 if rng.below(2) == 0 => size_bomb(bytes, &mut rng),
            2 => bad_attribute(bytes, &mut rng),
            _ => swapped(bytes, &mut rng),
        })
        .collect()
}

/// One to eight bytes set to random values.
fn changed_bytes(bytes: &[u8], rng: &mut Rng) -> Mutant {
    let mut bytes = bytes.to_vec();
    let at: Vec<usize> = (0..1 + rng.below(8))
        .map(|_| rng.below(bytes.len()))
        .collect();
    for &i in &at {
        bytes[i] = rng.next() as u8;
    }
    Mutant {
        what: format!("bytes changed at {at:?}"),
        bytes,
    }
}

/// Decodes `bytes`, applies `edit` and encodes the result.
pub fn edit(bytes: &[u8], edit: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut proto = ModelProto::decode(bytes).expect("shipped files decode");
    edit(&mut proto);
    proto.encode_to_vec()
}

/// The initializers of `proto` that `pick` accepts.
fn initializers(
    proto: &mut ModelProto,
    pick: impl Fn(&TensorProto) -> bool,
) -> Vec<&mut TensorProto> {
    let graph = proto.graph.as_mut().expect("shipped files have a graph");
    graph.initializer.iter_mut().filter(|t| pick(t)).collect()
}

/// A tensor that asks for far more than its file holds, or a sparse
/// kernel's parts or an int8 scale made inconsistent.
fn size_bomb(bytes: &[u8], rng: &mut Rng) -> Mutant {
    let kind = rng.below(4);
    let pick = rng.next() as usize;
    let mut what = String::new();
    let bytes = edit(bytes, |proto| {
        let is = |ty: DataType| move |t: &TensorProto| t.data_type == Some(ty as i32);
        let mut candidates = match kind {
            0 => initializers(proto, is(DataType::Int64)),
            1 => initializers(proto, |t| !t.dims.is_empty()),
            2 => initializers(proto, is(DataType::Float)),
            _ => initializers(proto, is(DataType::Uint8)),
        };
        if candidates.is_empty() {
            what = "no candidate; unchanged".into();
            return;
        }
        let n = candidates.len();
        let t = &mut candidates[pick % n];
        let name = t.name.clone().unwrap_or_default();
        match kind {
            0 => {
                let big = [1i64 << 40, 1 << 30, -1, 0][pick / n % 4];
                set_i64s(t, big);
                what = format!("'{name}' set to {big}");
            }
            1 => {
                t.dims[0] = 1 << 30;
                what = format!("'{name}' dims[0] set to 2^30");
            }
            2 => {
                let bad = [f32::NAN, 0.0, -1.0, f32::INFINITY, 1e30][pick / n % 5];
                if let Some(raw) = t.raw_data.as_mut().filter(|r| r.len() >= 4) {
                    raw[..4].copy_from_slice(&bad.to_le_bytes());
                }
                what = format!("'{name}' first value set to {bad}");
            }
            _ => {
                if let Some(raw) = t.raw_data.as_mut() {
                    raw.fill(u8::MAX);
                }
                what = format!("'{name}' bytes all set to 255");
            }
        }
    });
    Mutant { what, bytes }
}

/// One of a node's integer attributes (an axis, a kernel size, a pad, a
/// permutation...) set to a value out of its range.
fn bad_attribute(bytes: &[u8], rng: &mut Rng) -> Mutant {
    let bad = [1i64 << 30, 38, -7, 0][rng.below(4)];
    let (pick, at) = (rng.next() as usize, rng.next() as usize);
    let mut what = "no attribute; unchanged".to_string();
    let bytes = edit(bytes, |proto| {
        let graph = proto.graph.as_mut().expect("a graph");
        let mut attributes: Vec<_> = graph
            .node
            .iter_mut()
            .flat_map(|n| n.attribute.iter_mut())
            .filter(|a| a.i.is_some() || !a.ints.is_empty())
            .collect();
        if attributes.is_empty() {
            return;
        }
        let n = attributes.len();
        let a = &mut attributes[pick % n];
        match a.ints.len() {
            0 => a.i = Some(bad),
            len => a.ints[at % len] = bad,
        }
        what = format!(
            "attribute '{}' given {bad}",
            a.name.as_deref().unwrap_or("")
        );
    });
    Mutant { what, bytes }
}

/// Sets every value of an int64 tensor to `v`.
pub fn set_i64s(t: &mut TensorProto, v: i64) {
    if let Some(raw) = t.raw_data.as_mut() {
        for chunk in raw.chunks_exact_mut(8) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
    }
    t.int64_data.fill(v);
}

/// Two initializers' contents swapped, each keeping its name.
fn swapped(bytes: &[u8], rng: &mut Rng) -> Mutant {
    let (a, b) = (rng.next() as usize, rng.next() as usize);
    let mut what = String::new();
    let bytes = edit(bytes, |proto| {
        let inits = &mut proto.graph.as_mut().expect("a graph").initializer;
        let (a, b) = (a % inits.len(), b % inits.len());
        what = format!(
            "contents of '{}' and '{}' swapped",
            inits[a].name.as_deref().unwrap_or(""),
            inits[b].name.as_deref().unwrap_or("")
        );
        let name_a = inits[a].name.take();
        let name_b = inits[b].name.take();
        inits.swap(a, b);
        inits[a].name = name_a;
        inits[b].name = name_b;
    });
    Mutant { what, bytes }
}

/// The initializer named `name`.
pub fn initializer<'p>(proto: &'p mut ModelProto, name: &str) -> &'p mut TensorProto {
    let graph = proto.graph.as_mut().expect("shipped files have a graph");
    graph
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no initializer '{name}'"))
}
