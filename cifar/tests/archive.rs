//! `cifar-10-binary.tar.gz` is read in place, and a damaged one is named.

mod common;

use std::fs;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cifar::{CifarError, Split, BATCH_RECORDS, RECORD_BYTES};
use common::{error_line, hwc, meta_text, record, CLASS_NAMES};
use flate2::{write::GzEncoder, Compression};
use tar::{EntryType, Header};

/// Contents of an official-size batch file: black label-0 images except
/// `records` (sorted by index), streamed so no 30 MB buffer is built.
fn batch(records: &[(usize, Vec<u8>)]) -> impl Read {
    let zeros = |records: usize| io::repeat(0).take((records * RECORD_BYTES) as u64);
    let mut contents: Box<dyn Read> = Box::new(io::empty());
    let mut next = 0;
    for (index, record) in records {
        contents = Box::new(
            contents
                .chain(zeros(index - next))
                .chain(Cursor::new(record.clone())),
        );
        next = index + 1;
    }
    contents.chain(zeros(BATCH_RECORDS - next))
}

/// A small download: a validation record in `data_batch_5.bin`, the class
/// names after it (so opening has to stream past a batch), and two test
/// records; the other training batches are left out.
fn archive_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut append = |name: &str, size: usize, contents: &mut dyn Read| {
            let mut header = Header::new_gnu();
            header.set_size(size as u64);
            header.set_mode(0o644);
            if name.ends_with('/') {
                header.set_entry_type(EntryType::Directory);
            }
            tar.append_data(&mut header, name, contents).unwrap();
        };
        let batch_bytes = BATCH_RECORDS * RECORD_BYTES;
        append("cifar-10-batches-bin/", 0, &mut io::empty());
        append(
            "cifar-10-batches-bin/data_batch_5.bin",
            batch_bytes,
            &mut batch(&[(5_000, record(6, 7))]),
        );
        append(
            "cifar-10-batches-bin/batches.meta.txt",
            meta_text().len(),
            &mut meta_text().as_bytes(),
        );
        append(
            "cifar-10-batches-bin/test_batch.bin",
            batch_bytes,
            &mut batch(&[(0, record(2, 5)), (2, record(9, 6))]),
        );
        tar.into_inner().unwrap().finish().unwrap()
    })
}

/// Writes `bytes` as `cifar-10-binary.tar.gz` in a new temporary directory.
fn write_archive(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("cifar-10-binary.tar.gz");
    fs::write(&path, bytes).unwrap();
    (root, path)
}

/// The message of an error, checked to start with the archive's name.
fn message<T: std::fmt::Debug>(result: Result<T, CifarError>, archive: &Path) -> String {
    let message = error_line(result);
    assert!(
        message.starts_with(&archive.display().to_string()),
        "{message}"
    );
    message
}

#[test]
fn archive_is_read_in_place() {
    let (_root, path) = write_archive(archive_bytes());
    let source = cifar::open(&path).unwrap();
    assert_eq!(source.classes(), CLASS_NAMES);
    let test = source.load(Split::Test, Some(3)).unwrap();
    assert_eq!(test.labels, [2, 0, 9]);
    assert_eq!(test.image(2), hwc(&record(9, 6)));
    let validation = source.load(Split::Validation, None).unwrap();
    assert_eq!(validation.len(), 5_000);
    assert_eq!(
        (validation.labels[0], validation.image(0)),
        (6, hwc(&record(6, 7)).as_slice())
    );
}

#[test]
fn directory_holding_only_the_archive_opens_it() {
    let (root, _path) = write_archive(archive_bytes());
    assert_eq!(
        cifar::open(root.path())
            .unwrap()
            .load(Split::Test, Some(1))
            .unwrap()
            .labels,
        [2]
    );
}

#[test]
fn batch_missing_from_archive_is_named() {
    let (_root, path) = write_archive(archive_bytes());
    let message = message(
        cifar::open(&path).unwrap().load(Split::Train, Some(1)),
        &path,
    );
    assert!(
        message
            .ends_with("cifar-10-binary.tar.gz/cifar-10-batches-bin/data_batch_1.bin: not found"),
        "{message}"
    );
}

#[test]
fn truncated_archive_is_named() {
    let bytes = archive_bytes();
    let (_root, path) = write_archive(&bytes[..bytes.len() * 3 / 4]);
    let message = message(
        cifar::open(&path).and_then(|source| source.load(Split::Test, None)),
        &path,
    );
    assert!(
        message.contains(": corrupt or truncated archive: "),
        "{message}"
    );
}

#[test]
fn file_that_is_not_gzip_is_named() {
    let (_root, path) = write_archive(b"not an archive");
    let message = message(cifar::open(&path), &path);
    assert!(
        message.contains(": corrupt or truncated archive: "),
        "{message}"
    );
}
