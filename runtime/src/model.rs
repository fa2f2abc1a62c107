//! A loaded model: its metadata, its size on disk, and a tract plan that
//! takes `uint8 [N,32,32,3]` pixels for any batch size N.

use std::path::Path;
use std::sync::Arc;

use models::onnx::{self, Metadata};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;

use crate::RuntimeError;

/// Bytes of one raw image: 32x32 RGB.
pub const IMAGE_BYTES: usize = models::graph::RAW_SIZE * models::graph::RAW_SIZE * models::graph::RAW_CHANNELS;

/// A frozen model ready to run.
pub struct Model {
    meta: Metadata,
    classes: usize,
    file_bytes: usize,
    plan: Arc<TypedRunnableModel>,
}

/// The outputs for a batch, row-major `[N, classes]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub classes: usize,
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.logits.len() / self.classes
    }

    pub fn is_empty(&self) -> bool {
        self.logits.is_empty()
    }

    /// Probabilities of image `i`.
    pub fn probabilities_of(&self, i: usize) -> &[f32] {
        &self.probabilities[i * self.classes..(i + 1) * self.classes]
    }

    /// The `k` most probable classes of image `i`, best first.
    pub fn top_k(&self, i: usize, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = self.probabilities_of(i).iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        ranked
    }
}

impl Model {
    /// Loads a model file; errors name the file.
    pub fn load(path: &Path) -> Result<Model, RuntimeError> {
        let bytes = std::fs::read(path)
            .map_err(|e| RuntimeError::File { path: path.to_path_buf(), why: format!("cannot read: {e}") })?;
        Model::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Loads a model from its bytes (an embedded model, say).
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, RuntimeError> {
        let frozen = onnx::decode(bytes)?;
        let tract_err = |e: TractError| RuntimeError::Model(format!("tract cannot run this model: {e:#}"));
        let mut proto_bytes = bytes;
        let model = tract_onnx::onnx().model_for_read(&mut proto_bytes).map_err(tract_err)?;
        let batch = model.sym("N");
        let plan = model
            .with_input_fact(0, u8::fact(dims!(batch, 32, 32, 3)).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(tract_err)?;
        Ok(Model { meta: frozen.meta, classes: frozen.contract.classes, file_bytes: bytes.len(), plan })
    }

    pub fn meta(&self) -> &Metadata {
        &self.meta
    }

    pub fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Size of the model file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.file_bytes
    }

    /// Runs a batch of raw `32x32x3` RGB images laid end to end.
    pub fn run(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        if pixels.is_empty() || pixels.len() % IMAGE_BYTES != 0 {
            return Err(RuntimeError::Input(format!(
                "{} bytes is not a whole number of 32x32x3 images",
                pixels.len()
            )));
        }
        let n = pixels.len() / IMAGE_BYTES;
        let input = tract_ndarray::Array4::from_shape_vec((n, 32, 32, 3), pixels.to_vec())
            .map_err(|e| RuntimeError::Input(e.to_string()))?;
        let outputs = self
            .plan
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|e| RuntimeError::Model(format!("inference failed: {e}")))?;
        let read = |t: &TValue| -> Result<Vec<f32>, RuntimeError> {
            let view = t.to_plain_array_view::<f32>().map_err(|e| RuntimeError::Model(e.to_string()))?;
            Ok(view.iter().copied().collect())
        };
        Ok(Predictions { classes: self.classes, logits: read(&outputs[0])?, probabilities: read(&outputs[1])? })
    }
}
