//! Weight sharing, as in Deep Compression (Han et al., 2016): each kernel's
//! values are drawn from a codebook of at most 2^b entries, found by
//! k-means over the kernel's values, and each value is stored as its b-bit
//! code, packed into the file's code stream (`code_stream.rs`), whose
//! standard nodes decode it in any ONNX runtime, which folds them into the
//! kernel, int8 or float as it was, at load.
//!
//! A kernel with zeros keeps zero as an exact entry, so what pruning zeroed
//! stays zero; a kernel stored sparse has its non-zero values coded.

use std::collections::BTreeSet;

use prost::Message;

use half::f16;
use models::graph::Graph;
use models::onnx::proto::{tensor_proto::DataType, GraphProto, ModelProto};
use models::onnx::sparse::{densify, Element};
use models::onnx::Metadata;

use crate::code_stream::CodeStream;
use crate::sparse_storage::{kernels_of, store_sparse_into};
use crate::stages::then;
use crate::CompressError;

/// The widths a codebook may have, in bits per code.
pub const BITS: std::ops::RangeInclusive<u32> = 2..=8;
/// Lloyd iterations: 1-D k-means over a kernel settles well before this.
const ITERATIONS: usize = 30;

/// A kernel's codebook and its values' codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Coded {
    /// The entries, as the kernel's elements.
    pub codebook: Vec<f64>,
    /// One code per value.
    pub codes: Vec<u8>,
}

impl Coded {
    /// The values `codes` stand for.
    pub fn decoded(&self) -> Vec<f64> {
        self.codes
            .iter()
            .map(|&c| self.codebook[c as usize])
            .collect()
    }
}

/// Checks a bit width from the command line.
pub fn check_bits(bits: u32) -> Result<(), CompressError> {
    if BITS.contains(&bits) {
        Ok(())
    } else {
        Err(CompressError::Invalid(format!(
            "--weight-bits {bits} is outside {}-{}",
            BITS.start(),
            BITS.end()
        )))
    }
}

/// Codes `values` with a codebook of at most 2^bits entries: k-means with
/// its centres spread evenly over the values' range at the start (Deep
/// Compression found that start best), zero an exact entry if any value is
/// zero, and each centre rounded to what `element` holds. A kernel with
/// fewer distinct values than entries is coded exactly.
pub fn cluster(values: &[f64], bits: u32, element: Element) -> Coded {
    let entries = 1usize << bits;
    let has_zero = values.contains(&0.0);
    let mut free: Vec<f64> = values.iter().copied().filter(|&v| v != 0.0).collect();
    free.sort_by(f64::total_cmp);
    let mut distinct = free.clone();
    distinct.dedup();
    let k = entries - has_zero as usize;
    let mut centres = if distinct.len() <= k {
        distinct
    } else {
        let (lo, hi) = (free[0], free[free.len() - 1]);
        let mut c: Vec<f64> = (0..k)
            .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / k as f64)
            .collect();
        for _ in 0..ITERATIONS {
            let next = lloyd_step(&free, &c);
            if next == c {
                break;
            }
            c = next;
        }
        c
    };
    for c in centres.iter_mut() {
        *c = representable(*c, element);
    }
    if has_zero {
        centres.push(0.0);
    }
    centres.sort_by(f64::total_cmp);
    centres.dedup();
    let codes = values.iter().map(|&v| nearest(&centres, v)).collect();
    Coded {
        codebook: centres,
        codes,
    }
}

/// One Lloyd step over sorted `values`: each centre moves to the mean of
/// the values nearest it (one that draws none stays).
fn lloyd_step(values: &[f64], centres: &[f64]) -> Vec<f64> {
    let mut sums = vec![(0.0, 0usize); centres.len()];
    for &v in values {
        let s = &mut sums[nearest(centres, v) as usize];
        s.0 += v;
        s.1 += 1;
    }
    centres
        .iter()
        .zip(sums)
        .map(|(&c, (sum, n))| if n == 0 { c } else { sum / n as f64 })
        .collect()
}

/// The index of the centre nearest `v` in sorted `centres`.
fn nearest(centres: &[f64], v: f64) -> u8 {
    let i = centres.partition_point(|&c| c < v);
    let below = i.checked_sub(1);
    let best = match (below, centres.get(i)) {
        (Some(b), Some(&above)) if v - centres[b] <= above - v => b,
        (Some(b), None) => b,
        _ => i,
    };
    best as u8
}

/// `v` as the nearest value `element` holds.
fn representable(v: f64, element: Element) -> f64 {
    match element {
        Element::F32 => v as f32 as f64,
        Element::F16 => f16::from_f64(v).to_f64(),
        Element::I8 => v.round().clamp(-127.0, 127.0),
    }
}

/// The values of little-endian `bytes` of `element`s.
pub fn values_of(element: Element, bytes: &[u8]) -> Vec<f64> {
    match element {
        Element::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")) as f64)
            .collect(),
        Element::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        Element::I8 => bytes.iter().map(|&b| b as i8 as f64).collect(),
    }
}

/// The little-endian bytes of `values` as `element`s.
fn bytes_of(element: Element, values: &[f64]) -> Vec<u8> {
    match element {
        Element::F32 => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        Element::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f64(v).to_le_bytes())
            .collect(),
        Element::I8 => values.iter().map(|&v| v as i8 as u8).collect(),
    }
}

/// What sharing did to one tensor, for the command's output and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    pub name: String,
    pub values: usize,
    pub entries: usize,
    /// Bytes before and after.
    pub bytes: (usize, usize),
}

/// The layers whose kernels share their values: all, or those named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers(Vec<String>);

impl Layers {
    /// Every layer when `names` is empty. A name is a layer's (`conv10`)
    /// or its last part (`expand3x3`: every fire module's), so that one
    /// kind of layer can take its own width.
    pub fn named(names: Vec<String>) -> Layers {
        Layers(names)
    }

    /// Whether the kernel tensor `tensor` (`L.weight`, `L.weight/values`,
    /// `L.weight.f16`..) belongs to one of the layers.
    pub(crate) fn take(&self, tensor: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|name| Self::names(tensor, name))
    }

    fn names(tensor: &str, name: &str) -> bool {
        let stored = tensor.split('/').next().unwrap_or(tensor);
        let layer = stored.rsplit_once(".weight").map_or(stored, |(l, _)| l);
        layer == name || layer.ends_with(&format!(".{name}"))
    }

    /// The first name that takes none of `kernels`, as an error.
    pub(crate) fn check(&self, kernels: &BTreeSet<String>) -> Result<(), CompressError> {
        match self
            .0
            .iter()
            .find(|n| !kernels.iter().any(|k| Self::names(k, n)))
        {
            Some(name) => Err(CompressError::Invalid(format!(
                "--share-only {name}: no layer of that name or kind has a kernel"
            ))),
            None => Ok(()),
        }
    }
}

/// Stores each kernel of `proto` (initializers of rank two or more) of
/// `layers` as codes of `bits` into a codebook of its own, where that
/// takes fewer bytes. A kernel with zeros is stored sparse first and its
/// non-zero values coded; its gaps stay a byte each, or become codes in
/// the same stream, or in a gap stream of their own width (2 to 8 bits):
/// whichever makes the smallest file. Returns what it did and, where any
/// kernel is sparse, the gaps' width (8: a byte each).
pub fn share(
    proto: &mut ModelProto,
    bits: u32,
    layers: &Layers,
) -> Result<(Vec<Shared>, Option<u32>), CompressError> {
    check_bits(bits)?;
    let dense = densify(proto)?;
    let kernels = kernels_of(&dense);
    layers.check(&kernels)?;
    // From a byte down, so that a tie keeps the simpler storage.
    let candidates = (2..=8).rev().map(|gap_bits| {
        let mut candidate = dense.clone();
        let mut stream = CodeStream::new(bits);
        let mut own = (gap_bits != bits && gap_bits != 8).then(|| CodeStream::for_gaps(gap_bits));
        let gaps = match (gap_bits, own.as_mut()) {
            (8, _) => None,
            (_, Some(own)) => Some(own),
            (_, None) => Some(&mut stream),
        };
        let sparse = store_sparse_into(&mut candidate, &kernels, gaps);
        let graph = candidate
            .graph
            .as_mut()
            .expect("decoded models have a graph");
        let shared = code_values(graph, &sparse, &mut stream, layers);
        stream.finish(graph);
        if let Some(own) = own {
            own.finish(graph);
        }
        let gap_bits = (!sparse.is_empty()).then_some(gap_bits);
        (candidate, shared, gap_bits)
    });
    let (best, shared, gap_bits) = candidates
        .min_by_key(|(candidate, ..)| candidate.encoded_len())
        .expect("seven candidates");
    *proto = best;
    Ok((shared, gap_bits))
}

/// Codes each kernel of `graph` of `layers`, and the values of each of its
/// `sparse` kernels (`K/values`), into `stream` where that takes fewer
/// bytes.
fn code_values(
    graph: &mut GraphProto,
    sparse: &[String],
    stream: &mut CodeStream,
    layers: &Layers,
) -> Vec<Shared> {
    let sparse_values: BTreeSet<String> = sparse.iter().map(|k| format!("{k}/values")).collect();
    let bits = stream.bits();
    let mut shared = Vec::new();
    graph.initializer.retain(|init| {
        let name = init.name.clone().unwrap_or_default();
        let element = DataType::try_from(init.data_type.unwrap_or(0))
            .ok()
            .and_then(Element::of);
        let is_kernel =
            (init.dims.len() >= 2 || sparse_values.contains(&name)) && layers.take(&name);
        let (Some(element), Some(raw), true) = (element, init.raw_data.as_deref(), is_kernel)
        else {
            return true;
        };
        let coded = cluster(&values_of(element, raw), bits, element);
        let book = bytes_of(element, &coded.codebook);
        let count = coded.codes.len();
        // Its codes, codebook, and range and dims as int64.
        let after = stream.packed_bytes(count) + book.len() + 8 * (2 + init.dims.len());
        if after >= raw.len() {
            return true;
        }
        stream.push(&name, &init.dims, element.data_type(), book, &coded.codes);
        shared.push(Shared {
            name,
            values: count,
            entries: coded.codebook.len(),
            bytes: (raw.len(), after),
        });
        false
    });
    shared
}

/// `proto` (a model of `meta` and `graph`) with its kernels shared by
/// [`share`]: its variant gains `wB`, and its metadata says what was done.
pub fn share_model(
    mut proto: ModelProto,
    mut meta: Metadata,
    graph: &Graph,
    bits: u32,
    layers: &Layers,
) -> Result<(ModelProto, Vec<Shared>), CompressError> {
    let (shared, gap_bits) = share(&mut proto, bits, layers)?;
    let (before, after) = shared
        .iter()
        .fold((0, 0), |(b, a), s| (b + s.bytes.0, a + s.bytes.1));
    // `w4`, or `w4-expand3x3` where only some layers share.
    let step = std::iter::once(format!("w{bits}"))
        .chain(layers.0.iter().cloned())
        .collect::<Vec<_>>()
        .join("-");
    meta.variant = then(&meta.variant, &step);
    let gaps = match gap_bits {
        Some(8) => "; gaps a byte each".to_string(),
        Some(g) => format!("; gaps as {g}-bit codes"),
        None => String::new(),
    };
    meta.compression.push(format!(
        "{step}: {} kernels share their values, k-means codebooks of at most {} entries and packed \
         {bits}-bit codes ({before} -> {after} bytes){gaps}",
        shared.len(),
        1 << bits
    ));
    proto.metadata_props = meta.to_props(graph);
    Ok((proto, shared))
}
