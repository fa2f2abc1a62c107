//! The squeezebox model zoo as data.
//!
//! A network is a [`Graph`]: one definition that the trainer turns into a
//! libtorch module, that [`onnx::export`] turns into a frozen ONNX file, and
//! that [`cost()`] counts. Nothing here runs a network.
//!
//! Never depends on libtorch (`tch`) or tract: the trainer, the runtime and
//! compress all build on it, and the runtime must cross-compile.

pub mod atomic;
pub mod cost;
mod error;
pub mod fold;
pub mod graph;
pub mod labels;
pub mod onnx;
pub mod weights;
pub mod zoo;

pub use cost::{cost, Cost};
pub use error::{printable, ModelError};
pub use graph::{Graph, GraphBuilder, Node, NodeId, Op, ParamRole, ParamSpec, Shape};
pub use weights::{Tensor, Weights};
