//! The three splits, as runs of records in the batch files.

use crate::{BATCH_RECORDS, RECORD_BYTES, VALIDATION_SIZE};

/// Which part of CIFAR-10 to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 45,000 training records not held out for validation:
    /// `data_batch_1..4.bin` and the first 5,000 records of `data_batch_5.bin`.
    Train,
    /// The last [`VALIDATION_SIZE`] records of `data_batch_5.bin`, held out of
    /// training to tune on. The records were shuffled with a fixed seed, so
    /// this tail is a fair sample of all classes.
    Validation,
    /// `test_batch.bin`, for the final figure only.
    Test,
}

/// A run of consecutive records in one batch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub file: &'static str,
    pub start: usize,
    pub count: usize,
}

impl Segment {
    const fn new(file: &'static str, start: usize, count: usize) -> Segment {
        Segment { file, start, count }
    }

    /// Where the run starts in its file, in bytes.
    pub fn offset(&self) -> u64 {
        (self.start * RECORD_BYTES) as u64
    }

    /// Length of the run, in bytes.
    pub fn bytes(&self) -> usize {
        self.count * RECORD_BYTES
    }
}

const TRAIN_IN_BATCH_5: usize = BATCH_RECORDS - VALIDATION_SIZE;

const TRAIN: [Segment; 5] = [
    Segment::new("data_batch_1.bin", 0, BATCH_RECORDS),
    Segment::new("data_batch_2.bin", 0, BATCH_RECORDS),
    Segment::new("data_batch_3.bin", 0, BATCH_RECORDS),
    Segment::new("data_batch_4.bin", 0, BATCH_RECORDS),
    Segment::new("data_batch_5.bin", 0, TRAIN_IN_BATCH_5),
];
const VALIDATION: [Segment; 1] = [Segment::new(
    "data_batch_5.bin",
    TRAIN_IN_BATCH_5,
    VALIDATION_SIZE,
)];
const TEST: [Segment; 1] = [Segment::new("test_batch.bin", 0, BATCH_RECORDS)];

impl Split {
    /// The runs holding the first `limit` records of the split (all of them
    /// without a limit), so that a small read touches only the files it needs.
    pub(crate) fn plan(self, limit: Option<usize>) -> Vec<Segment> {
        let all: &[Segment] = match self {
            Split::Train => &TRAIN,
            Split::Validation => &VALIDATION,
            Split::Test => &TEST,
        };
        let mut left = limit.unwrap_or(usize::MAX);
        all.iter()
            .map_while(|segment| {
                let count = segment.count.min(left);
                left -= count;
                (count > 0).then_some(Segment { count, ..*segment })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(split: Split) -> usize {
        split.plan(None).iter().map(|s| s.count).sum()
    }

    #[test]
    fn train_and_validation_partition_the_training_batches() {
        assert_eq!(records(Split::Train), 45_000);
        assert_eq!(records(Split::Validation), VALIDATION_SIZE);
        assert_eq!(records(Split::Test), 10_000);
        let last_train = Split::Train.plan(None)[4];
        let validation = Split::Validation.plan(None)[0];
        assert_eq!(
            (last_train.file, validation.file),
            ("data_batch_5.bin", "data_batch_5.bin")
        );
        assert_eq!(last_train.start + last_train.count, validation.start);
        assert_eq!(validation.start + validation.count, BATCH_RECORDS);
    }

    #[test]
    fn a_limit_plans_only_the_files_it_needs() {
        assert_eq!(
            Split::Train.plan(Some(200)),
            [Segment::new("data_batch_1.bin", 0, 200)]
        );
        assert_eq!(
            Split::Train.plan(Some(10_001)),
            [
                Segment::new("data_batch_1.bin", 0, 10_000),
                Segment::new("data_batch_2.bin", 0, 1)
            ]
        );
        assert_eq!(
            Split::Validation.plan(Some(3)),
            [Segment::new("data_batch_5.bin", 5_000, 3)]
        );
        assert!(Split::Test.plan(Some(0)).is_empty());
        assert_eq!(Split::Test.plan(Some(20_000)), TEST);
    }
}
