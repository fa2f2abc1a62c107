//! Calibration pictures for a model of any size: a folder of pictures, in
//! class sub-folders as torchvision's ImageFolder lays them out
//! (`DIR/CLASS/picture.jpg`), or loose in the folder itself.

use std::path::{Path, PathBuf};

use runtime::preprocess::{is_image, load_image_sized};
use runtime::ImageSize;

use crate::CompressError;

/// Up to `limit` pictures under `dir`, resized to `size` and laid end to
/// end: the classes taken in turn, so that a small limit still sees each.
pub fn folder(dir: &Path, limit: usize, size: ImageSize) -> Result<Vec<u8>, CompressError> {
    let fail = |why: String| CompressError::Invalid(format!("{}: {why}", dir.display()));
    let listing = |d: &Path| -> Result<Vec<PathBuf>, CompressError> {
        let mut paths = std::fs::read_dir(d)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| fail(format!("cannot list {}: {e}", d.display())))?;
        paths.sort();
        Ok(paths)
    };
    let mut classes: Vec<Vec<PathBuf>> = Vec::new();
    let mut loose = Vec::new();
    for path in listing(dir)? {
        if path.is_dir() {
            classes.push(
                listing(&path)?
                    .into_iter()
                    .filter(|p| is_image(p))
                    .collect(),
            );
        } else if is_image(&path) {
            loose.push(path);
        }
    }
    classes.push(loose);
    let longest = classes.iter().map(Vec::len).max().unwrap_or(0);
    let chosen: Vec<&PathBuf> = (0..longest)
        .flat_map(|i| classes.iter().filter_map(move |c| c.get(i)))
        .take(limit)
        .collect();
    if chosen.is_empty() {
        return Err(fail(
            "no pictures (PNG, JPEG or BMP), in the folder or its class sub-folders".into(),
        ));
    }
    let mut pixels = Vec::with_capacity(chosen.len() * size.bytes());
    for path in chosen {
        let picture =
            load_image_sized(path, size).map_err(|e| CompressError::Invalid(e.to_string()))?;
        pixels.extend(picture);
    }
    Ok(pixels)
}
