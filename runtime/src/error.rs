//! Runtime errors: one line each, naming the file when there is one.

use std::path::PathBuf;

use models::printable;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{}: {}", path.display(), printable(why))]
    File { path: PathBuf, why: String },
    #[error("{}", printable(.0))]
    Model(String),
    #[error("input: {}", printable(.0))]
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
