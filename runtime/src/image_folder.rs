//! Pictures in folders, as torchvision's ImageFolder lays them out
//! (`DIR/CLASS/picture.jpg`, the class named by its folder), or loose in
//! the folder itself (no class): an imported model's own kind of data, for
//! calibration (`compress quantize --calib`) and accuracy
//! (`label-image --eval`).

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
