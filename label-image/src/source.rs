//! Where the model's bytes come from: a file, or the default model compiled
//! into the binary so that `label-image cat.png` works with nothing else
//! installed. Everything downstream takes a `ModelSource`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use runtime::RuntimeError;

/// A model's bytes and where they came from.
pub struct ModelSource {
    /// The file, or a name for bytes that never were one.
    pub origin: PathBuf,
    pub bytes: Cow<'static, [u8]>,
}

/// The shipped squeeze1 (models/squeeze1.onnx, retrained by the command in
/// its metadata), about 0.6 MB of the binary.
const DEFAULT_MODEL: &[u8] = include_bytes!("../../models/squeeze1.onnx");

impl ModelSource {
    /// `--model FILE` when given, else the embedded default.
    pub fn new(path: Option<&Path>) -> Result<ModelSource, RuntimeError> {
        match path {
            Some(path) => ModelSource::file(path),
            None => Ok(ModelSource::embedded()),
        }
    }

    pub fn embedded() -> ModelSource {
        ModelSource {
            origin: PathBuf::from("(embedded squeeze1.onnx)"),
            bytes: Cow::Borrowed(DEFAULT_MODEL),
        }
    }

    pub fn file(path: &Path) -> Result<ModelSource, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|e| RuntimeError::File {
            path: path.to_path_buf(),
            why: format!("cannot read: {e}"),
        })?;
        Ok(ModelSource {
            origin: path.to_path_buf(),
            bytes: Cow::Owned(bytes),
        })
    }

    /// Size after gzip: what a download or a firmware image would carry.
    pub fn gzip_len(&self) -> usize {
        runtime::inspect::gzip_len(&self.bytes)
    }
}
