//! Errors of compression steps: one line each.

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error(transparent)]
    Model(#[from] models::ModelError),
    #[error("{0}")]
    Refused(String),
}
