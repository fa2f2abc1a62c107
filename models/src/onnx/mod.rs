//! The frozen model format: ONNX, written and read with prost.
//!
//! Every squeezebox model takes raw pixels, `uint8 [N,H,W,3]` named
//! `pixels` (32x32 for the zoo's CIFAR-10 nets), and returns `logits` and
//! `probabilities`, `float [N,classes]`.
//! Preprocessing lives in the graph, so any ONNX runtime gives the same
//! answer from the same pixels.

pub mod build;
pub mod codes;
mod export;
pub mod import;
mod metadata;
mod read;
pub mod sparse;
mod tensors;
mod validate;

/// The ONNX protobuf messages, generated from the vendored `onnx.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use export::{encode, export, OPSET};
pub use metadata::{keys, Metadata};
pub use read::{
    decode, decode_foreign, read_weights, Contract, ForeignModel, FrozenModel, MAX_SIDE,
};
pub use tensors::float_values;
pub use validate::max_values;

/// Name of the graph input.
pub const INPUT: &str = "pixels";
/// Name of the logits output.
pub const LOGITS: &str = "logits";
/// Name of the softmax output.
pub const PROBABILITIES: &str = "probabilities";
