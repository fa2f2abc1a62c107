//! CIFAR-10's training batches are what they were before the data pipeline
//! took other picture sizes: the zoo's runs resume from checkpoints, and a
//! resumed run must see the batches an unbroken one would.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use trainer::augment::Augment;
use trainer::data::{epoch_rng, for_each_batch};

/// A digest of the first three augmented batches of epoch 1 of seed 7.
fn digest(arch: &str, cutout: usize) -> u64 {
    let data = cifar::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/cifar10"))
        .unwrap()
        .load(cifar::Split::Train, Some(600))
        .unwrap();
    let graph = models::zoo::arch(arch).unwrap().graph();
    let augment = Augment::for_graph(&graph, cutout, 1.0);
    let mut hasher = DefaultHasher::new();
    for_each_batch(&data, &augment, 50, 3, epoch_rng(7, 1), |b| {
        b.images.iter().for_each(|v| v.to_bits().hash(&mut hasher));
        b.labels.hash(&mut hasher);
        Ok::<(), ()>(())
    })
    .unwrap();
    hasher.finish()
}

#[test]
fn cifar_batches_are_unchanged() {
    // Digests from the code before it read other sizes (2186469).
    let cases = [("squeeze1", 0), ("resnet9", 8)];
    let found: Vec<u64> = cases
        .iter()
        .map(|&(arch, cutout)| digest(arch, cutout))
        .collect();
    assert_eq!(found, [8297131521841907538, 2016931521859518767]);
}
