//! Runtime errors: one line each, naming the file when there is one.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error("{0}")]
    Model(String),
    #[error("input: {0}")]
    Input(String),
}

impl RuntimeError {
    /// Attaches the file a model problem came from.
    pub fn in_file(self, path: &std::path::Path) -> RuntimeError {
        match self {
            RuntimeError::Model(why) => RuntimeError::File {
                path: path.to_path_buf(),
                why,
            },
            other => other,
        }
    }
}

impl From<models::ModelError> for RuntimeError {
    fn from(e: models::ModelError) -> Self {
        RuntimeError::Model(e.to_string())
    }
}
