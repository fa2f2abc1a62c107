//! Where the model's bytes come from: a file, or the default model compiled
//! into the binary so that `label-image cat.png` works with nothing else
//! installed. Everything downstream takes a `ModelSource`.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use models::onnx;
use runtime::foreign::Normalise;
use runtime::{Model, RuntimeError};

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

    /// The model the bytes hold, spread over `threads`: a squeezebox file,
    /// or, given the `mean` and `std` of its pictures, another tool's
    /// classifier. A squeezebox file normalises its pictures in its graph,
    /// so these are refused for one rather than applied twice.
    pub fn model(
        &self,
        normalise: Option<(&[f32], &[f32])>,
        threads: NonZeroUsize,
    ) -> Result<Model, RuntimeError> {
        let fail = |why: String| RuntimeError::File {
            path: self.origin.clone(),
            why,
        };
        let Some((mean, std)) = normalise else {
            return Model::from_bytes_with_threads(&self.bytes, threads).map_err(|e| {
                match onnx::decode_foreign(&self.bytes) {
                    Ok(_) => fail(format!(
                        "{e}; to run another tool's classifier, give --mean and --std"
                    )),
                    Err(_) => e.in_file(&self.origin),
                }
            });
        };
        if onnx::decode(&self.bytes).is_ok() {
            return Err(fail(
                "a squeezebox model normalises its pictures in its graph; drop --mean and --std"
                    .into(),
            ));
        }
        let normalise = Normalise::new(mean, std).map_err(|e| e.in_file(&self.origin))?;
        Model::foreign_from_bytes(&self.bytes, normalise, threads)
            .map_err(|e| e.in_file(&self.origin))
    }

    /// Size after gzip: what a download or a firmware image would carry.
    pub fn gzip_len(&self) -> usize {
        runtime::inspect::gzip_len(&self.bytes)
    }
}
