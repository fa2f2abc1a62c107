//! From a trained [`Net`] to a frozen ONNX file.

use std::path::Path;

use models::fold::fold_batchnorm;
use models::onnx::{self, Metadata};
use models::ModelError;

use crate::Net;

/// Writes `net` to `path` as a frozen model: batch norm folded into the
/// convolutions, preprocessing and softmax in the graph, `meta` attached.
pub fn export_onnx(path: &Path, net: &Net, meta: &Metadata) -> Result<(), ModelError> {
    let (graph, weights) = fold_batchnorm(net.graph(), &net.weights()?)?;
    onnx::export(path, &graph, &weights, meta)
}
