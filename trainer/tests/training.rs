//! The training loop on a few hundred real images: it learns, a resumed run
//! ends where an unbroken one does, and the exported model computes what
//! the trained net computes.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use cifar::Split;
use tch::{Device, Tensor};
use trainer::checkpoint::EMA;
use trainer::data::{Batch, Data, Limits};
use trainer::history::EpochLog;
use trainer::schedule::Schedule;
use trainer::train::{train, Hooks, Outcome, Recipe, Run, Trainer};
use trainer::Net;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cifar10");

/// Seeding is global to libtorch: tests that seed must not interleave.
static TORCH_RNG: Mutex<()> = Mutex::new(());

fn torch_rng() -> MutexGuard<'static, ()> {
    TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn squeeze1() -> models::Graph {
    models::zoo::arch("squeeze1").unwrap().graph()
}

/// 256 training, 128 validation and 128 test images, 8 steps of 32 an epoch.
fn small_recipe() -> Recipe {
    Recipe {
        epochs: 2,
        batch: 32,
        lr: 0.02,
        schedule: Schedule::OneCycle { warmup_epochs: 0.5 },
        label_smoothing: 0.1,
        ema: Some(0.9),
        seed: 7,
        limits: Limits {
            train: Some(256),
            val: Some(128),
            test: Some(128),
        },
        ..Recipe::default()
    }
}

/// A fresh directory for one test's outputs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Counts optimiser steps, and can stop the run after some epochs as a kill
/// would (the checkpoint of that epoch is already written).
struct Watch {
    steps: u64,
    stop_after: Option<usize>,
}

impl Hooks for Watch {
    fn after_step(&mut self, _net: &Net, _ema: Option<&Net>) {
        self.steps += 1;
    }

    fn epoch_ended(&mut self, log: &EpochLog) -> ControlFlow<()> {
        match self.stop_after {
            Some(n) if log.epoch >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

fn run(
    dir: &Path,
    data: &Data,
    recipe: &Recipe,
    resume: bool,
    stop_after: Option<usize>,
) -> (Outcome, u64) {
    let net = Net::seeded(&squeeze1(), Device::Cpu, recipe.seed).unwrap();
    let run = Run {
        out: dir.join("squeeze1.onnx"),
        device: Device::Cpu,
        resume,
        command: "trainer test".into(),
        test: true,
    };
    let mut watch = Watch {
        steps: 0,
        stop_after,
    };
    let outcome = train(net, data, recipe, &run, &mut watch).unwrap_or_else(|e| panic!("{e}"));
    (outcome, watch.steps)
}

fn checkpoint_tensors(path: &Path) -> Vec<(String, Tensor)> {
    let mut tensors = Tensor::load_multi(path).unwrap();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

#[test]
fn repeated_steps_on_one_batch_drive_the_loss_down() {
    let _rng = torch_rng();
    let data = cifar::open(DATA)
        .unwrap()
        .load(Split::Train, Some(64))
        .unwrap();
    // Plain SGD at a rate this net without normalisation takes without
    // killing its final ReLU; everything is seeded, so the curve is fixed.
    let recipe = Recipe {
        lr: 0.01,
        momentum: 0.0,
        schedule: Schedule::Constant,
        batch: 64,
        ..Recipe::default()
    };
    let mut trainer = Trainer::new(
        Net::seeded(&squeeze1(), Device::Cpu, 1).unwrap(),
        &recipe,
        &data,
        Device::Cpu,
    )
    .unwrap();
    // The centre 24x24 crops, unaugmented.
    let pixels = Tensor::from_slice(&data.images)
        .view([64, 32, 32, 3])
        .permute([0, 3, 1, 2]);
    let centre = pixels
        .narrow(2, 4, 24)
        .narrow(3, 4, 24)
        .to_kind(tch::Kind::Float)
        .contiguous();
    let batch = Batch {
        images: Vec::try_from(centre.flatten(0, -1)).unwrap(),
        labels: data.labels.iter().map(|&l| l as i64).collect(),
    };
    let (x, y) = batch.to_tensors(&models::graph::Preprocess::cifar(24), Device::Cpu);
    let losses: Vec<f64> = (0..60)
        .map(|_| trainer.step(&x, &y, &mut ()).unwrap().loss)
        .collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    // The first steps only shed the initial logits' scale; after them the
    // loss must keep falling, and end clearly below a uniform guess (which
    // is where a net with a dead output sits).
    let (early, last) = (mean(&losses[10..15]), mean(&losses[55..]));
    assert!(
        last < early - 0.15,
        "loss went from {early:.3} to {last:.3}: {losses:.3?}"
    );
    assert!(
        last < 10f64.ln() - 0.2,
        "loss {last:.3} is no better than guessing: {losses:.3?}"
    );
    assert_eq!(trainer.steps(), 60);
}

#[test]
fn a_resumed_run_ends_where_an_unbroken_one_does_and_exports_what_it_trained() {
    let _rng = torch_rng();
    let recipe = small_recipe();
    let data = Data::load(Path::new(DATA), &recipe.limits).unwrap();
    let (straight, broken) = (scratch("straight"), scratch("broken"));

    let (whole, whole_steps) = run(&straight, &data, &recipe, false, None);
    let (first, first_steps) = run(&broken, &data, &recipe, false, Some(1));
    assert!(
        first.test.is_none() && !first.outputs.model.exists(),
        "a stopped run exports nothing"
    );
    let (rest, rest_steps) = run(&broken, &data, &recipe, true, None);

    assert_eq!(whole.steps, 16);
    assert_eq!((first.steps, rest.steps), (8, 16));
    assert_eq!(
        (whole_steps, first_steps + rest_steps),
        (16, 16),
        "the hook sees every step once"
    );
    let (a, b) = (
        checkpoint_tensors(&whole.outputs.checkpoint),
        checkpoint_tensors(&rest.outputs.checkpoint),
    );
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        if name == "state" {
            continue;
        }
        let diff = f64::try_from((x - y).abs().max()).unwrap();
        assert!(diff <= 1e-6, "{name} differs by {diff} after resuming");
    }
    let (rows_a, rows_b) = (&whole.history, &rest.history);
    assert_eq!(
        rows_b.len(),
        2,
        "the resumed run keeps the first epoch's row"
    );
    for (x, y) in rows_a.iter().zip(rows_b) {
        assert_eq!(
            (x.epoch, x.train_loss, x.val_acc, x.lr),
            (y.epoch, y.train_loss, y.val_acc, y.lr)
        );
    }
    let csv = std::fs::read_to_string(&rest.outputs.log).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n"));
    let test = whole.test.unwrap();
    assert_eq!(test, rest.test.unwrap());

    // The exported model is the moving average the checkpoint holds.
    let ema = Net::fresh(&squeeze1(), Device::Cpu).unwrap();
    let saved: std::collections::HashMap<String, Tensor> = a.into_iter().collect();
    tch::no_grad(|| {
        for (spec, t) in ema.params() {
            t.shallow_clone()
                .copy_(&saved[&format!("{EMA}{}", spec.name)]);
        }
    });
    let pixels = &data.test.images[..32 * cifar::IMAGE_BYTES];
    let expected =
        tch::no_grad(|| ema.forward_pixels(&Tensor::from_slice(pixels).view([32, 32, 32, 3])));
    let expected = Vec::<f32>::try_from(expected.flatten(0, -1)).unwrap();
    let model = runtime::Model::load(&whole.outputs.model).unwrap();
    let got = model.run(pixels).unwrap().logits;
    let worst = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4,
        "ONNX logits differ from libtorch's by {worst}"
    );
    assert!(expected.iter().any(|v| v.abs() > 1e-3), "degenerate logits");

    let meta = model.meta();
    assert_eq!(meta.training_steps, Some(16));
    assert_eq!(
        meta.test_accuracy.map(|a| (a * 1e4).round()),
        Some((test.accuracy * 1e4).round())
    );
    assert_eq!(meta.variant, "f32");
    assert_eq!(meta.labels, data.test.classes);
    assert_eq!(meta.command.as_deref(), Some("trainer test"));

    // The same checkpoint under another recipe is refused, naming the change.
    let net = Net::seeded(&squeeze1(), Device::Cpu, 0).unwrap();
    let other = Recipe { lr: 0.03, ..recipe };
    let run = Run {
        out: whole.outputs.model.clone(),
        device: Device::Cpu,
        resume: true,
        command: String::new(),
        test: true,
    };
    let err = train(net, &data, &other, &run, &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("different run") && err.contains("lr 0.02 (checkpoint) vs 0.03 (now)"),
        "{err}"
    );

    std::fs::remove_dir_all(straight).unwrap();
    std::fs::remove_dir_all(broken).unwrap();
}

/// Kills the net after every step, as a rate too high for it would: every
/// parameter zero, so the logits are flat and the loss sits at ln 10.
struct Kill;

impl Hooks for Kill {
    fn after_step(&mut self, net: &Net, _ema: Option<&Net>) {
        tch::no_grad(|| {
            for (_, tensor) in net.params() {
                let _ = tensor.shallow_clone().zero_();
            }
        });
    }
}

#[test]
fn a_run_that_dies_stops_at_the_first_dead_epoch_and_keeps_the_last_good_checkpoint() {
    let _rng = torch_rng();
    let dir = scratch("dead");
    let data = Data::load(Path::new(DATA), &small_recipe().limits).unwrap();
    let recipe = Recipe {
        ema: None,
        label_smoothing: 0.0,
        schedule: Schedule::Cosine { warmup_epochs: 1.0 },
        ..small_recipe()
    };
    let (first, _) = run(&dir, &data, &recipe, false, Some(1));
    let checkpoint = std::fs::read(&first.outputs.checkpoint).unwrap();

    let net = Net::seeded(&squeeze1(), Device::Cpu, recipe.seed).unwrap();
    let run = Run {
        out: first.outputs.model.clone(),
        device: Device::Cpu,
        resume: true,
        command: String::new(),
        test: true,
    };
    let err = train(net, &data, &recipe, &run, &mut Kill).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("collapsed in epoch 2"), "{message}");
    assert!(
        message.contains("ln 10") && message.contains("--lr"),
        "{message}"
    );
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        std::fs::read(&first.outputs.checkpoint).unwrap(),
        checkpoint
    );
    assert!(!first.outputs.model.exists());

    // Dead within the warm-up is not yet a verdict.
    let net = Net::seeded(&squeeze1(), Device::Cpu, recipe.seed).unwrap();
    let warm = Recipe {
        schedule: Schedule::Cosine { warmup_epochs: 2.0 },
        ..recipe
    };
    let run = Run {
        out: dir.join("warm.onnx"),
        resume: false,
        ..run
    };
    let outcome = train(net, &data, &warm, &run, &mut Kill).unwrap();
    assert_eq!(outcome.history.len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_teacher_that_computes_what_the_student_does_leaves_the_labels_their_share() {
    use trainer::distill::{Distillation, Teacher};
    let _rng = torch_rng();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/squeeze1.onnx");
    let model = models::onnx::decode(&std::fs::read(file).unwrap()).unwrap();
    let graph = model.layer_graph().unwrap();
    let mut student = Net::fresh(&graph, Device::Cpu).unwrap();
    let weights = models::onnx::read_weights(&model.proto, &graph).unwrap();
    student.load_weights(&weights).unwrap();
    let settings = Distillation {
        teacher: file.into(),
        weight: 0.7,
        temperature: 3.0,
    };
    let teacher = Teacher::load(&settings, &graph, &model.meta.labels, Device::Cpu).unwrap();
    tch::manual_seed(3);
    let images = Tensor::randn([8, 3, 24, 24], (tch::Kind::Float, Device::Cpu));
    let loss = |net: &Net| {
        let logits = net.forward_t(&images, false);
        teacher
            .loss(&images, &logits, Tensor::from(2.0f32))
            .double_value(&[])
    };
    // Same logits: no divergence, so the loss is the labels' 30% of 2.
    assert!((loss(&student) - 0.6).abs() < 1e-5, "{}", loss(&student));
    // A fresh net disagrees with the teacher, which costs.
    let fresh = Net::seeded(&graph, Device::Cpu, 1).unwrap();
    assert!(loss(&fresh) > 0.6 + 1e-2, "{}", loss(&fresh));
    // Other labels than the teacher's are refused.
    let wrong: Vec<String> = (0..10).map(|i| format!("class{i}")).collect();
    let refused = Teacher::load(&settings, &graph, &wrong, Device::Cpu)
        .err()
        .unwrap();
    assert!(
        refused.to_string().contains("it predicts 10 classes"),
        "{refused}"
    );
}
