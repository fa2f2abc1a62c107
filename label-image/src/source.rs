//! Where the model's bytes come from. Only a file for now; an embedded
//! default model would be one more constructor, since everything downstream
//! takes a `ModelSource`.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{write::GzEncoder, Compression};
use runtime::RuntimeError;

/// A model's bytes and where they came from.
pub struct ModelSource {
    /// The file, or a name for bytes that never were one.
    pub origin: PathBuf,
    pub bytes: Cow<'static, [u8]>,
}

impl ModelSource {
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

    /// Size after gzip at the default level: what a download or a firmware
    /// image would carry.
    pub fn gzip_len(&self) -> std::io::Result<usize> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&self.bytes)?;
        Ok(gz.finish()?.len())
    }
}
