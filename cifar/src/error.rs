//! Errors of reading CIFAR-10. Each renders as one line that names the file
//! and what is wrong with it, so command lines can print it as-is.

use std::io;
use std::path::{Path, PathBuf};

use crate::{BATCH_RECORDS, CLASSES, RECORD_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum CifarError {
    #[error(
        "{}: no CIFAR-10 data here (expected cifar-10-batches-bin/ with data_batch_1..5.bin, \
         test_batch.bin and batches.meta.txt, or cifar-10-binary.tar.gz)",
        path.display()
    )]
    NoData { path: PathBuf },
    #[error("{}: not found", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: truncated: {size} bytes is not a whole number of {}-byte records", path.display(), RECORD_BYTES)]
    Truncated { path: PathBuf, size: u64 },
    #[error("{}: {records} records, expected {} in a CIFAR-10 batch", path.display(), BATCH_RECORDS)]
    RecordCount { path: PathBuf, records: u64 },
    #[error("{}: record {index} has label {label}, expected 0-9", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: u8,
    },
    #[error("{}: {found} class names, expected {} (one a line)", path.display(), CLASSES)]
    BadMeta { path: PathBuf, found: usize },
    #[error("{}: over {max} bytes; a class-name file is ten short lines", path.display())]
    BigMeta { path: PathBuf, max: u64 },
    #[error("{}: corrupt or truncated archive: {source}", path.display())]
    Archive { path: PathBuf, source: io::Error },
}

impl CifarError {
    /// A file error, with a missing file told apart because it is the usual mistake.
    pub(crate) fn io(path: &Path, source: io::Error) -> CifarError {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => CifarError::Missing { path },
            _ => CifarError::Io { path, source },
        }
    }
}
