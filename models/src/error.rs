//! Errors of the model layer. Each renders as one line that names what is
//! wrong, so command lines can print it as-is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown architecture '{name}' (known: {known})")]
    UnknownArch { name: String, known: String },
    #[error("invalid layer graph: {0}")]
    Graph(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error("{}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error("not a squeezebox model: {0}")]
    Contract(String),
    /// A stored tensor that is inconsistent, or asks for too much.
    #[error("tensor '{name}': {why}")]
    Tensor { name: String, why: String },
}

impl ModelError {
    /// Attaches the file a problem came from.
    pub fn in_file(self, path: &std::path::Path) -> ModelError {
        match self {
            ModelError::File { .. } => self,
            other => ModelError::File {
                path: path.to_path_buf(),
                why: other.to_string(),
            },
        }
    }
}
