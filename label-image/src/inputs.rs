//! The pictures to label: files as given, directories as their image files
//! in name order.

use std::path::{Path, PathBuf};

use runtime::{preprocess, ImageSize, RuntimeError};

/// The pictures named by `args`. A directory's other files are skipped with
/// a note on stderr; an explicitly named file must be a picture, which
/// [`load`] checks.
pub fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>, RuntimeError> {
    let mut images = Vec::new();
    for arg in args {
        if arg.is_dir() {
            images.extend(images_in(arg)?);
        } else {
            images.push(arg.clone());
        }
    }
    Ok(images)
}

/// The pictures as one batch of input to a model of `size`, in order.
pub fn load(images: &[PathBuf], size: ImageSize) -> Result<Vec<u8>, RuntimeError> {
    let mut pixels = Vec::with_capacity(images.len() * size.bytes());
    for path in images {
        pixels.extend(preprocess::load_image_sized(path, size)?);
    }
    Ok(pixels)
}

fn images_in(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let fail = |why: String| RuntimeError::File {
        path: dir.to_path_buf(),
        why,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot list: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        files.push(entry.map_err(|e| fail(format!("cannot list: {e}")))?.path());
    }
    files.sort();
    let (images, others): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| preprocess::is_image(p));
    if images.is_empty() {
        return Err(fail(format!(
            "no PNG, JPEG or BMP images among its {} entries",
            others.len()
        )));
    }
    for other in others {
        eprintln!("note: skipping {}: not an image", other.display());
    }
    Ok(images)
}
