//! Errors of the model layer. Each renders as one line that names what is
//! wrong, so command lines can print it as-is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown architecture '{name}' (known: {known})")]
    UnknownArch { name: String, known: String },
    #[error("invalid layer graph: {}", printable(.0))]
    Graph(String),
    #[error("weights: {}", printable(.0))]
    Weights(String),
    #[error("{}: {why}", path.display())]
    File { path: PathBuf, why: String },
    #[error("not a squeezebox model: {}", printable(.0))]
    Contract(String),
    /// Another tool's file that is not an image classifier the runtime runs.
    #[error("not an image classifier squeezebox runs: {}", printable(.0))]
    Classifier(String),
    /// A stored tensor that is inconsistent, or asks for too much.
    #[error("tensor '{}': {}", printable(name), printable(why))]
    Tensor { name: String, why: String },
    /// A node whose attributes are out of range.
    #[error("node '{}': {}", printable(name), printable(why))]
    Node { name: String, why: String },
}

/// `text` with control characters escaped: names and values come from the
/// file, and a newline in a tensor's name must not break the one line.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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
