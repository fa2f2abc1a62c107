//! A loaded model: its metadata, its cost, its size on disk, and a tract plan
//! that takes `uint8 [N,32,32,3]` pixels for any batch size N.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use models::onnx::{self, proto::ModelProto, Metadata};
use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;

use crate::RuntimeError;

/// Bytes of one raw image: 32x32 RGB.
pub const IMAGE_BYTES: usize =
    models::graph::RAW_SIZE * models::graph::RAW_SIZE * models::graph::RAW_CHANNELS;

/// A frozen model ready to run.
pub struct Model {
    meta: Metadata,
    classes: usize,
    file_bytes: usize,
    cost: Option<models::Cost>,
    initializer_values: usize,
    threads: NonZeroUsize,
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
        let mut ranked: Vec<(usize, f32)> = self
            .probabilities_of(i)
            .iter()
            .copied()
            .enumerate()
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        ranked
    }
}

impl Model {
    /// Loads a model file to run on the calling thread; errors name the file.
    pub fn load(path: &Path) -> Result<Model, RuntimeError> {
        Model::load_with_threads(path, NonZeroUsize::MIN)
    }

    /// Loads a model file whose matrix products may use `threads` threads.
    pub fn load_with_threads(path: &Path, threads: NonZeroUsize) -> Result<Model, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|e| RuntimeError::File {
            path: path.to_path_buf(),
            why: format!("cannot read: {e}"),
        })?;
        Model::from_bytes_with_threads(&bytes, threads).map_err(|e| e.in_file(path))
    }

    /// Loads a model from its bytes (an embedded model, say), to run on the
    /// calling thread.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, RuntimeError> {
        Model::from_bytes_with_threads(bytes, NonZeroUsize::MIN)
    }

    /// Loads a model from its bytes. With more than one thread the plan gets
    /// its own rayon pool, which tract uses to split large matrix products
    /// (small ones stay on the calling thread: splitting them costs more than
    /// it saves). One thread keeps tract's default single-threaded executor.
    pub fn from_bytes_with_threads(
        bytes: &[u8],
        threads: NonZeroUsize,
    ) -> Result<Model, RuntimeError> {
        let frozen = onnx::decode(bytes)?;
        // The layer graph is informative only: a file without one still runs.
        let cost = frozen
            .layer_graph()
            .and_then(|graph| models::cost(&graph))
            .ok();
        let tract_err =
            |e: TractError| RuntimeError::Model(format!("tract cannot run this model: {e:#}"));
        let mut proto_bytes = bytes;
        let model = tract_onnx::onnx()
            .model_for_read(&mut proto_bytes)
            .map_err(tract_err)?;
        let batch = model.sym("N");
        let options = RunOptions {
            executor: executor(threads)?,
            ..Default::default()
        };
        let plan = model
            .with_input_fact(0, u8::fact(dims!(batch, 32, 32, 3)).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable_with_options(&options))
            .map_err(tract_err)?;
        Ok(Model {
            classes: frozen.contract.classes,
            initializer_values: initializer_values(&frozen.proto),
            meta: frozen.meta,
            file_bytes: bytes.len(),
            cost,
            threads,
            plan,
        })
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

    /// Multiply-accumulates per image, from the layer graph in the metadata;
    /// `None` for a file without one.
    pub fn macs(&self) -> Option<usize> {
        self.cost.map(|c| c.macs)
    }

    /// Learned parameters, from the layer graph in the metadata; `None` for a
    /// file without one (see [`Model::initializer_values`]).
    pub fn params(&self) -> Option<usize> {
        self.cost.map(|c| c.params)
    }

    /// Every value stored in the file's initializers: a parameter count for
    /// files without a layer graph, which also counts batch-norm statistics
    /// and preprocessing constants.
    pub fn initializer_values(&self) -> usize {
        self.initializer_values
    }

    /// How many threads the plan's matrix products may use.
    pub fn threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// Runs a batch of raw `32x32x3` RGB images laid end to end.
    pub fn run(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        let outputs = self
            .plan
            .run(input(pixels)?)
            .map_err(|e| RuntimeError::Model(format!("inference failed: {e}")))?;
        self.predictions(&outputs)
    }

    pub(crate) fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }

    /// Reads the plan's `logits` and `probabilities` outputs.
    fn predictions(&self, outputs: &[TValue]) -> Result<Predictions, RuntimeError> {
        let read = |t: &TValue| -> Result<Vec<f32>, RuntimeError> {
            let view = t
                .to_plain_array_view::<f32>()
                .map_err(|e| RuntimeError::Model(e.to_string()))?;
            Ok(view.iter().copied().collect())
        };
        Ok(Predictions {
            classes: self.classes,
            logits: read(&outputs[0])?,
            probabilities: read(&outputs[1])?,
        })
    }
}

/// The plan's input for a batch of raw images laid end to end.
pub(crate) fn input(pixels: &[u8]) -> Result<TVec<TValue>, RuntimeError> {
    let n = pixels.len() / IMAGE_BYTES;
    if n == 0 || n * IMAGE_BYTES != pixels.len() {
        return Err(RuntimeError::Input(format!(
            "{} bytes is not a whole number of 32x32x3 images",
            pixels.len()
        )));
    }
    let batch = tract_ndarray::Array4::from_shape_vec((n, 32, 32, 3), pixels.to_vec())
        .map_err(|e| RuntimeError::Input(e.to_string()))?;
    Ok(tvec!(Tensor::from(batch).into()))
}

/// `None` (tract's single-threaded default) for one thread, else a pool of
/// `threads`; a pool the system refuses is an error rather than tract's panic.
fn executor(threads: NonZeroUsize) -> Result<Option<Executor>, RuntimeError> {
    if threads.get() == 1 {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.get())
        .thread_name(|i| format!("runtime-{i}"))
        .build()
        .map_err(|e| RuntimeError::Model(format!("cannot start {threads} threads: {e}")))?;
    Ok(Some(Executor::MultiThread(Arc::new(pool))))
}

fn initializer_values(proto: &ModelProto) -> usize {
    let inits = proto.graph.iter().flat_map(|g| &g.initializer);
    inits
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum()
}
