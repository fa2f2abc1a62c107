//! Errors of training. Each renders as one line that names what is wrong, so
//! the command line prints it as-is.

use std::path::PathBuf;

use cifar::CifarError;
use models::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting that cannot work (zero epochs, a negative learning rate...).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] CifarError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An output that cannot be written, found before any training.
    #[error("{}: {why}", path.display())]
    Output { path: PathBuf, why: String },
    #[error("checkpoint {}: {why}", path.display())]
    Checkpoint { path: PathBuf, why: String },
    #[error("libtorch: {}", crate::first_line(&.0.to_string()))]
    Torch(#[from] tch::TchError),
    #[error("training diverged at step {step}: the loss is {loss}; try a lower learning rate")]
    Diverged { step: u64, loss: f64 },
}

impl TrainError {
    /// The process exit code: 2 for input the user can fix before running,
    /// 1 for a failure while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            TrainError::Torch(_) | TrainError::Diverged { .. } => 1,
            _ => 2,
        }
    }
}
