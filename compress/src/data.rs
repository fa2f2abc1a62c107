//! Where `prune`, `sensitivity` and `quantize --calib` read their pictures:
//! CIFAR-10 for a 32x32 model, or a folder of labelled pictures
//! (torchvision's ImageFolder layout) resized to the model's own size, so
//! that an imported model is tuned and measured on its own kind of data.

use std::path::{Path, PathBuf};

use cifar::{Dataset, Split};
use models::onnx::FrozenModel;
use runtime::image_folder::{ImageFolder, Splits, HOLD_OUT_EVERY};
use runtime::ImageSize;
use trainer::data::{Data, Limits};

use crate::CompressError;

/// A located data set, and the model it is read for.
pub struct DataDir {
    path: PathBuf,
    size: ImageSize,
    labels: Vec<String>,
    pictures: Pictures,
}

enum Pictures {
    Cifar(cifar::Source),
    Folder(Splits),
}

impl DataDir {
    /// Locates the data at `path` for `model`: CIFAR-10 if it is there (and
    /// the model takes 32x32 pictures), else a folder of pictures. `flag`
    /// names the option in the message that refuses CIFAR-10.
    pub fn open(path: &Path, model: &FrozenModel, flag: &str) -> Result<DataDir, CompressError> {
        let size = ImageSize::from(&model.contract);
        let pictures = match cifar::open(path) {
            Ok(source) if size == ImageSize::CIFAR => Pictures::Cifar(source),
            Ok(_) => {
                return Err(CompressError::Invalid(format!(
                    "{}: CIFAR-10's pictures are 32x32 and the model takes {}x{}; give {flag} a folder of pictures",
                    path.display(),
                    size.height,
                    size.width
                )))
            }
            Err(_) if path.is_dir() => Pictures::Folder(Splits::open(path)?),
            Err(e) => return Err(e.into()),
        };
        Ok(DataDir {
            path: path.to_path_buf(),
            size,
            labels: model.meta.labels.clone(),
            pictures,
        })
    }

    /// How a folder was split into sets, to tell the user; `None` for
    /// CIFAR-10, whose splits are fixed.
    pub fn how(&self) -> Option<String> {
        match &self.pictures {
            Pictures::Cifar(_) => None,
            Pictures::Folder(splits) => Some(format!("{}: {}", self.path.display(), splits.how)),
        }
    }

    /// Up to `limit` pictures of the training set, labelled or not, to
    /// calibrate on.
    pub fn calibration(&self, limit: usize) -> Result<Vec<u8>, CompressError> {
        Ok(match &self.pictures {
            Pictures::Cifar(source) => source.load(Split::Train, Some(limit))?.images,
            Pictures::Folder(splits) => splits.train.load(self.size, Some(limit))?.0,
        })
    }

    /// The first `limit` validation pictures (all without one).
    pub fn validation(&self, limit: Option<usize>) -> Result<Dataset, CompressError> {
        match &self.pictures {
            Pictures::Cifar(source) => Ok(source.load(Split::Validation, limit)?),
            Pictures::Folder(splits) => {
                non_empty(&splits.val, &splits.dirs[1])?;
                self.labelled(&splits.val, &splits.dirs[1], limit)
            }
        }
    }

    /// The three sets within `limits`, for fine-tuning in batches of
    /// `batch`: a folder with fewer training pictures is refused before any
    /// is read.
    pub fn data(&self, limits: &Limits, batch: usize) -> Result<Data, CompressError> {
        let splits = match &self.pictures {
            Pictures::Cifar(_) => return Ok(Data::load(&self.path, limits)?),
            Pictures::Folder(splits) => splits,
        };
        let sets = [
            (&splits.train, limits.train),
            (&splits.val, limits.val),
            (&splits.test, limits.test),
        ];
        // Every set must have pictures, and every class folder name a class,
        // before any picture is read.
        for ((folder, _), dir) in sets.iter().zip(&splits.dirs) {
            non_empty(folder, dir)?;
            folder.class_indices(dir, &self.labels)?;
        }
        let train = splits
            .train
            .pictures
            .len()
            .min(limits.train.unwrap_or(usize::MAX));
        if train < batch {
            return Err(CompressError::Invalid(format!(
                "{}: {train} training pictures, fewer than one batch of {batch} (--batch)",
                splits.dirs[0].display()
            )));
        }
        let load = |i: usize| {
            let (folder, limit) = sets[i];
            self.labelled(folder, &splits.dirs[i], limit)
        };
        Ok(Data {
            train: load(0)?,
            val: load(1)?,
            test: load(2)?,
        })
    }

    /// The first `limit` pictures of `folder` (at `dir`) at the model's
    /// size, labelled with the model's classes.
    fn labelled(
        &self,
        folder: &ImageFolder,
        dir: &Path,
        limit: Option<usize>,
    ) -> Result<Dataset, CompressError> {
        let (images, classes) = folder.load_labelled(dir, self.size, &self.labels, limit)?;
        let labels = classes
            .iter()
            .map(|&c| u8::try_from(c))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| {
                CompressError::Invalid(format!(
                    "{}: the trainer holds labels of up to 256 classes; this folder has a class past them",
                    dir.display()
                ))
            })?;
        Ok(Dataset {
            images,
            labels,
            ..Dataset::with_capacity(self.labels.clone(), self.size.height, self.size.width, 0)
        })
    }
}

/// Refuses an empty set: only a pool's held-out share can be, when no
/// class has enough pictures to hold one out.
fn non_empty(folder: &ImageFolder, dir: &Path) -> Result<(), CompressError> {
    if folder.pictures.is_empty() {
        return Err(CompressError::Invalid(format!(
            "{}: no class folder holds {HOLD_OUT_EVERY} pictures, so none can be held out \
             for validation; give it train/ and val/ folders",
            dir.display()
        )));
    }
    Ok(())
}
