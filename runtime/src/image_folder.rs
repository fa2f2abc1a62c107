//! Pictures in folders, as torchvision's ImageFolder lays them out
//! (`DIR/CLASS/picture.jpg`, the class named by its folder), or loose in
//! the folder itself (no class): an imported model's own kind of data, for
//! calibration (`compress quantize --calib`), accuracy (`label-image
//! --eval`), and fine-tuning and measuring (`compress prune` and
//! `sensitivity --data`), split as [`Splits`] says.

use std::path::{Path, PathBuf};

use crate::preprocess::{is_image, load_image_sized};
use crate::{ImageSize, RuntimeError};

/// The pictures under a folder, in the order they are read: the classes
/// taken in turn, so that the first few already show each class.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The class folders' names, sorted.
    pub classes: Vec<String>,
    /// Each picture with the index of its class in `classes`, if it has one.
    pub pictures: Vec<(PathBuf, Option<usize>)>,
}

impl ImageFolder {
    /// Lists `dir`: its sub-folders are classes, pictures directly in it
    /// have none. At least one picture must be found.
    pub fn open(dir: &Path) -> Result<ImageFolder, RuntimeError> {
        let fail = |why: String| RuntimeError::File {
            path: dir.to_path_buf(),
            why,
        };
        let listing = |d: &Path| -> Result<Vec<PathBuf>, RuntimeError> {
            let entries = std::fs::read_dir(d).and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<Vec<_>, _>>()
            });
            let mut paths =
                entries.map_err(|e| fail(format!("cannot list {}: {e}", d.display())))?;
            paths.sort();
            Ok(paths)
        };
        let (mut classes, mut members, mut loose) = (Vec::new(), Vec::new(), Vec::new());
        for path in listing(dir)? {
            if path.is_dir() {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                members.push(
                    listing(&path)?
                        .into_iter()
                        .filter(|p| is_image(p))
                        .collect::<Vec<_>>(),
                );
                classes.push(name);
            } else if is_image(&path) {
                loose.push(path);
            }
        }
        let longest = members.iter().map(Vec::len).max().unwrap_or(0);
        let mut pictures: Vec<(PathBuf, Option<usize>)> = (0..longest)
            .flat_map(|i| {
                members
                    .iter()
                    .enumerate()
                    .filter_map(move |(class, files)| Some((files.get(i)?.clone(), Some(class))))
            })
            .collect();
        pictures.extend(loose.into_iter().map(|p| (p, None)));
        if pictures.is_empty() {
            return Err(fail(
                "no pictures (PNG, JPEG or BMP), in the folder or its class sub-folders".into(),
            ));
        }
        Ok(ImageFolder { classes, pictures })
    }

    /// The pictures of this folder that are, or are not (`held == false`),
    /// every `every`-th of their class by file name: a deterministic
    /// hold-out of each class.
    pub fn every_nth(&self, every: usize, held: bool) -> ImageFolder {
        let mut seen = vec![0usize; self.classes.len()];
        let pictures = self
            .pictures
            .iter()
            .filter(|(_, class)| {
                let Some(c) = *class else { return !held };
                seen[c] += 1;
                seen[c].is_multiple_of(every) == held
            })
            .cloned()
            .collect();
        ImageFolder {
            classes: self.classes.clone(),
            pictures,
        }
    }

    /// The model's class of each class folder of `dir` (this folder): the
    /// label of that name, or the class of that number.
    pub fn class_indices(&self, dir: &Path, labels: &[String]) -> Result<Vec<usize>, RuntimeError> {
        self.classes
            .iter()
            .map(|name| {
                let by_name = labels.iter().position(|l| l == name);
                let by_number = || name.parse::<usize>().ok().filter(|&i| i < labels.len());
                by_name
                    .or_else(by_number)
                    .ok_or_else(|| RuntimeError::File {
                        path: dir.to_path_buf(),
                        why: format!(
                        "the folder '{name}' is none of the model's {} labels, nor a class number",
                        labels.len()
                    ),
                    })
            })
            .collect()
    }

    /// The first `limit` pictures (all without one) of `dir` (this folder)
    /// at `size`, with the model's class of each, its folder matched to
    /// `labels` as [`ImageFolder::class_indices`] does. A loose picture has
    /// no label, and is refused.
    pub fn load_labelled(
        &self,
        dir: &Path,
        size: ImageSize,
        labels: &[String],
        limit: Option<usize>,
    ) -> Result<(Vec<u8>, Vec<usize>), RuntimeError> {
        let classes = self.class_indices(dir, labels)?;
        if let Some((path, _)) = self.pictures.iter().find(|(_, class)| class.is_none()) {
            return Err(RuntimeError::File {
                path: path.clone(),
                why: "not in a class folder, so its label is unknown".into(),
            });
        }
        let (pixels, found) = self.load(size, limit)?;
        let labels = found.iter().flatten().map(|&c| classes[c]).collect();
        Ok((pixels, labels))
    }

    /// The first `limit` pictures (all without one), resized to `size` and
    /// laid end to end, with their classes.
    pub fn load(
        &self,
        size: ImageSize,
        limit: Option<usize>,
    ) -> Result<(Vec<u8>, Vec<Option<usize>>), RuntimeError> {
        let chosen = &self.pictures[..limit.unwrap_or(usize::MAX).min(self.pictures.len())];
        let mut pixels = Vec::with_capacity(chosen.len() * size.bytes());
        for (path, _) in chosen {
            pixels.extend(load_image_sized(path, size)?);
        }
        Ok((pixels, chosen.iter().map(|(_, class)| *class).collect()))
    }
}

/// A folder of pictures as training, validation and test sets.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Where each set's pictures are, to name in messages.
    pub dirs: [PathBuf; 3],
    pub train: ImageFolder,
    pub val: ImageFolder,
    pub test: ImageFolder,
    /// How the sets were found, for the user.
    pub how: String,
}

/// The share of each class held out when a folder has no `val/`: every
/// 10th picture by file name.
pub const HOLD_OUT_EVERY: usize = 10;

impl Splits {
    /// `dir/train` and `dir/val` (and `dir/test`, else the validation
    /// pictures again), ImageNet's layout; or, without them, `dir`'s class
    /// folders with every [`HOLD_OUT_EVERY`]-th picture of each class held
    /// out for validation and test (none if no class has that many: a
    /// folder still serves to calibrate on).
    pub fn open(dir: &Path) -> Result<Splits, RuntimeError> {
        let (train, val, test) = (dir.join("train"), dir.join("val"), dir.join("test"));
        if train.is_dir() && val.is_dir() {
            let has_test = test.is_dir();
            let test = if has_test { test } else { val.clone() };
            let how = if has_test {
                "train/, val/ and test/"
            } else {
                "train/ and val/ (no test/: the validation pictures serve as test)"
            };
            return Ok(Splits {
                train: ImageFolder::open(&train)?,
                val: ImageFolder::open(&val)?,
                test: ImageFolder::open(&test)?,
                dirs: [train, val, test],
                how: how.into(),
            });
        }
        let all = ImageFolder::open(dir)?;
        let held = all.every_nth(HOLD_OUT_EVERY, true);
        Ok(Splits {
            train: all.every_nth(HOLD_OUT_EVERY, false),
            how: format!(
                "no train/ and val/ folders: every {HOLD_OUT_EVERY}th picture of each class by name \
                 ({} of {}) held out for validation and test",
                held.pictures.len(),
                all.pictures.len()
            ),
            val: held.clone(),
            test: held,
            dirs: [dir, dir, dir].map(Path::to_path_buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of `per_class` tiny PNGs in each of `classes`.
    fn folder(root: &Path, classes: &[&str], per_class: usize) {
        for class in classes {
            std::fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..per_class {
                image::RgbImage::new(2, 2)
                    .save(root.join(class).join(format!("{i:02}.png")))
                    .unwrap();
            }
        }
    }

    #[test]
    fn a_pool_holds_out_every_tenth_picture_of_each_class() {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path(), &["cat", "dog"], 25);
        let splits = Splits::open(dir.path()).unwrap();
        assert_eq!(splits.train.pictures.len(), 46);
        assert_eq!(splits.val.pictures.len(), 4);
        assert_eq!(splits.test.pictures.len(), 4);
        let names: Vec<_> = splits.val.pictures.iter().map(|(p, _)| p.clone()).collect();
        assert!(names.contains(&dir.path().join("dog/19.png")), "{names:?}");
        assert!(splits.how.contains("(4 of 50) held out"), "{}", splits.how);
        let labels = ["dog".to_string(), "bird".into(), "cat".into()];
        assert_eq!(
            splits.train.class_indices(dir.path(), &labels).unwrap(),
            [2, 0]
        );
        let err = splits
            .train
            .class_indices(dir.path(), &labels[..2])
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("'cat' is none of the model's 2 labels"));
        let few = tempfile::tempdir().unwrap();
        folder(few.path(), &["cat"], 9);
        let splits = Splits::open(few.path()).unwrap();
        assert_eq!(
            (splits.train.pictures.len(), splits.val.pictures.len()),
            (9, 0)
        );
    }

    #[test]
    fn train_and_val_folders_are_the_splits() {
        let dir = tempfile::tempdir().unwrap();
        folder(&dir.path().join("train"), &["0", "1"], 3);
        folder(&dir.path().join("val"), &["0", "1"], 1);
        let splits = Splits::open(dir.path()).unwrap();
        assert_eq!(splits.train.pictures.len(), 6);
        assert_eq!(splits.test.pictures.len(), 2);
        assert_eq!(splits.dirs[2], dir.path().join("val"));
        assert!(splits.how.contains("no test/"));
        let size = ImageSize {
            height: 3,
            width: 5,
        };
        let (pixels, labels) = splits
            .val
            .load_labelled(&splits.dirs[1], size, &["a".into(), "b".into()], None)
            .unwrap();
        assert_eq!((pixels.len(), labels), (2 * size.bytes(), vec![0, 1]));
    }
}
