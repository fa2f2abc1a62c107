//! A loaded model: its metadata, its cost, its size on disk, and tract plans
//! that take `uint8 [N,32,32,3]` pixels.
//!
//! Each plan is optimised for one batch size: a plan whose batch is a number
//! ran squeeze1 at batch 1 in little more than half the time of one plan with
//! a symbolic batch. The batch-1 plan is built at load, others on first use.
//!
//! Threads split a batch, not an image: each thread runs a share of the
//! images through the single-threaded plan for that share. tract's own
//! threads split matrix products instead, and made squeeze1 1.7x slower at
//! batch 1 on two cores (its products are too small to split), while its
//! thread pool cost the aarch64 binary 2.8 MB.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;

use models::onnx::{self, proto::ModelProto, Metadata};
use tract_onnx::prelude::*;

use crate::{fusion, kernels, RuntimeError};

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
    /// The parsed file, from which a plan for each batch size is built.
    source: InferenceModel,
    batch1: Arc<TypedRunnableModel>,
    /// Plans for the other batch sizes used so far.
    plans: Mutex<HashMap<usize, Arc<TypedRunnableModel>>>,
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

    /// Loads a model file whose batches are spread over `threads` threads.
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

    /// Loads a model from its bytes; [`Model::run`] spreads a batch's images
    /// over up to `threads` threads.
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
        let source = fusion::parse(bytes).map_err(tract_err)?;
        let batch1 = optimise(&source, 1)?;
        Ok(Model {
            classes: frozen.contract.classes,
            initializer_values: initializer_values(&frozen.proto),
            meta: frozen.meta,
            file_bytes: bytes.len(),
            cost,
            threads,
            source,
            batch1,
            plans: Mutex::default(),
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

    /// How many threads a batch may be spread over.
    pub fn threads(&self) -> NonZeroUsize {
        self.threads
    }

    /// Runs a batch of raw `32x32x3` RGB images laid end to end, in equal
    /// shares (the last may be smaller) on up to [`Model::threads`] threads.
    pub fn run(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        let images = images(pixels)?;
        let share = images.div_ceil(self.threads.get().min(images));
        if share == images {
            return self.run_here(pixels);
        }
        thread::scope(|scope| {
            let workers = pixels
                .chunks(share * IMAGE_BYTES)
                .enumerate()
                .map(|(i, part)| {
                    thread::Builder::new()
                        .name(format!("runtime-{i}"))
                        .spawn_scoped(scope, move || self.run_here(part))
                        .map_err(|e| RuntimeError::Model(format!("cannot start a thread: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut all = Predictions {
                classes: self.classes,
                logits: Vec::with_capacity(images * self.classes),
                probabilities: Vec::with_capacity(images * self.classes),
            };
            for worker in workers {
                let part = worker
                    .join()
                    .map_err(|_| RuntimeError::Model("a runtime thread panicked".into()))??;
                all.logits.extend(part.logits);
                all.probabilities.extend(part.probabilities);
            }
            Ok(all)
        })
    }

    /// Runs a batch on the calling thread.
    fn run_here(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        let input = input(pixels)?;
        let outputs = self
            .plan(pixels.len() / IMAGE_BYTES)?
            .run(input)
            .map_err(|e| RuntimeError::Model(format!("inference failed: {e}")))?;
        self.predictions(&outputs)
    }

    /// The plan for single images, the one built at load.
    pub(crate) fn batch1_plan(&self) -> &TypedRunnableModel {
        &self.batch1
    }

    /// The plan for batches of `batch` images, built on first use.
    pub(crate) fn plan(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
        match batch {
            0 => {
                return Err(RuntimeError::Input(
                    "a batch needs at least one image".into(),
                ))
            }
            1 => return Ok(self.batch1.clone()),
            _ => {}
        }
        // A poisoned lock only means another thread failed to build a plan.
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = plans.get(&batch) {
            return Ok(plan.clone());
        }
        let plan = optimise(&self.source, batch)?;
        plans.insert(batch, plan.clone());
        Ok(plan)
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

/// How many raw images `pixels` holds: at least one, and whole.
fn images(pixels: &[u8]) -> Result<usize, RuntimeError> {
    let n = pixels.len() / IMAGE_BYTES;
    if n == 0 || n * IMAGE_BYTES != pixels.len() {
        return Err(RuntimeError::Input(format!(
            "{} bytes is not a whole number of 32x32x3 images",
            pixels.len()
        )));
    }
    Ok(n)
}

/// The plan's input for a batch of raw images laid end to end.
pub(crate) fn input(pixels: &[u8]) -> Result<TVec<TValue>, RuntimeError> {
    let n = images(pixels)?;
    let batch = tract_ndarray::Array4::from_shape_vec((n, 32, 32, 3), pixels.to_vec())
        .map_err(|e| RuntimeError::Input(e.to_string()))?;
    Ok(tvec!(Tensor::from(batch).into()))
}

fn tract_err(e: TractError) -> RuntimeError {
    RuntimeError::Model(format!("tract cannot run this model: {e:#}"))
}

/// A runnable plan of `source` for batches of exactly `batch` images.
fn optimise(
    source: &InferenceModel,
    batch: usize,
) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
    kernels::runnable(source.clone(), batch.into()).map_err(tract_err)
}

fn initializer_values(proto: &ModelProto) -> usize {
    let inits = proto.graph.iter().flat_map(|g| &g.initializer);
    inits
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum()
}
