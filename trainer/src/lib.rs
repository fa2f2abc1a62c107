//! Training for the squeezebox zoo: a libtorch module interpreted from the
//! shared layer graph, the loop that trains it on CIFAR-10, and its export
//! to the frozen ONNX format.
//!
//! Never depends on tract or `runtime`: training and deployment meet only
//! in the ONNX file, whose contract `models` defines.

pub mod augment;
pub mod batch_norm;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod distill;
pub mod ema;
mod error;
pub mod export;
pub mod history;
pub mod net;
pub mod optim;
pub mod outputs;
pub mod progress;
pub mod schedule;
pub mod train;

pub use error::TrainError;
pub use net::Net;

/// The first line of a message: libtorch's errors carry a C++ backtrace.
pub(crate) fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}
