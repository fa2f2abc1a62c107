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
    /// The loss went NaN or infinite; the checkpoint of the epoch before is
    /// kept.
    #[error("training diverged in epoch {epoch} (step {step}): the loss is {loss}; try a lower --lr or a longer --warmup-epochs")]
    Diverged { epoch: usize, step: u64, loss: f64 },
    /// A whole epoch after warm-up sat at chance: the net has died. The
    /// checkpoint of the epoch before is kept.
    #[error("training collapsed in epoch {epoch}: the loss sat at chance ({loss:.5}, ln {classes}) for the whole epoch; try a lower --lr or a longer --warmup-epochs")]
    Collapsed {
        epoch: usize,
        loss: f64,
        classes: usize,
    },
}

impl TrainError {
    /// The process exit code: 2 for input the user can fix before running,
    /// 1 for a failure while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            TrainError::Torch(_) => 1,
            _ => 2,
        }
    }
}
