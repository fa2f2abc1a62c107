//! `cifar-10-binary.tar.gz` read in place: a gzip stream cannot seek, so each
//! read streams through the archive once and stops when it has what it needs.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::batch::{check_size, read_class_names, read_exact_vec, BATCHES_DIR, META_FILE};
use crate::split::Segment;
use crate::CifarError;

/// How errors name a file inside the archive: `ARCHIVE/cifar-10-batches-bin/NAME`.
pub(crate) fn member_path(archive: &Path, name: &str) -> PathBuf {
    archive.join(BATCHES_DIR).join(name)
}

fn corrupt(archive: &Path, source: io::Error) -> CifarError {
    CifarError::Archive {
        path: archive.to_path_buf(),
        source,
    }
}

/// Hands each file of the archive's `cifar-10-batches-bin/` to `visit` as
/// (name, size, contents) until `visit` answers false.
fn scan(
    archive: &Path,
    mut visit: impl FnMut(&str, u64, &mut dyn Read) -> Result<bool, CifarError>,
) -> Result<(), CifarError> {
    let file = File::open(archive).map_err(|e| CifarError::io(archive, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    for entry in tar.entries().map_err(|e| corrupt(archive, e))? {
        let mut entry = entry.map_err(|e| corrupt(archive, e))?;
        let path = entry.path().map_err(|e| corrupt(archive, e))?;
        let in_batches_dir = path.parent().is_some_and(|dir| dir.ends_with(BATCHES_DIR));
        let name = match path.file_name().and_then(|name| name.to_str()) {
            Some(name) if in_batches_dir && entry.header().entry_type().is_file() => {
                name.to_owned()
            }
            _ => continue,
        };
        let size = entry.size();
        if !visit(&name, size, &mut entry)? {
            break;
        }
    }
    Ok(())
}

/// The class names from the archive's `batches.meta.txt`.
pub(crate) fn read_meta(archive: &Path) -> Result<Vec<String>, CifarError> {
    let path = member_path(archive, META_FILE);
    let mut classes = None;
    scan(archive, |name, _, contents| {
        if name != META_FILE {
            return Ok(true);
        }
        classes = Some(read_class_names(&path, contents, |e| corrupt(archive, e))?);
        Ok(false)
    })?;
    classes.ok_or(CifarError::Missing { path })
}

/// The raw records of each segment of `plan`, in plan order, whatever the
/// order of the files in the archive.
pub(crate) fn read_segments(archive: &Path, plan: &[Segment]) -> Result<Vec<Vec<u8>>, CifarError> {
    let mut found: Vec<Option<Vec<u8>>> = vec![None; plan.len()];
    scan(archive, |name, size, contents| {
        if let Some(i) = plan.iter().position(|segment| segment.file == name) {
            check_size(&member_path(archive, name), size)?;
            let segment = plan[i];
            io::copy(
                &mut Read::take(&mut *contents, segment.offset()),
                &mut io::sink(),
            )
            .map_err(|e| corrupt(archive, e))?;
            found[i] =
                Some(read_exact_vec(contents, segment.bytes()).map_err(|e| corrupt(archive, e))?);
        }
        Ok(found.iter().any(Option::is_none))
    })?;
    plan.iter()
        .zip(found)
        .map(|(segment, records)| {
            records.ok_or_else(|| CifarError::Missing {
                path: member_path(archive, segment.file),
            })
        })
        .collect()
}
