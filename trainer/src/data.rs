//! The data set in memory, and the shuffled, augmented batches of an epoch.

use std::path::Path;
use std::sync::mpsc::sync_channel;

use cifar::{CifarError, Dataset, Split};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::augment::Augment;
use models::graph::Preprocess;

use crate::net::normalise;

/// Batches the producer thread may run ahead of training by: enough to hide
/// a slow batch, little memory.
const PREFETCH: usize = 2;

/// How many images of each split to use: all, or the first N (for tests and
/// quick runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub train: Option<usize>,
    pub val: Option<usize>,
    pub test: Option<usize>,
}

/// The three splits, read once and kept in memory (about 180 MB in all).
pub struct Data {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
}

impl Data {
    /// Reads all three splits now, so that a missing or truncated file stops
    /// the run before training rather than at its end.
    pub fn load(dir: &Path, limits: &Limits) -> Result<Data, CifarError> {
        let source = cifar::open(dir)?;
        Ok(Data {
            train: source.load(Split::Train, limits.train)?,
            val: source.load(Split::Validation, limits.val)?,
            test: source.load(Split::Test, limits.test)?,
        })
    }
}

/// One augmented mini-batch: `[N,3,height,width]` floats of the network's
/// input size on the 0-255 scale, and the labels.
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Batch {
    /// The network's input (normalised as `pre` says, NCHW) and the labels,
    /// on `device`.
    pub fn to_tensors(&self, pre: &Preprocess, device: Device) -> (Tensor, Tensor) {
        let (height, width) = pre.input_size();
        let images = Tensor::from_slice(&self.images)
            .view([-1, 3, height as i64, width as i64])
            .to_device(device);
        (
            normalise(&images, pre.normalise),
            Tensor::from_slice(&self.labels).to_device(device),
        )
    }
}

/// The random stream of one epoch: a pure function of the run's seed and the
/// epoch, so that a resumed run sees the batches an unbroken one would.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    rng
}

/// The first `steps` batches of a shuffled pass over `data`, each handed to
/// `train` while a second thread augments the next ones. Stops at the first
/// error `train` returns.
pub fn for_each_batch<E>(
    data: &Dataset,
    augment: &Augment,
    batch: usize,
    steps: usize,
    mut rng: ChaCha8Rng,
    mut train: impl FnMut(Batch) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (sender, batches) = sync_channel(PREFETCH);
        scope.spawn(move || {
            let mut order: Vec<usize> = (0..data.len()).collect();
            order.shuffle(&mut rng);
            for indices in order.chunks_exact(batch).take(steps) {
                let mut images = vec![0.0; indices.len() * augment.image_len()];
                for (&i, out) in indices
                    .iter()
                    .zip(images.chunks_exact_mut(augment.image_len()))
                {
                    augment.image(data.image(i), out, &mut rng);
                }
                let labels = indices.iter().map(|&i| data.labels[i] as i64).collect();
                // A closed channel means training stopped early.
                if sender.send(Batch { images, labels }).is_err() {
                    break;
                }
            }
        });
        // Returning drops the receiver, which ends the producer.
        batches.into_iter().try_for_each(&mut train)
    })
}

/// Raw `uint8 [N,height,width,3]` pixels of `data`, in slices of at most
/// `size` images, as evaluation and export read them.
pub fn pixel_batches(data: &Dataset, size: usize) -> impl Iterator<Item = (Tensor, &[u8])> + '_ {
    let (height, width) = (data.height as i64, data.width as i64);
    data.images
        .chunks(size * data.image_bytes())
        .zip(data.labels.chunks(size))
        .map(move |(pixels, labels)| {
            (
                Tensor::from_slice(pixels).view([-1, height, width, 3]),
                labels,
            )
        })
}
