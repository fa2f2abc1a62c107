//! The training loop, callable as a function: the `trainer` command runs it
//! on a fresh net, `compress` on a pruned one with a hook that re-applies
//! its masks after every step.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use cifar::Dataset;
use models::onnx::Metadata;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

use crate::augment::Augment;
use crate::checkpoint::{self, State, EMA, MOMENTUM, PARAM};
use crate::data::{epoch_rng, for_each_batch, pixel_batches, Data, Limits};
use crate::distill::{Distillation, Teacher};
use crate::ema::Ema;
use crate::export::export_onnx;
use crate::history::{self, EpochLog};
use crate::optim::Sgd;
use crate::outputs::Outputs;
use crate::schedule::{Schedule, ONECYCLE_WARMUP_SHARE};
use crate::{Net, TrainError};

/// Images per evaluation batch: large enough to keep libtorch busy, small
/// enough for little memory.
const EVAL_BATCH: usize = 500;

/// How near ln(classes) an epoch's mean loss must be to count as chance: a
/// dead net's sits there to five digits, a learning one's moves by more.
const CHANCE_MARGIN: f64 = 2e-3;

/// Everything that decides what a run computes. A checkpoint resumes only
/// under the same recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub epochs: usize,
    pub batch: usize,
    /// A cap on the steps of an epoch, for quick runs; without it an epoch
    /// is every whole batch of the training split.
    pub steps_per_epoch: Option<usize>,
    /// The peak learning rate.
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    /// L2 weight decay on convolution and dense kernels only.
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub label_smoothing: f64,
    /// Decay of the weights' moving average; `None` evaluates and exports
    /// the live weights.
    pub ema: Option<f64>,
    /// Side of the cutout square; 0 for none.
    pub cutout: usize,
    /// Brightness and contrast jitter of 24x24 models, as a multiple of the
    /// study's ranges (brightness 63 levels, contrast 0.2 to 1.8).
    #[serde(default = "study_jitter")]
    pub jitter: f32,
    pub seed: u64,
    pub limits: Limits,
    /// A teacher's soft targets beside the labels; `None` trains on the
    /// labels alone.
    #[serde(default)]
    pub distill: Option<Distillation>,
}

/// The study's jitter ranges, unscaled; checkpoints from before the setting
/// existed used them.
fn study_jitter() -> f32 {
    1.0
}

impl Default for Recipe {
    /// The command line's defaults: 30 one-cycle epochs at batch 128.
    fn default() -> Recipe {
        Recipe {
            epochs: 30,
            batch: 128,
            steps_per_epoch: None,
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            schedule: Schedule::OneCycle {
                warmup_epochs: ONECYCLE_WARMUP_SHARE * 30.0,
            },
            label_smoothing: 0.0,
            ema: None,
            cutout: 0,
            jitter: study_jitter(),
            seed: 0,
            limits: Limits::default(),
            distill: None,
        }
    }
}

impl Recipe {
    /// Refuses settings that cannot train, naming the first one.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |why: String| Err(TrainError::Invalid(why));
        let fraction = |v: f64| (0.0..1.0).contains(&v);
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.steps_per_epoch == Some(0) {
            return bad("steps per epoch must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate must be a finite number above 0, not {}",
                self.lr
            ));
        }
        if !fraction(self.momentum) {
            return bad(format!("momentum must be in [0, 1), not {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be a finite number >= 0, not {}",
                self.weight_decay
            ));
        }
        if !fraction(self.label_smoothing) {
            return bad(format!(
                "label smoothing must be in [0, 1), not {}",
                self.label_smoothing
            ));
        }
        if !(self.jitter.is_finite() && (0.0..=1.25).contains(&self.jitter)) {
            return bad(format!(
                "jitter must be between 0 and 1.25 times the study's, not {}",
                self.jitter
            ));
        }
        if let Some(decay) = self.ema.filter(|&d| !(d > 0.0 && d < 1.0)) {
            return bad(format!("EMA decay must be between 0 and 1, not {decay}"));
        }
        match &self.schedule {
            Schedule::Step { factor, .. } if !(factor.is_finite() && *factor > 0.0) => {
                return bad(format!(
                    "step schedule factor must be a finite number above 0, not {factor}"
                ))
            }
            s => match s.warmup_epochs() {
                Some(w) if !(w.is_finite() && (0.0..=self.epochs as f64).contains(&w)) => {
                    return bad(format!(
                        "warm-up must be between 0 and the {} epochs, not {w}",
                        self.epochs
                    ))
                }
                _ => {}
            },
        }
        let limits = [
            ("train", self.limits.train),
            ("validation", self.limits.val),
            ("test", self.limits.test),
        ];
        if let Some((split, _)) = limits.iter().find(|(_, l)| *l == Some(0)) {
            return bad(format!("the {split} limit must be at least 1 image"));
        }
        self.distill.as_ref().map_or(Ok(()), Distillation::validate)
    }

    /// Steps in an epoch over `train_images`: whole batches only, capped by
    /// [`Recipe::steps_per_epoch`].
    pub fn steps_in_epoch(&self, train_images: usize) -> Result<usize, TrainError> {
        let whole = train_images / self.batch.max(1);
        if whole == 0 {
            return Err(TrainError::Invalid(format!(
                "batch size {} is more than the {train_images} training images",
                self.batch
            )));
        }
        Ok(self.steps_per_epoch.map_or(whole, |cap| cap.min(whole)))
    }
}

/// Where a run's files go and how it runs; nothing here changes the result.
pub struct Run {
    /// The ONNX model; the checkpoint and CSV log go beside it.
    pub out: PathBuf,
    pub device: Device,
    /// Continue from the checkpoint beside `out`.
    pub resume: bool,
    /// The command line, recorded in the model's metadata.
    pub command: String,
    /// Measure the test split at the end and record it in the file. A
    /// recipe search runs without, so that only final figures touch it.
    pub test: bool,
}

/// How far an epoch has got, for progress displays.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// From 1.
    pub epoch: usize,
    /// Steps done in this epoch, from 1.
    pub step: usize,
    pub steps: usize,
    /// Means over the epoch so far.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_sec: f64,
    pub lr: f64,
}

/// Points where a caller can watch or steer a run. Every method has a
/// do-nothing default; `()` is the silent caller.
pub trait Hooks {
    /// After every optimiser step and moving-average update, with the live
    /// net and the average: where pruning masks are re-applied.
    fn after_step(&mut self, _net: &Net, _ema: Option<&Net>) {}
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    fn progress(&mut self, _progress: &Progress) {}
    /// After an epoch is validated and checkpointed; `Break` stops the run
    /// there, to be resumed later.
    fn epoch_ended(&mut self, _log: &EpochLog) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl Hooks for () {}

/// Loss and accuracy on a labelled split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy, without label smoothing.
    pub loss: f64,
    pub accuracy: f64,
    pub images: usize,
}

/// Loss and accuracy of `net` on `data`, from raw pixels through the same
/// preprocessing the exported model has (centre crop, standardisation).
pub fn evaluate(net: &Net, data: &Dataset, device: Device) -> Evaluation {
    let (mut loss, mut correct) = (0.0, 0i64);
    tch::no_grad(|| {
        for (pixels, labels) in pixel_batches(data, EVAL_BATCH) {
            let logits = net.forward_pixels(&pixels.to_device(device));
            let labels = Tensor::from_slice(labels)
                .to_kind(Kind::Int64)
                .to_device(device);
            loss += logits.cross_entropy_for_logits(&labels).double_value(&[])
                * labels.size()[0] as f64;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
    });
    let images = data.len();
    Evaluation {
        loss: loss / images.max(1) as f64,
        accuracy: correct as f64 / images.max(1) as f64,
        images,
    }
}

/// What one optimiser step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    pub loss: f64,
    /// Images of the batch the net got right (before the step).
    pub correct: i64,
    pub lr: f64,
}

/// Mean loss and accuracy over an epoch's training batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    pub loss: f64,
    pub accuracy: f64,
    /// The learning rate of the last step.
    pub lr: f64,
}

impl EpochLog {
    /// The row of epoch `epoch` (from 1): its training figures, its
    /// validation and its wall time.
    pub fn new(epoch: usize, stats: &EpochStats, val: &Evaluation, seconds: f64) -> EpochLog {
        EpochLog {
            epoch,
            train_loss: stats.loss,
            train_acc: stats.accuracy,
            val_loss: val.loss,
            val_acc: val.accuracy,
            lr: stats.lr,
            seconds,
        }
    }
}

/// A net with its optimiser, moving average and counters.
pub struct Trainer {
    net: Net,
    teacher: Option<Teacher>,
    sgd: Sgd,
    ema: Option<Ema>,
    recipe: Recipe,
    augment: Augment,
    device: Device,
    steps_per_epoch: usize,
    /// Optimiser steps taken.
    step: u64,
    /// Epochs completed.
    epoch: usize,
    history: Vec<EpochLog>,
}

impl Trainer {
    /// A trainer for `net` (fresh or pre-trained, on `device`) under
    /// `recipe`, over the training split `train`; the recipe's teacher, if
    /// it has one, is loaded now.
    pub fn new(
        net: Net,
        recipe: &Recipe,
        train: &Dataset,
        device: Device,
    ) -> Result<Trainer, TrainError> {
        recipe.validate()?;
        let train_images = train.len();
        let teacher = recipe
            .distill
            .as_ref()
            .map(|d| Teacher::load(d, net.graph(), &train.classes, device))
            .transpose()?;
        let (crop, _) = net.graph().preprocess.input_size();
        if recipe.cutout > crop {
            return Err(TrainError::Invalid(format!(
                "cutout {} is larger than the {crop}x{crop} input",
                recipe.cutout
            )));
        }
        let steps_per_epoch = recipe.steps_in_epoch(train_images)?;
        let sgd = Sgd::new(&net, recipe.momentum, recipe.nesterov, recipe.weight_decay);
        let ema = recipe
            .ema
            .map(|decay| Ema::new(&net, decay, device))
            .transpose()?;
        let augment = Augment::for_graph(net.graph(), recipe.cutout, recipe.jitter);
        Ok(Trainer {
            net,
            teacher,
            sgd,
            ema,
            recipe: recipe.clone(),
            augment,
            device,
            steps_per_epoch,
            step: 0,
            epoch: 0,
            history: vec![],
        })
    }

    /// The net that is evaluated and exported: the moving average if there
    /// is one, else the live net.
    pub fn model(&self) -> &Net {
        self.ema.as_ref().map_or(&self.net, Ema::net)
    }

    /// Optimiser steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        let total = (self.recipe.epochs * self.steps_per_epoch) as u64;
        self.recipe.schedule.lr(
            self.recipe.lr,
            self.step,
            self.steps_per_epoch as u64,
            total,
        )
    }

    /// One optimiser step on standardised `images` `[N,3,crop,crop]` with
    /// their `labels`, at the schedule's learning rate.
    pub fn step(
        &mut self,
        images: &Tensor,
        labels: &Tensor,
        hooks: &mut dyn Hooks,
    ) -> Result<StepResult, TrainError> {
        let lr = self.lr();
        let logits = self.net.forward_t(images, true);
        let mut loss = logits.cross_entropy_loss::<Tensor>(
            labels,
            None,
            Reduction::Mean,
            -100,
            self.recipe.label_smoothing,
        );
        if let Some(teacher) = &self.teacher {
            loss = teacher.loss(images, &logits, loss);
        }
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged {
                epoch: self.epoch + 1,
                step: self.step,
                loss: loss_value,
            });
        }
        self.sgd.zero_grad();
        loss.backward();
        self.sgd.step(lr);
        if let Some(ema) = &self.ema {
            ema.update(&self.net, self.step);
        }
        self.step += 1;
        hooks.after_step(&self.net, self.ema.as_ref().map(Ema::net));
        let correct = logits
            .argmax(-1, false)
            .eq_tensor(labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
        Ok(StepResult {
            loss: loss_value,
            correct,
            lr,
        })
    }

    /// Trains on one shuffled, augmented pass over `data`. The pass's
    /// randomness (order, augmentation, dropout) depends only on the seed and
    /// the epoch, so a resumed run repeats an unbroken one.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        hooks: &mut dyn Hooks,
    ) -> Result<EpochStats, TrainError> {
        let epoch = self.epoch;
        tch::manual_seed((self.recipe.seed + epoch as u64) as i64);
        let (steps, batch, pre) = (
            self.steps_per_epoch,
            self.recipe.batch,
            self.net.graph().preprocess,
        );
        hooks.epoch_started(epoch + 1, self.recipe.epochs, steps);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen, mut lr) = (0.0, 0i64, 0usize, 0.0);
        let augment = self.augment;
        for_each_batch(
            data,
            &augment,
            batch,
            steps,
            epoch_rng(self.recipe.seed, epoch),
            |b| {
                let (images, labels) = b.to_tensors(&pre, self.device);
                let result = self.step(&images, &labels, hooks)?;
                loss_sum += result.loss * batch as f64;
                correct += result.correct;
                seen += batch;
                lr = result.lr;
                hooks.progress(&Progress {
                    epoch: epoch + 1,
                    step: seen / batch,
                    steps,
                    loss: loss_sum / seen as f64,
                    accuracy: correct as f64 / seen as f64,
                    images_per_sec: seen as f64 / started.elapsed().as_secs_f64(),
                    lr,
                });
                Ok::<(), TrainError>(())
            },
        )?;
        self.epoch += 1;
        Ok(EpochStats {
            loss: loss_sum / seen as f64,
            accuracy: correct as f64 / seen as f64,
            lr,
        })
    }

    /// Refuses an epoch (the last one trained) that sat at chance after the
    /// warm-up: a net whose ReLUs died never recovers, and training on
    /// would only burn hours. The checkpoint of the epoch before is kept.
    pub fn check_alive(&self, stats: &EpochStats, classes: usize) -> Result<(), TrainError> {
        let warmup = self.recipe.schedule.warmup_epochs().unwrap_or(0.0);
        let chance = (classes as f64).ln();
        let at_chance =
            (stats.loss - chance).abs() < CHANCE_MARGIN && stats.accuracy < 1.5 / classes as f64;
        if classes > 1 && self.epoch as f64 > warmup && at_chance {
            return Err(TrainError::Collapsed {
                epoch: self.epoch,
                loss: stats.loss,
                classes,
            });
        }
        Ok(())
    }

    /// Loss and accuracy of [`Trainer::model`] on `data`.
    pub fn evaluate(&self, data: &Dataset) -> Evaluation {
        evaluate(self.model(), data, self.device)
    }

    /// Every tensor a resumed run needs, by checkpoint name.
    fn tensors(&self) -> Vec<(String, Tensor)> {
        let named =
            |prefix: &str, name: &str, t: &Tensor| (format!("{prefix}{name}"), t.shallow_clone());
        let mut out: Vec<(String, Tensor)> = self
            .net
            .params()
            .map(|(s, t)| named(PARAM, &s.name, t))
            .collect();
        out.extend(self.sgd.buffers().map(|(name, t)| named(MOMENTUM, name, t)));
        if let Some(ema) = &self.ema {
            out.extend(ema.net().params().map(|(s, t)| named(EMA, &s.name, t)));
        }
        out
    }

    /// Writes the checkpoint.
    pub fn save(&self, path: &std::path::Path) -> Result<(), TrainError> {
        let state = State {
            recipe: self.recipe.clone(),
            graph: self.net.graph().to_json(),
            epoch: self.epoch,
            step: self.step,
            history: self.history.clone(),
        };
        checkpoint::save(path, &state, &self.tensors())
    }

    /// Takes up the run saved at `path`, which must be of this recipe and net.
    pub fn resume(&mut self, path: &std::path::Path) -> Result<(), TrainError> {
        let (state, saved) = checkpoint::load(path, &self.recipe, &self.net.graph().to_json())?;
        for (name, tensor) in self.tensors() {
            let value = saved.get(&name).ok_or_else(|| TrainError::Checkpoint {
                path: path.to_path_buf(),
                why: format!("'{name}' is missing"),
            })?;
            tch::no_grad(|| tensor.shallow_clone().f_copy_(value))?;
        }
        (self.epoch, self.step, self.history) = (state.epoch, state.step, state.history);
        Ok(())
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub steps: u64,
    pub history: Vec<EpochLog>,
    /// The final figure on the test split; `None` if the run was told not to
    /// test, or if a hook stopped it early, in which case no model was written.
    pub test: Option<Evaluation>,
    pub outputs: Outputs,
}

/// Trains `net` under `recipe` on `data`: validation, checkpoint and CSV log
/// every epoch, then the test figure and the ONNX export of the model.
pub fn train(
    net: Net,
    data: &Data,
    recipe: &Recipe,
    run: &Run,
    hooks: &mut dyn Hooks,
) -> Result<Outcome, TrainError> {
    let outputs = Outputs::beside(&run.out)?;
    let mut trainer = Trainer::new(net, recipe, &data.train, run.device)?;
    if run.resume {
        trainer.resume(&outputs.checkpoint)?;
    }
    while trainer.epoch < recipe.epochs {
        let started = Instant::now();
        let stats = trainer.train_epoch(&data.train, hooks)?;
        trainer.check_alive(&stats, data.train.classes.len())?;
        let val = trainer.evaluate(&data.val);
        let log = EpochLog::new(trainer.epoch, &stats, &val, started.elapsed().as_secs_f64());
        trainer.history.push(log.clone());
        trainer.save(&outputs.checkpoint)?;
        models::atomic::write_atomic(&outputs.log, history::to_csv(&trainer.history).as_bytes())?;
        if hooks.epoch_ended(&log).is_break() {
            return Ok(Outcome {
                steps: trainer.step,
                history: trainer.history,
                test: None,
                outputs,
            });
        }
    }
    let test = run.test.then(|| trainer.evaluate(&data.test));
    let mut meta = Metadata::new(trainer.model().graph(), data.test.classes.clone());
    meta.dataset = Some(match (test, recipe.limits.test) {
        (Some(test), Some(_)) => format!(
            "CIFAR-10 (test figure on the first {} test images)",
            test.images
        ),
        (None, _) => "CIFAR-10 (not tested)".into(),
        (Some(_), None) => "CIFAR-10".into(),
    });
    meta.training_steps = Some(trainer.step);
    meta.test_accuracy = test.map(|t| t.accuracy);
    meta.command = Some(run.command.clone());
    export_onnx(&outputs.model, trainer.model(), &meta)?;
    Ok(Outcome {
        steps: trainer.step,
        history: trainer.history,
        test,
        outputs,
    })
}
