//! Training for the squeezebox zoo: a libtorch module interpreted from the
//! shared layer graph, and its export to the frozen ONNX format.

pub mod export;
pub mod net;

pub use net::Net;
