//! Missing and damaged files are reported by name, one line each.

mod common;

use std::fs;

use cifar::{Split, RECORD_BYTES};
use common::{batches_dir, error_line as message, record, write_batch};

#[test]
fn missing_directory_is_no_data() {
    let missing = std::env::temp_dir().join("cifar-test-no-such-dir");
    let message = message(cifar::open(&missing));
    assert!(
        message.starts_with(&format!("{}: no CIFAR-10 data here", missing.display())),
        "{message}"
    );
}

#[test]
fn directory_without_cifar_is_no_data() {
    let root = tempfile::tempdir().unwrap();
    assert!(message(cifar::open(root.path())).contains("no CIFAR-10 data here"));
}

#[test]
fn missing_batch_file_is_named() {
    let root = tempfile::tempdir().unwrap();
    batches_dir(root.path());
    let source = cifar::open(root.path()).unwrap();
    assert!(message(source.load(Split::Test, Some(1)))
        .ends_with("cifar-10-batches-bin/test_batch.bin: not found"));
}

#[test]
fn truncated_batch_names_file_and_size() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    fs::write(dir.join("test_batch.bin"), vec![0; 10 * RECORD_BYTES - 5]).unwrap();
    let message = message(cifar::open(&dir).unwrap().load(Split::Test, Some(1)));
    assert!(
        message.ends_with(
            "test_batch.bin: truncated: 30725 bytes is not a whole number of 3073-byte records"
        ),
        "{message}"
    );
}

#[test]
fn short_batch_names_file_and_record_count() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    fs::write(dir.join("data_batch_1.bin"), vec![0; 10 * RECORD_BYTES]).unwrap();
    let message = message(cifar::open(&dir).unwrap().load(Split::Train, Some(1)));
    assert!(
        message.ends_with("data_batch_1.bin: 10 records, expected 10000 in a CIFAR-10 batch"),
        "{message}"
    );
}

#[test]
fn bad_label_names_file_and_record_once_read() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    write_batch(&dir.join("test_batch.bin"), &[(7, record(10, 1))]);
    let source = cifar::open(&dir).unwrap();
    assert_eq!(source.load(Split::Test, Some(7)).unwrap().len(), 7);
    let message = message(source.load(Split::Test, Some(8)));
    assert!(
        message.ends_with("test_batch.bin: record 7 has label 10, expected 0-9"),
        "{message}"
    );
}

#[test]
fn meta_with_nine_names_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    fs::write(
        dir.join("batches.meta.txt"),
        "a\nb\nc\nd\ne\nf\ng\nh\ni\n\n",
    )
    .unwrap();
    let message = message(cifar::open(root.path()));
    assert!(
        message.ends_with("batches.meta.txt: 9 class names, expected 10 (one a line)"),
        "{message}"
    );
}

/// A huge class-name file is refused after 64 KiB, not read whole.
#[test]
fn huge_meta_is_named_without_reading_it_all() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    fs::write(dir.join("batches.meta.txt"), "x\n".repeat(1 << 20)).unwrap();
    let message = message(cifar::open(root.path()));
    assert!(
        message
            .ends_with("batches.meta.txt: over 65536 bytes; a class-name file is ten short lines"),
        "{message}"
    );
}

#[test]
fn missing_meta_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    fs::remove_file(dir.join("batches.meta.txt")).unwrap();
    assert!(message(cifar::open(&dir)).ends_with("batches.meta.txt: not found"));
}

#[test]
fn a_limit_spans_batch_files_in_order() {
    let root = tempfile::tempdir().unwrap();
    let dir = batches_dir(root.path());
    write_batch(&dir.join("data_batch_1.bin"), &[(9_999, record(3, 1))]);
    write_batch(
        &dir.join("data_batch_2.bin"),
        &[(0, record(4, 2)), (1, record(5, 3))],
    );
    let data = cifar::open(&dir)
        .unwrap()
        .load(Split::Train, Some(10_001))
        .unwrap();
    assert_eq!(data.len(), 10_001);
    assert_eq!(data.labels[9_998..], [0, 3, 4]);
    assert_eq!(data.image(10_000), common::hwc(&record(4, 2)));
}
