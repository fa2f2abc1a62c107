//! Compression steps for frozen squeezebox models. Each step reads an ONNX
//! model and returns a new one whose metadata records what was done.
//!
//! Links libtorch (pruning fine-tunes through `trainer`), so `runtime` and
//! `label-image` never depend on it; it never depends on `report` or
//! `label-image`: the commands sit on the libraries, not on each other.

pub mod calibrate;
pub mod code_stream;
pub mod codebook;
pub mod codebook_training;
pub mod compare;
pub mod data;
mod error;
pub mod fp16;
mod onnx_util;
pub mod prune;
pub mod quantize;
pub mod sensitivity;
pub mod short_names;
pub mod sparse_storage;
pub mod stages;
pub mod weights_only;

pub use error::CompressError;
