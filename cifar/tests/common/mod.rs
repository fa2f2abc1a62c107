//! Fixtures shared by the test binaries; each uses part of them.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cifar::{CifarError, BATCH_RECORDS, IMAGE_BYTES, RECORD_BYTES, SIDE};

pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// `batches.meta.txt` as the download has it: trailing blank lines included.
pub fn meta_text() -> String {
    CLASS_NAMES.join("\n") + "\n\n"
}

/// The message of an error, checked to be one line.
pub fn error_line<T: std::fmt::Debug>(result: Result<T, CifarError>) -> String {
    let message = result.unwrap_err().to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

/// The shared copy of the real data set.
pub fn real_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/cifar10")
}

/// `count` raw records of a batch file, from record `start`.
pub fn raw_records(file: &Path, start: usize, count: usize) -> Vec<u8> {
    let mut file = File::open(file).unwrap();
    file.seek(SeekFrom::Start((start * RECORD_BYTES) as u64))
        .unwrap();
    let mut bytes = vec![0; count * RECORD_BYTES];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

/// A record whose planes and pixels all differ, so a wrong conversion shows.
pub fn record(label: u8, seed: u8) -> Vec<u8> {
    let mut bytes = vec![label];
    bytes.extend((0..IMAGE_BYTES).map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37)));
    bytes
}

/// The HWC image of a planar record, written out pixel by pixel.
pub fn hwc(record: &[u8]) -> Vec<u8> {
    let mut image = vec![0; IMAGE_BYTES];
    for c in 0..3 {
        for y in 0..SIDE {
            for x in 0..SIDE {
                image[(y * SIDE + x) * 3 + c] = record[1 + c * SIDE * SIDE + y * SIDE + x];
            }
        }
    }
    image
}

/// A batch file of the official size, all label-0 black images (sparse, so
/// cheap) except `records` at the given indices.
pub fn write_batch(path: &Path, records: &[(usize, Vec<u8>)]) {
    let mut file = File::create(path).unwrap();
    file.set_len((BATCH_RECORDS * RECORD_BYTES) as u64).unwrap();
    for (index, record) in records {
        file.seek(SeekFrom::Start((index * RECORD_BYTES) as u64))
            .unwrap();
        file.write_all(record).unwrap();
    }
}

/// A `cifar-10-batches-bin` directory holding only `batches.meta.txt`.
pub fn batches_dir(root: &Path) -> PathBuf {
    let dir = root.join("cifar-10-batches-bin");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("batches.meta.txt"), meta_text()).unwrap();
    dir
}
