//! The files of `cifar-10-batches-bin/`: their names, size checks, record
//! decoding and the class-name list.

use std::io::{self, Read};
use std::path::Path;

use crate::{CifarError, Dataset, BATCH_RECORDS, CLASSES, RECORD_BYTES, SIDE};

/// The folder that holds the batch files, in a download and in its archive.
pub(crate) const BATCHES_DIR: &str = "cifar-10-batches-bin";
/// The class names, one a line, in label order.
pub(crate) const META_FILE: &str = "batches.meta.txt";
/// The official download, read in place when a directory holds only it.
pub(crate) const ARCHIVE_FILE: &str = "cifar-10-binary.tar.gz";

/// Checks from its size alone that a batch file holds 10,000 whole records,
/// so that a damaged file is caught without reading it.
pub(crate) fn check_size(path: &Path, size: u64) -> Result<(), CifarError> {
    let record = RECORD_BYTES as u64;
    if !size.is_multiple_of(record) {
        return Err(CifarError::Truncated {
            path: path.to_path_buf(),
            size,
        });
    }
    let records = size / record;
    if records != BATCH_RECORDS as u64 {
        return Err(CifarError::RecordCount {
            path: path.to_path_buf(),
            records,
        });
    }
    Ok(())
}

/// Reads exactly `len` bytes.
pub(crate) fn read_exact_vec(reader: &mut dyn Read, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Appends whole records to `data`, turning each image from the file's
/// R, G, B planes into interleaved HWC. `first` is the index in `path` of the
/// first record, to name a bad one.
pub(crate) fn decode(
    path: &Path,
    first: usize,
    records: &[u8],
    data: &mut Dataset,
) -> Result<(), CifarError> {
    const PLANE: usize = SIDE * SIDE;
    for (i, record) in records.chunks_exact(RECORD_BYTES).enumerate() {
        let (label, planes) = (record[0], &record[1..]);
        if usize::from(label) >= CLASSES {
            return Err(CifarError::BadLabel {
                path: path.to_path_buf(),
                index: first + i,
                label,
            });
        }
        let (red, rest) = planes.split_at(PLANE);
        let (green, blue) = rest.split_at(PLANE);
        data.labels.push(label);
        data.images.extend(
            red.iter()
                .zip(green)
                .zip(blue)
                .flat_map(|((&r, &g), &b)| [r, g, b]),
        );
    }
    Ok(())
}

/// Most bytes a `batches.meta.txt` may take: ten short names need a few
/// dozen, and a larger file (or a gzip bomb in an archive) is not read in.
const META_MAX_BYTES: u64 = 64 * 1024;

/// The class names of `batches.meta.txt` at `path`, read from `contents`
/// (at most [`META_MAX_BYTES`]; `failed` names a read error); blank lines
/// (the file ends with some) are not names.
pub(crate) fn read_class_names(
    path: &Path,
    contents: &mut dyn Read,
    failed: impl FnOnce(io::Error) -> CifarError,
) -> Result<Vec<String>, CifarError> {
    let mut text = Vec::new();
    contents
        .take(META_MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(failed)?;
    if text.len() as u64 > META_MAX_BYTES {
        return Err(CifarError::BigMeta {
            path: path.to_path_buf(),
            max: META_MAX_BYTES,
        });
    }
    let classes: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect();
    if classes.len() != CLASSES {
        return Err(CifarError::BadMeta {
            path: path.to_path_buf(),
            found: classes.len(),
        });
    }
    Ok(classes)
}
