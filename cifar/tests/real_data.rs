//! The shared copy of CIFAR-10, read a small slice at a time.

mod common;

use cifar::{Split, IMAGE_BYTES, RECORD_BYTES, SIDE};
use common::{hwc, raw_records, real_data, CLASS_NAMES};

#[test]
fn train_starts_with_data_batch_1_in_hwc_order() {
    let data = cifar::open(real_data())
        .unwrap()
        .load(Split::Train, Some(200))
        .unwrap();
    assert_eq!(data.len(), 200);
    assert_eq!(data.images.len(), 200 * IMAGE_BYTES);
    assert_eq!(data.classes, CLASS_NAMES);
    assert!(data.labels.iter().all(|&label| label < 10));
    let raw = raw_records(
        &real_data().join("cifar-10-batches-bin/data_batch_1.bin"),
        0,
        200,
    );
    for (i, record) in raw.chunks(RECORD_BYTES).enumerate() {
        assert_eq!(data.labels[i], record[0], "label of record {i}");
        assert_eq!(data.image(i), hwc(record), "image of record {i}");
    }
    // Blue of pixel (x 7, y 5) of image 1, against the file's blue plane.
    let (x, y) = (7, 5);
    assert_eq!(
        data.image(1)[(y * SIDE + x) * 3 + 2],
        raw[RECORD_BYTES + 1 + 2 * 1024 + y * SIDE + x]
    );
}

#[test]
fn validation_is_the_tail_of_data_batch_5() {
    let data = cifar::open(real_data())
        .unwrap()
        .load(Split::Validation, Some(3))
        .unwrap();
    let raw = raw_records(
        &real_data().join("cifar-10-batches-bin/data_batch_5.bin"),
        5_000,
        3,
    );
    assert_eq!(data.len(), 3);
    for (i, record) in raw.chunks(RECORD_BYTES).enumerate() {
        assert_eq!(
            (data.labels[i], data.image(i)),
            (record[0], hwc(record).as_slice()),
            "record {}",
            5_000 + i
        );
    }
}

#[test]
fn test_reads_test_batch_from_the_batches_directory_too() {
    let batches = real_data().join("cifar-10-batches-bin");
    let data = cifar::open(&batches)
        .unwrap()
        .load(Split::Test, Some(50))
        .unwrap();
    assert_eq!(
        data,
        cifar::open(real_data())
            .unwrap()
            .load(Split::Test, Some(50))
            .unwrap()
    );
    let raw = raw_records(&batches.join("test_batch.bin"), 0, 50);
    assert_eq!(
        data.labels,
        raw.chunks(RECORD_BYTES)
            .map(|record| record[0])
            .collect::<Vec<_>>()
    );
    assert_eq!(data.image(49), hwc(&raw[49 * RECORD_BYTES..]));
}
