//! What one ONNX file is and costs, apart from time: its accuracy on the
//! test batch through the runtime (the deployed file itself, not the
//! training framework), parameters and the zeros among them, MACs, bytes.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context;
use compress::sparse_storage::zero_kernel_values;
use models::onnx::FrozenModel;
use models::ParamRole;
use runtime::Model;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Pictures per run while evaluating.
const EVAL_BATCH: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub file: PathBuf,
    pub name: String,
    pub sha256: String,
    pub arch: String,
    pub variant: String,
    /// The compression steps applied, from the metadata.
    pub compression: Vec<String>,
    /// The commands that made the file, one per stage.
    pub command: Option<String>,
    /// Top-1 over `test_images` pictures of the test batch.
    pub accuracy: f64,
    pub test_images: usize,
    pub params: Option<usize>,
    /// Parameters less the kernel values stored as zero.
    pub nonzero_params: Option<usize>,
    /// Share of kernel values stored as zero.
    pub sparsity: Option<f64>,
    pub macs: Option<usize>,
    pub bytes: usize,
    pub gzip_bytes: usize,
}

impl Measured {
    /// Whether the weights are stored as float32: the variants on the
    /// accuracy-against-non-zero-parameters curve.
    pub fn is_float(&self) -> bool {
        !self
            .compression
            .iter()
            .any(|step| step.starts_with("int8") || step.starts_with("fp16"))
    }

    /// Whether whole filters were removed.
    pub fn is_thinned(&self) -> bool {
        self.compression
            .iter()
            .any(|step| step.starts_with("thin:"))
    }
}

/// One file read, decoded and made runnable once, for its measurement and
/// every timing round.
pub struct Loaded {
    pub file: PathBuf,
    pub bytes: Vec<u8>,
    pub frozen: FrozenModel,
    /// On the calling thread, as the peers run.
    pub model: Model,
}

impl Loaded {
    pub fn read(file: &Path) -> anyhow::Result<Loaded> {
        let bytes = std::fs::read(file).context("cannot read")?;
        Ok(Loaded {
            file: file.to_path_buf(),
            model: Model::from_bytes_with_threads(&bytes, NonZeroUsize::MIN)?,
            frozen: models::onnx::decode(&bytes)?,
            bytes,
        })
    }
}

pub fn measure(loaded: &Loaded, data: &cifar::Dataset) -> anyhow::Result<Measured> {
    let Loaded {
        file,
        bytes,
        frozen,
        model,
    } = loaded;
    let right = runtime::accuracy::correct(model, &data.images, &data.labels, EVAL_BATCH, |_| {})?;
    let kernel_values: Option<usize> = frozen.layer_graph().ok().and_then(|graph| {
        let params = graph.params().ok()?;
        Some(
            params
                .iter()
                .filter(|p| p.role == ParamRole::Weight)
                .map(|p| p.shape.iter().product::<usize>())
                .sum(),
        )
    });
    let zeros = zero_kernel_values(&frozen.proto)?;
    let meta = model.meta();
    Ok(Measured {
        file: file.clone(),
        name: crate::stem(file),
        sha256: format!("{:x}", Sha256::digest(bytes)),
        arch: meta.arch.clone(),
        variant: meta.variant.clone(),
        compression: meta.compression.clone(),
        command: meta.command.clone(),
        accuracy: right as f64 / data.len().max(1) as f64,
        test_images: data.len(),
        params: model.params(),
        nonzero_params: model.params().map(|p| p.saturating_sub(zeros)),
        sparsity: kernel_values.map(|k| zeros as f64 / k.max(1) as f64),
        macs: model.macs(),
        bytes: bytes.len(),
        gzip_bytes: runtime::inspect::gzip_len(bytes),
    })
}
