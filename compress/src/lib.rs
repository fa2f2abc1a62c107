//! Compression steps for frozen squeezebox models. Each step reads an ONNX
//! model and returns a new one whose metadata records what was done.

mod error;
pub mod fp16;

pub use error::CompressError;
