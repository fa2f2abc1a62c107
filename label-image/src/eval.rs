//! Accuracy of the deployed file itself: the CIFAR-10 test batch through
//! the runtime, exactly as pictures would go.

use std::path::Path;

use anyhow::bail;
use cifar::Split;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::{ImageSize, Model};
use serde::Serialize;

/// Images per run: large enough to amortise each run, small enough to show
/// progress.
const BATCH: usize = 100;

#[derive(Debug, Serialize)]
pub struct Accuracy {
    pub data: String,
    pub images: usize,
    pub correct: usize,
    pub top1: f64,
}

/// Top-1 accuracy over the first `limit` test images (all without one);
/// progress goes to stderr when it is a terminal.
pub fn evaluate(model: &Model, dir: &Path, limit: Option<usize>) -> anyhow::Result<Accuracy> {
    if model.image_size() != ImageSize::CIFAR {
        bail!(
            "{}: CIFAR-10's pictures are {}, the model takes {}",
            dir.display(),
            ImageSize::CIFAR,
            model.image_size()
        );
    }
    let data = cifar::open(dir)?.load(Split::Test, limit)?;
    if data.classes.len() != model.classes() {
        bail!(
            "{}: {} classes in the data set, {} in the model",
            dir.display(),
            data.classes.len(),
            model.classes()
        );
    }
    if data.classes != model.labels() {
        eprintln!(
            "note: the model's labels differ from the data set's classes; comparing by class index"
        );
    }
    let bar = ProgressBar::new(data.len() as u64).with_style(ProgressStyle::with_template(
        "eval {bar:40} {pos}/{len} {eta}",
    )?);
    let correct = runtime::accuracy::correct(model, &data.images, &data.labels, BATCH, |n| {
        bar.inc(n as u64)
    })?;
    bar.finish_and_clear();
    Ok(Accuracy {
        data: dir.display().to_string(),
        images: data.len(),
        correct,
        top1: correct as f64 / data.len().max(1) as f64,
    })
}
