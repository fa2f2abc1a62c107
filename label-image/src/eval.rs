//! Accuracy of the deployed file itself: the CIFAR-10 test batch, or a
//! folder of labelled pictures, through the runtime, exactly as pictures
//! would go.

use std::path::Path;

use anyhow::bail;
use cifar::Split;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::image_folder::ImageFolder;
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

/// Top-1 accuracy over the first `limit` pictures (all without one) of
/// CIFAR-10's test batch, or of a folder of labelled pictures (one
/// sub-folder per class, named as the model's labels or by class number);
/// progress goes to stderr when it is a terminal.
pub fn evaluate(model: &Model, dir: &Path, limit: Option<usize>) -> anyhow::Result<Accuracy> {
    let (images, labels) = match cifar::open(dir) {
        Ok(source) => cifar_test(model, dir, source, limit)?,
        Err(not_cifar) if dir.is_dir() => match ImageFolder::open(dir) {
            Ok(folder) => folder.load_labelled(dir, model.image_size(), model.labels(), limit)?,
            Err(_) => bail!("{not_cifar}, nor pictures in class sub-folders"),
        },
        Err(e) => return Err(e.into()),
    };
    let bar = ProgressBar::new(labels.len() as u64).with_style(ProgressStyle::with_template(
        "eval {bar:40} {pos}/{len} {eta}",
    )?);
    let correct =
        runtime::accuracy::correct(model, &images, &labels, BATCH, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    Ok(Accuracy {
        data: dir.display().to_string(),
        images: labels.len(),
        correct,
        top1: correct as f64 / labels.len().max(1) as f64,
    })
}

/// CIFAR-10's test pictures and labels, for a 32x32 model of its classes.
fn cifar_test(
    model: &Model,
    dir: &Path,
    source: cifar::Source,
    limit: Option<usize>,
) -> anyhow::Result<(Vec<u8>, Vec<usize>)> {
    if model.image_size() != ImageSize::CIFAR {
        bail!(
            "{}: CIFAR-10's pictures are {}, the model takes {}; give --eval a folder of labelled pictures",
            dir.display(),
            ImageSize::CIFAR,
            model.image_size()
        );
    }
    let data = source.load(Split::Test, limit)?;
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
    let labels = data.labels.iter().map(|&l| l as usize).collect();
    Ok((data.images, labels))
}
