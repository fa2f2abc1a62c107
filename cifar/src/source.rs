//! Where the data lives, and reading splits from it.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::batch::{
    check_size, decode, read_class_names, read_exact_vec, ARCHIVE_FILE, BATCHES_DIR, META_FILE,
};
use crate::split::{Segment, Split};
use crate::{archive, CifarError, Dataset};

/// A located copy of CIFAR-10 and its class names. Opening reads only the
/// class names; batch files are read, and checked, when a split is loaded.
#[derive(Debug, Clone)]
pub struct Source {
    location: Location,
    classes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Location {
    /// A `cifar-10-batches-bin` directory.
    Batches(PathBuf),
    /// A `cifar-10-binary.tar.gz` archive.
    Archive(PathBuf),
}

/// Shorthand for [`Source::open`].
pub fn open(path: impl AsRef<Path>) -> Result<Source, CifarError> {
    Source::open(path)
}

impl Source {
    /// Locates CIFAR-10 at `path`: a directory holding `cifar-10-batches-bin/`
    /// (or, failing that, `cifar-10-binary.tar.gz`), the
    /// `cifar-10-batches-bin` directory itself, or the `.tar.gz` archive.
    pub fn open(path: impl AsRef<Path>) -> Result<Source, CifarError> {
        let path = path.as_ref();
        let location = locate(path).ok_or_else(|| CifarError::NoData {
            path: path.to_path_buf(),
        })?;
        let classes = match &location {
            Location::Batches(dir) => {
                let meta = dir.join(META_FILE);
                let mut file = File::open(&meta).map_err(|e| CifarError::io(&meta, e))?;
                read_class_names(&meta, &mut file, |e| CifarError::io(&meta, e))?
            }
            Location::Archive(file) => archive::read_meta(file)?,
        };
        Ok(Source { location, classes })
    }

    /// The class names in label order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Reads the first `limit` records of `split` (all without a limit),
    /// opening only the batch files those records are in.
    pub fn load(&self, split: Split, limit: Option<usize>) -> Result<Dataset, CifarError> {
        let plan = split.plan(limit);
        let mut data = Dataset::cifar(self.classes.clone(), plan.iter().map(|s| s.count).sum());
        match &self.location {
            Location::Batches(dir) => {
                for segment in &plan {
                    let path = dir.join(segment.file);
                    decode(
                        &path,
                        segment.start,
                        &read_segment(&path, segment)?,
                        &mut data,
                    )?;
                }
            }
            Location::Archive(file) => {
                for (segment, records) in plan.iter().zip(archive::read_segments(file, &plan)?) {
                    decode(
                        &archive::member_path(file, segment.file),
                        segment.start,
                        &records,
                        &mut data,
                    )?;
                }
            }
        }
        Ok(data)
    }
}

fn locate(path: &Path) -> Option<Location> {
    if path.is_file() {
        return Some(Location::Archive(path.to_path_buf()));
    }
    if !path.is_dir() {
        return None;
    }
    let nested = path.join(BATCHES_DIR);
    if nested.is_dir() {
        return Some(Location::Batches(nested));
    }
    if path.ends_with(BATCHES_DIR) || path.join(META_FILE).is_file() {
        return Some(Location::Batches(path.to_path_buf()));
    }
    let archive = path.join(ARCHIVE_FILE);
    archive.is_file().then_some(Location::Archive(archive))
}

/// The raw records of `segment` from the batch file at `path`, after checking
/// the file's size.
fn read_segment(path: &Path, segment: &Segment) -> Result<Vec<u8>, CifarError> {
    let io = |e| CifarError::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    check_size(path, file.metadata().map_err(io)?.len())?;
    file.seek(SeekFrom::Start(segment.offset())).map_err(io)?;
    read_exact_vec(&mut file, segment.bytes()).map_err(io)
}
