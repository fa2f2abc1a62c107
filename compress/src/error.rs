//! Errors of compression steps: one line each.

#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error(transparent)]
    Model(#[from] models::ModelError),
    #[error("{0}")]
    Refused(String),
    /// An option that cannot work, named.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Train(#[from] trainer::TrainError),
    #[error(transparent)]
    Cifar(#[from] cifar::CifarError),
    /// A picture or folder of pictures that cannot be read.
    #[error(transparent)]
    Pictures(#[from] runtime::RuntimeError),
}
