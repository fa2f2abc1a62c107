//! What each epoch achieved, kept in the checkpoint and written beside the
//! model as CSV, so a resumed run's log still starts at epoch 1.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One row of the training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// From 1.
    pub epoch: usize,
    /// Mean loss over the epoch's training batches (with label smoothing).
    pub train_loss: f64,
    /// Fraction right on the augmented training batches.
    pub train_acc: f64,
    /// Plain cross-entropy on the validation split.
    pub val_loss: f64,
    pub val_acc: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

/// The CSV file for `rows`, with a header.
pub fn to_csv(rows: &[EpochLog]) -> String {
    let mut csv = String::from("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{:.5},{:.5},{:.5},{:.5},{:.6},{:.1}",
            r.epoch, r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.lr, r.seconds
        );
    }
    csv
}
