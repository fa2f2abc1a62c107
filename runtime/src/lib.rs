//! The deployable half of squeezebox: loads a frozen model with tract and
//! runs it on raw pixels. No libtorch here, so it stays small and
//! cross-compiles for ARM boards.
//!
//! Never depends on libtorch (`tch`), directly or through `trainer`,
//! `compress` or `report`: `cargo tree -p runtime -i tch` must find nothing.

pub mod accuracy;
mod error;
pub mod foreign;
mod fusion;
pub mod image_folder;
mod image_size;
pub mod inspect;
mod kernels;
mod model;
mod onnx_ops;
pub mod preprocess;
pub mod probe;
pub mod profile;
pub mod timing;

pub use error::RuntimeError;
pub use image_size::ImageSize;
pub use model::{Model, Predictions, IMAGE_BYTES};
