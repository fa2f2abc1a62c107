//! `compress prune`: gradual magnitude pruning. The kernels' smallest
//! weights are zeroed step by step while the net is fine-tuned in libtorch
//! by the trainer's own loop; between pruning steps the masks are held fixed
//! by re-applying them after every optimiser step (live net and moving
//! average), so a pruned weight stays exactly zero whatever momentum or
//! weight decay would do to it.

pub mod magnitude;
pub mod schedule;
pub mod thin;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use models::onnx::proto::ModelProto;
use models::onnx::{read_weights, FrozenModel, Metadata};
use models::{Graph, ModelError, ParamRole, Weights};
use serde_json::json;
use tch::{Device, Tensor};
use trainer::batch_norm::{renormed, BatchNorm};
use trainer::data::Data;
use trainer::history::EpochLog;
use trainer::progress::{ConsoleProgress, Stepped};
use trainer::train::{evaluate, Evaluation, Hooks, Recipe, Trainer};
use trainer::Net;

pub use magnitude::Scope;
pub use schedule::{PruneSchedule, Ramp};
pub use thin::{Norm, Width};

use crate::sparse_storage::store_sparse_noted;
use crate::stages::then;
use crate::CompressError;

/// The command-line name of an option's value, for messages and metadata.
pub fn name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Metadata key of the pruning details (JSON): sparsity per layer and
/// accuracy before and after.
pub const PRUNING_KEY: &str = "pruning";
/// Share of fine-tuning over which pruning is spread unless `frequency` is
/// given; the rest lets the net recover from the last step.
const PRUNING_SHARE: f64 = 2.0 / 3.0;

/// How to prune a model.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub ramp: Ramp,
    pub initial: f64,
    pub target: f64,
    /// Pruning steps after the first (`n`).
    pub steps: u64,
    /// Optimiser steps between pruning steps (`Δt`); `None` spreads them
    /// over the first two thirds of fine-tuning.
    pub frequency: Option<u64>,
    pub scope: Scope,
    /// Remove whole filters ranked by this norm, `target` of each layer's,
    /// once before fine-tuning, instead of single weights.
    pub structured: Option<Norm>,
    /// Layers left dense; `None` leaves the first and the last (the
    /// classifier), which cost the most accuracy per weight.
    pub exclude: Option<Vec<String>>,
    /// The batch norms fine-tuning puts back (folded again on export).
    pub batch_norm: BatchNorm,
    /// The fine-tuning run.
    pub recipe: Recipe,
    pub device: Device,
}

/// The kernels `exclude` leaves to prune, and the layers it leaves dense.
/// An excluded name that is not a layer with a kernel is an error.
pub fn prunable(
    graph: &Graph,
    exclude: Option<&[String]>,
) -> Result<(Vec<String>, Vec<String>), CompressError> {
    let kernels: Vec<(String, String)> = graph
        .params()?
        .into_iter()
        .filter(|p| p.role == ParamRole::Weight)
        .map(|p| (graph.nodes[p.node].name.clone(), p.name))
        .collect();
    let excluded: Vec<String> = match exclude {
        None => {
            let ends = [kernels.first(), kernels.last()];
            let mut ends: Vec<String> = ends
                .into_iter()
                .flatten()
                .map(|(layer, _)| layer.clone())
                .collect();
            ends.dedup();
            ends
        }
        Some(names) => {
            let mut layers = Vec::new();
            for name in names.iter().filter(|n| n.as_str() != "none") {
                let layer = name.strip_suffix(".weight").unwrap_or(name);
                if !kernels.iter().any(|(l, _)| l == layer) {
                    let known: Vec<&str> = kernels.iter().map(|(l, _)| l.as_str()).collect();
                    return Err(CompressError::Invalid(format!(
                        "--exclude {name}: no layer of that name has a kernel (layers: {})",
                        known.join(", ")
                    )));
                }
                layers.push(layer.to_string());
            }
            layers
        }
    };
    let pruned = kernels
        .into_iter()
        .filter(|(l, _)| !excluded.contains(l))
        .map(|(_, k)| k)
        .collect();
    Ok((pruned, excluded))
}

/// Accuracy on the validation and test splits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub val: Evaluation,
    pub test: Evaluation,
}

/// One kernel's share of zeros in the result.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSparsity {
    pub kernel: String,
    pub values: usize,
    pub zeros: usize,
}

/// A pruned model and what pruning did.
pub struct Pruned {
    pub proto: ModelProto,
    pub meta: Metadata,
    pub before: Accuracy,
    pub after: Accuracy,
    /// Every kernel, pruned or not.
    pub layers: Vec<LayerSparsity>,
    pub excluded: Vec<String>,
    /// Zeros over values of the pruned kernels.
    pub sparsity: f64,
    /// The unstructured schedule; `None` when thinned.
    pub schedule: Option<PruneSchedule>,
    /// The thinned layers' widths.
    pub widths: Vec<Width>,
    /// Multiply-accumulates per image before and after.
    pub macs: (usize, usize),
    /// Optimiser steps of fine-tuning.
    pub steps: u64,
    /// Kernels stored as values and gaps.
    pub stored_sparse: Vec<String>,
}

/// Prunes `model` to `options.target` while fine-tuning it on `data`,
/// showing progress on stderr.
pub fn prune(
    model: &FrozenModel,
    data: &Data,
    options: &PruneOptions,
) -> Result<Pruned, CompressError> {
    crate::stages::for_pruning(model)?;
    let graph = model.layer_graph()?;
    let (kernels, excluded) = prunable(&graph, options.exclude.as_deref())?;
    let recipe = &options.recipe;
    let total = (recipe.epochs * recipe.steps_in_epoch(data.train.len())?) as u64;
    check_sparsities(options)?;

    let device = options.device;
    let weights = read_weights(&model.proto, &graph)?;
    let mut net = Net::fresh(&graph, device)?;
    net.load_weights(&weights)?;
    let before = Accuracy {
        val: evaluate(&net, &data.val, device),
        test: evaluate(&net, &data.test, device),
    };
    let dense = if excluded.is_empty() {
        "none".into()
    } else {
        excluded.join(", ")
    };
    eprintln!(
        "before pruning: validation accuracy {:.2}%, test {:.2}%; left dense: {dense}",
        100.0 * before.val.accuracy,
        100.0 * before.test.accuracy,
    );
    let macs_before = models::cost(&graph)?.macs;
    let (graph, weights, kernels, schedule, widths) = match options.structured {
        Some(norm) => {
            let (thinner, weights, widths) =
                thin::thin(&graph, &weights, options.target, norm, &excluded)?;
            net = Net::fresh(&thinner, device)?;
            net.load_weights(&weights)?;
            eprintln!(
                "thinned {} convolutions by {:.0}% of their filters ({} norm): validation accuracy {:.2}% before fine-tuning",
                widths.len(),
                100.0 * options.target,
                name(norm),
                100.0 * evaluate(&net, &data.val, device).accuracy
            );
            (thinner, weights, vec![], None, widths)
        }
        None => {
            let schedule = schedule(options, total)?;
            eprintln!(
                "pruning {} kernels to {:.1}% ({} schedule, {} scope, {} steps every {} of {total} optimiser steps)",
                kernels.len(),
                100.0 * schedule.target,
                name(schedule.ramp),
                name(options.scope),
                schedule.steps,
                schedule.frequency,
            );
            (graph, weights, kernels, Some(schedule), vec![])
        }
    };
    if options.batch_norm != BatchNorm::Off {
        net = renormed(&graph, &weights, options.batch_norm, &data.train, device)?;
    }

    let mut pruner = Pruner {
        masks: Masks {
            kernels: kernels.clone(),
            scope: options.scope,
            device,
            keep: HashMap::new(),
        },
        schedule,
        step: 0,
        error: None,
    };
    let mut console = ConsoleProgress::default();
    if let Some(sparsity) = schedule.and_then(|s| s.at(0)) {
        pruner.prune(&console, &net, sparsity)?;
    }
    let mut trainer = Trainer::new(net, recipe, &data.train, device)?;
    for epoch in 1..=recipe.epochs {
        let started = Instant::now();
        let mut hooks = Stepped {
            console: &mut console,
            step: |console: &ConsoleProgress, net: &Net, ema: Option<&Net>| {
                pruner.after_step(console, net, ema)
            },
        };
        let stats = trainer.train_epoch(&data.train, &mut hooks)?;
        if let Some(e) = pruner.error.take() {
            return Err(e.into());
        }
        let val = trainer.evaluate(&data.val);
        let log = EpochLog::new(epoch, &stats, &val, started.elapsed().as_secs_f64());
        let _ = console.epoch_ended(&log);
    }
    let after = Accuracy {
        val: trainer.evaluate(&data.val),
        test: trainer.evaluate(&data.test),
    };

    let (graph, weights) =
        models::fold::fold_batchnorm(trainer.model().graph(), &trainer.model().weights()?)?;
    let layers = sparsity_by_kernel(&graph, &weights)?;
    let pruned: Vec<&LayerSparsity> = layers
        .iter()
        .filter(|l| kernels.contains(&l.kernel))
        .collect();
    let sparsity = pruned.iter().map(|l| l.zeros).sum::<usize>() as f64
        / pruned.iter().map(|l| l.values).sum::<usize>().max(1) as f64;

    let macs = (macs_before, models::cost(&graph)?.macs);
    let accuracy = format!(
        "validation accuracy {:.2}% -> {:.2}%, test {:.2}% -> {:.2}%",
        100.0 * before.val.accuracy,
        100.0 * after.val.accuracy,
        100.0 * before.test.accuracy,
        100.0 * after.test.accuracy,
    );
    let mut details = json!({
        "excluded": excluded,
        "fine_tuning_steps": trainer.steps(),
        "macs_before": macs.0,
        "macs_after": macs.1,
        "val_accuracy_before": before.val.accuracy,
        "val_accuracy_after": after.val.accuracy,
        "test_accuracy_before": before.test.accuracy,
        "test_accuracy_after": after.test.accuracy,
    });
    let mut meta = model.meta.clone();
    meta.test_accuracy = Some(after.test.accuracy);
    match (schedule, options.structured) {
        (Some(schedule), _) => {
            meta.variant = then(&meta.variant, &format!("p{:.0}", 100.0 * sparsity));
            meta.compression.push(format!(
                "prune: {:.1}% of the weights of {} kernels zero ({} magnitude, {} schedule, {} pruning steps over {} \
                 fine-tuning steps); {accuracy}",
                100.0 * sparsity,
                pruned.len(),
                name(options.scope),
                name(schedule.ramp),
                schedule.steps,
                trainer.steps(),
            ));
            let per_layer: BTreeMap<&str, f64> = layers
                .iter()
                // Four places: every stored file carries the map.
                .map(|l| {
                    let share = l.zeros as f64 / l.values.max(1) as f64;
                    (l.kernel.as_str(), (share * 1e4).round() / 1e4)
                })
                .collect();
            details["method"] = json!("magnitude");
            details["scope"] = json!(name(options.scope));
            details["schedule"] = json!(name(schedule.ramp));
            details["initial_sparsity"] = json!(schedule.initial);
            details["target_sparsity"] = json!(schedule.target);
            details["pruning_steps"] = json!(schedule.steps);
            details["frequency"] = json!(schedule.frequency);
            details["sparsity"] = json!(sparsity);
            details["layers"] = json!(per_layer);
        }
        (None, norm) => {
            meta.variant = then(&meta.variant, &format!("thin{:.0}", 100.0 * options.target));
            meta.compression.push(format!(
                "thin: {:.0}% of the filters of {} convolutions removed ({} norm), MACs {} -> {}, then {} fine-tuning steps; {accuracy}",
                100.0 * options.target,
                widths.len(),
                norm.map_or_else(String::new, name),
                macs.0,
                macs.1,
                trainer.steps(),
            ));
            let per_layer: BTreeMap<&str, [usize; 2]> = widths
                .iter()
                .map(|w| (w.layer.as_str(), [w.before, w.kept.len()]))
                .collect();
            details["method"] = json!("filters");
            details["norm"] = json!(norm.map(name));
            details["widths"] = json!(per_layer);
        }
    }
    meta.extra.insert(PRUNING_KEY.into(), details.to_string());
    let mut proto = models::onnx::encode(&graph, &weights, &meta)?;
    let all_kernels: BTreeSet<String> = layers.iter().map(|l| l.kernel.clone()).collect();
    let stored_sparse = store_sparse_noted(&mut proto, &all_kernels, &mut meta, &graph).kernels;
    Ok(Pruned {
        proto,
        meta,
        before,
        after,
        layers,
        excluded,
        sparsity,
        schedule,
        widths,
        macs,
        steps: trainer.steps(),
        stored_sparse,
    })
}

/// Refuses sparsities outside `0 <= initial <= target < 1`.
fn check_sparsities(options: &PruneOptions) -> Result<(), CompressError> {
    if !(0.0..1.0).contains(&options.target) || !(0.0..=options.target).contains(&options.initial) {
        return Err(CompressError::Invalid(format!(
            "sparsities must satisfy 0 <= initial ({}) <= target ({}) < 1",
            options.initial, options.target
        )));
    }
    Ok(())
}

/// The schedule of `options` over `total` optimiser steps, checking that its
/// last pruning step falls within them.
fn schedule(options: &PruneOptions, total: u64) -> Result<PruneSchedule, CompressError> {
    let bad = |why: String| Err(CompressError::Invalid(why));
    if options.steps == 0 || options.frequency == Some(0) {
        return bad("--steps and --frequency must be at least 1".into());
    }
    let spread = ((total as f64 * PRUNING_SHARE) as u64 / options.steps).max(1);
    let schedule = PruneSchedule {
        ramp: options.ramp,
        initial: options.initial,
        target: options.target,
        steps: options.steps,
        frequency: options.frequency.unwrap_or(spread),
    };
    if schedule.end() > total {
        return bad(format!(
            "{} pruning steps every {} optimiser steps need {}, but fine-tuning has {total}; \
             lower --steps or --frequency, or raise --epochs",
            schedule.steps,
            schedule.frequency,
            schedule.end()
        ));
    }
    Ok(schedule)
}

/// Zeros and values of every kernel of `weights`.
pub fn sparsity_by_kernel(
    graph: &Graph,
    weights: &Weights,
) -> Result<Vec<LayerSparsity>, ModelError> {
    Ok(graph
        .params()?
        .into_iter()
        .filter(|p| p.role == ParamRole::Weight)
        .map(|p| {
            let data = &weights[&p.name].data;
            LayerSparsity {
                zeros: data.iter().filter(|v| **v == 0.0).count(),
                values: data.len(),
                kernel: p.name,
            }
        })
        .collect())
}

/// Keep-masks of the pruned kernels, as 0/1 tensors on the net's device.
struct Masks {
    kernels: Vec<String>,
    scope: Scope,
    device: Device,
    keep: HashMap<String, Tensor>,
}

impl Masks {
    /// New masks that prune `sparsity` of the kernels of `net` by magnitude.
    /// Returns the share of zeros they make. The magnitudes are those of the
    /// kernels with their batch norms folded in, as the output will hold
    /// them: a norm makes its kernel's own scale meaningless (weight decay
    /// shrinks it freely), which would skew one threshold over all layers.
    fn prune_to(&mut self, net: &Net, sparsity: f64) -> Result<f64, ModelError> {
        let (_, weights) = models::fold::fold_batchnorm(net.graph(), &net.weights()?)?;
        let tensors: Vec<&[f32]> = self
            .kernels
            .iter()
            .map(|k| weights[k].data.as_slice())
            .collect();
        let keep = magnitude::masks(&tensors, sparsity, self.scope);
        let (mut zeros, mut values) = (0, 0);
        for (kernel, keep) in self.kernels.iter().zip(keep) {
            zeros += keep.iter().filter(|k| !**k).count();
            values += keep.len();
            let shape: Vec<i64> = weights[kernel].shape.iter().map(|&d| d as i64).collect();
            let ones: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
            self.keep.insert(
                kernel.clone(),
                Tensor::from_slice(&ones)
                    .view(&shape[..])
                    .to_device(self.device),
            );
        }
        Ok(zeros as f64 / values.max(1) as f64)
    }

    /// Zeroes the pruned weights of `net`.
    fn apply(&self, net: &Net) {
        tch::no_grad(|| {
            for (spec, tensor) in net.params() {
                if let Some(keep) = self.keep.get(&spec.name) {
                    let _ = tensor.shallow_clone().g_mul_(keep);
                }
            }
        });
    }
}

/// What pruning does after every optimiser step: prune on schedule and
/// hold the masks.
struct Pruner {
    masks: Masks,
    /// `None` when nothing is pruned during fine-tuning.
    schedule: Option<PruneSchedule>,
    /// Optimiser steps taken.
    step: u64,
    /// A failure inside a hook, which cannot return one.
    error: Option<ModelError>,
}

impl Pruner {
    /// A pruning step at the current step: new masks, applied to `net`,
    /// noted on `console`.
    fn prune(
        &mut self,
        console: &ConsoleProgress,
        net: &Net,
        target: f64,
    ) -> Result<(), ModelError> {
        let Some(schedule) = self.schedule else {
            return Ok(());
        };
        let reached = self.masks.prune_to(net, target)?;
        self.masks.apply(net);
        let (k, n) = match schedule.ramp {
            Ramp::Oneshot => (0, 0),
            _ => (self.step / schedule.frequency.max(1), schedule.steps),
        };
        console.note(&format!(
            "pruning step {k}/{n} at optimiser step {}: sparsity {:.1}% (target {:.1}%)",
            self.step,
            100.0 * reached,
            100.0 * target
        ));
        Ok(())
    }

    /// After every optimiser step: prune on schedule, hold the masks.
    fn after_step(&mut self, console: &ConsoleProgress, net: &Net, ema: Option<&Net>) {
        self.step += 1;
        if let Some(target) = self.schedule.and_then(|s| s.at(self.step)) {
            if let Err(e) = self.prune(console, net, target) {
                self.error.get_or_insert(e);
            }
        }
        self.masks.apply(net);
        if let Some(ema) = ema {
            self.masks.apply(ema);
        }
    }
}
