//! A loaded model: its metadata, its cost, its size on disk, and tract plans
//! that take `uint8 [N,H,W,3]` pixels at the size the file declares. Other
//! tools' classifiers ([`crate::foreign`]) take the same pixels, which the
//! runtime normalises for them.
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

use models::onnx::{self, proto::ModelProto, Contract, Metadata};
use tract_onnx::prelude::*;

use crate::foreign::{softmax, Normalise};
use crate::{foreign, fusion, kernels, ImageSize, RuntimeError};

/// Bytes of one raw image of squeezebox's own 32x32 models; other sizes
/// are [`Model::image_bytes`].
pub const IMAGE_BYTES: usize = ImageSize::CIFAR.bytes();

/// A frozen model ready to run.
pub struct Model {
    meta: Metadata,
    classes: usize,
    size: ImageSize,
    interface: Interface,
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

/// How a model's plan takes the pixels and gives its outputs.
enum Interface {
    /// squeezebox's contract: the raw pixels; `logits` and `probabilities`.
    Squeezebox,
    /// Another tool's classifier: normalised float planes; its logits and,
    /// where its graph ends in Softmax, its probabilities.
    Foreign {
        normalise: Normalise,
        /// Whether the graph takes one image at a time (a fixed batch of 1).
        single: bool,
    },
}

/// The outputs for a batch, row-major `[N, classes]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub classes: usize,
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
}

impl Predictions {
    /// Room for `images` rows of `classes`.
    fn empty(classes: usize, images: usize) -> Predictions {
        Predictions {
            classes,
            logits: Vec::with_capacity(images * classes),
            probabilities: Vec::with_capacity(images * classes),
        }
    }

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

    /// Appends `more`'s images.
    fn extend(&mut self, more: Predictions) {
        self.logits.extend(more.logits);
        self.probabilities.extend(more.probabilities);
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
        let source = fusion::parse(bytes, ImageSize::from(&frozen.contract)).map_err(tract_err)?;
        Model::new(
            frozen.meta,
            &frozen.contract,
            Interface::Squeezebox,
            (bytes, &frozen.proto),
            cost,
            source,
            threads,
        )
    }

    /// Loads another tool's image classifier (see [`crate::foreign`]),
    /// whose pictures are normalised by `normalise`. Its classes are named
    /// by index, its architecture by the tool that wrote it.
    pub fn foreign_from_bytes(
        bytes: &[u8],
        normalise: Normalise,
        threads: NonZeroUsize,
    ) -> Result<Model, RuntimeError> {
        let model = onnx::decode_foreign(bytes)?;
        let classes = model.contract.classes;
        let producer = [&model.proto.producer_name, &model.proto.producer_version];
        let producer: Vec<&str> = producer.iter().filter_map(|p| p.as_deref()).collect();
        let producer = match producer.join(" ").trim() {
            "" => "ONNX".to_string(),
            named => named.to_string(),
        };
        let meta = Metadata {
            arch: format!("{producer} export"),
            labels: (0..classes).map(|i| i.to_string()).collect(),
            variant: "foreign".into(),
            ..Metadata::default()
        };
        let source = foreign::parse(bytes, &model).map_err(tract_err)?;
        let interface = Interface::Foreign {
            normalise,
            single: model.single,
        };
        let file = (bytes, &model.proto);
        Model::new(
            meta,
            &model.contract,
            interface,
            file,
            None,
            source,
            threads,
        )
    }

    /// A model of `source`, the file `bytes` holding `proto`, with its
    /// batch-1 plan built.
    fn new(
        meta: Metadata,
        contract: &Contract,
        interface: Interface,
        (bytes, proto): (&[u8], &ModelProto),
        cost: Option<models::Cost>,
        source: InferenceModel,
        threads: NonZeroUsize,
    ) -> Result<Model, RuntimeError> {
        let size = ImageSize::from(contract);
        let batch1 = optimise(&source, interface.fact(size, 1.into()))?;
        Ok(Model {
            meta,
            classes: contract.classes,
            size,
            interface,
            file_bytes: bytes.len(),
            initializer_values: initializer_values(proto),
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

    /// The size of the pictures the model takes.
    pub fn image_size(&self) -> ImageSize {
        self.size
    }

    pub fn height(&self) -> usize {
        self.size.height
    }

    pub fn width(&self) -> usize {
        self.size.width
    }

    /// Bytes of one raw picture: `height x width x 3`.
    pub fn image_bytes(&self) -> usize {
        self.size.bytes()
    }

    /// How the pictures are normalised for another tool's classifier, run
    /// without importing it; `None` for a squeezebox file, whose graph
    /// does it.
    pub fn normalise(&self) -> Option<&Normalise> {
        match &self.interface {
            Interface::Squeezebox => None,
            Interface::Foreign { normalise, .. } => Some(normalise),
        }
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

    /// Runs a batch of raw RGB pictures of [`Model::image_size`] laid end
    /// to end, in equal shares (the last may be smaller) on up to
    /// [`Model::threads`] threads.
    pub fn run(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        let images = self.size.images(pixels)?;
        let share = images.div_ceil(self.threads.get().min(images));
        if share == images {
            return self.run_here(pixels);
        }
        thread::scope(|scope| {
            let workers = pixels
                .chunks(share * self.image_bytes())
                .enumerate()
                .map(|(i, part)| {
                    thread::Builder::new()
                        .name(format!("runtime-{i}"))
                        .spawn_scoped(scope, move || self.run_here(part))
                        .map_err(|e| RuntimeError::Model(format!("cannot start a thread: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut all = Predictions::empty(self.classes, images);
            for worker in workers {
                all.extend(
                    worker
                        .join()
                        .map_err(|_| RuntimeError::Model("a runtime thread panicked".into()))??,
                );
            }
            Ok(all)
        })
    }

    /// Runs a batch on the calling thread: image by image where the graph
    /// takes one at a time.
    fn run_here(&self, pixels: &[u8]) -> Result<Predictions, RuntimeError> {
        let images = self.size.images(pixels)?;
        if !matches!(self.interface, Interface::Foreign { single: true, .. }) {
            return self.run_batch(pixels, images);
        }
        let mut all = Predictions::empty(self.classes, images);
        for image in pixels.chunks(self.image_bytes()) {
            all.extend(self.run_batch(image, 1)?);
        }
        Ok(all)
    }

    /// Runs `images` pictures through the plan for their batch size.
    fn run_batch(&self, pixels: &[u8], images: usize) -> Result<Predictions, RuntimeError> {
        let outputs = self
            .plan(images)?
            .run(self.input(pixels)?)
            .map_err(|e| RuntimeError::Model(format!("inference failed: {e}")))?;
        self.predictions(&outputs, images)
    }

    /// The plan's input for raw pictures laid end to end.
    pub(crate) fn input(&self, pixels: &[u8]) -> Result<TVec<TValue>, RuntimeError> {
        let tensor = match &self.interface {
            Interface::Squeezebox => self.size.nhwc(pixels)?,
            Interface::Foreign { normalise, .. } => normalise.nchw(self.size, pixels)?,
        };
        Ok(tvec!(tensor.into()))
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
        let plan = optimise(&self.source, self.interface.fact(self.size, batch.into()))?;
        plans.insert(batch, plan.clone());
        Ok(plan)
    }

    /// Reads the plan's logits and its probabilities, or computes these
    /// from the logits where the graph gives none; either must hold
    /// `images` rows of the model's classes.
    fn predictions(&self, outputs: &[TValue], images: usize) -> Result<Predictions, RuntimeError> {
        let read = |t: &TValue| -> Result<Vec<f32>, RuntimeError> {
            let view = t
                .to_plain_array_view::<f32>()
                .map_err(|e| RuntimeError::Model(e.to_string()))?;
            if view.len() != images * self.classes {
                return Err(RuntimeError::Model(format!(
                    "the model gave {:?} values for {images} images of {} classes",
                    view.shape(),
                    self.classes
                )));
            }
            Ok(view.iter().copied().collect())
        };
        let logits = read(&outputs[0])?;
        let probabilities = match outputs.get(1) {
            Some(p) => read(p)?,
            None => softmax(&logits, self.classes),
        };
        Ok(Predictions {
            classes: self.classes,
            logits,
            probabilities,
        })
    }
}

impl Interface {
    /// The plan's input fact for batches of `batch` pictures of `size`.
    fn fact(&self, size: ImageSize, batch: TDim) -> TypedFact {
        match self {
            Interface::Squeezebox => size.nhwc_fact(batch),
            Interface::Foreign { .. } => {
                let (h, w) = (size.height.into(), size.width.into());
                f32::fact([batch, ImageSize::CHANNELS.into(), h, w])
            }
        }
    }
}

fn tract_err(e: TractError) -> RuntimeError {
    RuntimeError::Model(format!("tract cannot run this model: {e:#}"))
}

/// A runnable plan of `source` for the `input` fact, one batch size.
fn optimise(
    source: &InferenceModel,
    input: TypedFact,
) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
    kernels::runnable(source.clone(), input).map_err(tract_err)
}

fn initializer_values(proto: &ModelProto) -> usize {
    let inits = proto.graph.iter().flat_map(|g| &g.initializer);
    inits
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum()
}
