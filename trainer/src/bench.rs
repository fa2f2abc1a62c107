//! `trainer bench`: how close the training loop comes to libtorch's own
//! ceiling, a bare forward, backward and SGD step on one fixed batch.

use std::time::Instant;

use models::Graph;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Reduction, Tensor};

use crate::augment::Augment;
use crate::data::{epoch_rng, Batch, Data};
use crate::schedule::Schedule;
use crate::train::{Recipe, Trainer};
use crate::{Net, TrainError};

/// The two loops alternate in this many rounds, so that a neighbour's load
/// on a shared machine falls on both alike.
const ROUNDS: usize = 3;
/// Untimed steps of each loop first: libtorch allocates and plans on its
/// first passes.
const WARMUP_STEPS: usize = 3;
/// Images augmented to time augmentation alone.
const AUGMENT_SAMPLE: usize = 2000;

/// What `trainer bench` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub batch: usize,
    /// Timed steps of each loop.
    pub steps: usize,
    pub threads: i32,
    /// The bare loop: one fixed batch, tch's own SGD.
    pub bare_images_per_sec: f64,
    /// The training loop: augmented batches from the data set, the
    /// checkpointable SGD, the moving average, metrics.
    pub full_images_per_sec: f64,
    /// Augmenting one image on one thread.
    pub augment_us_per_image: f64,
    /// Steps of a real epoch over the whole training split.
    pub steps_per_epoch: usize,
    /// One validation pass.
    pub val_seconds: f64,
}

impl BenchReport {
    /// The training loop's speed as a fraction of the bare loop's.
    pub fn ratio(&self) -> f64 {
        self.full_images_per_sec / self.bare_images_per_sec
    }

    /// Wall time of a real epoch at the training loop's speed, validation
    /// included.
    pub fn epoch_seconds(&self) -> f64 {
        (self.steps_per_epoch * self.batch) as f64 / self.full_images_per_sec + self.val_seconds
    }
}

/// Times `steps` steps of the bare loop and of the training loop under
/// `recipe` for `graph`, alternating between them.
pub fn bench(
    graph: &Graph,
    data: &Data,
    recipe: &Recipe,
    steps: usize,
    device: Device,
) -> Result<BenchReport, TrainError> {
    let per_round = steps.div_ceil(ROUNDS).max(1);
    let batch = recipe.batch;
    let (images, labels) = first_batch(graph, data, recipe).to_tensors(&graph.preprocess, device);

    let store = nn::VarStore::new(device);
    let bare = Net::new(&store.root(), graph)?;
    let mut sgd = nn::Sgd {
        momentum: recipe.momentum,
        dampening: 0.0,
        wd: recipe.weight_decay,
        nesterov: recipe.nesterov,
    }
    .build(&store, recipe.lr)?;
    let mut bare_steps = |n: usize| {
        for _ in 0..n {
            let logits = bare.forward_t(&images, true);
            sgd.backward_step(&logits.cross_entropy_loss::<Tensor>(
                &labels,
                None,
                Reduction::Mean,
                -100,
                recipe.label_smoothing,
            ));
        }
    };

    // The schedule's shape does not matter to speed; a constant fits any length.
    let full = Recipe {
        epochs: ROUNDS,
        steps_per_epoch: Some(per_round),
        schedule: Schedule::Constant,
        ..recipe.clone()
    };
    let mut trainer = Trainer::new(
        Net::seeded(graph, device, recipe.seed)?,
        &full,
        &data.train,
        device,
    )?;

    bare_steps(WARMUP_STEPS);
    for _ in 0..WARMUP_STEPS {
        trainer.step(&images, &labels, &mut ())?;
    }
    let (mut bare_seconds, mut full_seconds, mut full_steps) = (0.0, 0.0, 0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        bare_steps(per_round);
        bare_seconds += started.elapsed().as_secs_f64();
        let started = Instant::now();
        trainer.train_epoch(&data.train, &mut ())?;
        full_seconds += started.elapsed().as_secs_f64();
        full_steps += trainer.steps_per_epoch();
    }

    let started = Instant::now();
    trainer.evaluate(&data.val);
    let val_seconds = started.elapsed().as_secs_f64();

    Ok(BenchReport {
        batch,
        steps: per_round * ROUNDS,
        threads: tch::get_num_threads(),
        bare_images_per_sec: (per_round * ROUNDS * batch) as f64 / bare_seconds,
        full_images_per_sec: (full_steps * batch) as f64 / full_seconds,
        augment_us_per_image: augment_micros(graph, data, recipe),
        steps_per_epoch: recipe.steps_in_epoch(data.train.len())?,
        val_seconds,
    })
}

/// The first `recipe.batch` training images, augmented: the bare loop's
/// fixed batch, real images so that it computes what training computes.
fn first_batch(graph: &Graph, data: &Data, recipe: &Recipe) -> Batch {
    let augment = Augment::for_graph(graph, recipe.cutout, recipe.jitter);
    let mut rng = epoch_rng(recipe.seed, 0);
    let count = recipe.batch.min(data.train.len());
    let mut images = vec![0.0; count * augment.image_len()];
    for (i, out) in images.chunks_exact_mut(augment.image_len()).enumerate() {
        augment.image(data.train.image(i), out, &mut rng);
    }
    Batch {
        images,
        labels: data.train.labels[..count]
            .iter()
            .map(|&l| l as i64)
            .collect(),
    }
}

/// Microseconds to augment one training image on one thread.
fn augment_micros(graph: &Graph, data: &Data, recipe: &Recipe) -> f64 {
    let augment = Augment::for_graph(graph, recipe.cutout, recipe.jitter);
    let mut out = vec![0.0; augment.image_len()];
    let mut rng = epoch_rng(recipe.seed, 0);
    let count = AUGMENT_SAMPLE.min(data.train.len());
    let started = Instant::now();
    for i in 0..count {
        augment.image(data.train.image(i), &mut out, &mut rng);
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}
