//! `compress share`: fine-tuning shared weights, Deep Compression's trained
//! quantization (Han et al., 2016). Each kernel's weights are clustered
//! once into a codebook of at most 2^b entries; then, while the trainer's
//! loop fine-tunes the net, every optimiser step is followed by moving each
//! entry to the mean of its weights and setting every weight to its entry,
//! so the gradient of an entry is its weights' gradients together.
//!
//! The entries are int8 levels under per-output-channel scales, what static
//! int8 stores (`onnx_util::quantize_per_channel`), so that `compress
//! quantize --weight-bits b` of the output finds these codebooks again,
//! exactly. Two things make that hold. Each channel's largest weight
//! belongs to an entry pinned at -127 or 127, so the channel's int8 scale
//! is the one the entries were measured in. And a batch norm's scale,
//! folded into the kernel on output, only rescales channels, which the
//! per-channel scales undo, bar its sign, which the entries are measured
//! under. Zero is a pinned entry too: pruned weights stay zero.

use std::collections::HashMap;
use std::time::Instant;

use models::onnx::proto::ModelProto;
use models::onnx::sparse::Element;
use models::onnx::{read_weights, FrozenModel, Metadata};
use models::ParamRole;
use serde_json::json;
use tch::{Device, Kind, Tensor};
use trainer::batch_norm::{renormed, BatchNorm};
use trainer::data::Data;
use trainer::history::EpochLog;
use trainer::progress::{ConsoleProgress, Stepped};
use trainer::train::{evaluate, Hooks, Recipe, Trainer};
use trainer::Net;

use crate::codebook::{check_bits, cluster, Layers};
use crate::onnx_util::channel_scales;
use crate::prune::Accuracy;
use crate::sparse_storage::store_sparse_noted;
use crate::stages::then;
use crate::CompressError;

/// The int8 level a channel's largest weight takes.
const TOP: f64 = 127.0;

/// How to fine-tune shared weights.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    pub bits: u32,
    /// The layers whose kernels share (all by default).
    pub layers: Layers,
    pub batch_norm: BatchNorm,
    pub recipe: Recipe,
    pub device: Device,
}

/// A model with shared weights and what fine-tuning did.
pub struct Shared {
    pub proto: ModelProto,
    pub meta: Metadata,
    pub before: Accuracy,
    /// Right after clustering, before fine-tuning.
    pub clustered: Accuracy,
    pub after: Accuracy,
    /// The kernels that share, and the entries each uses.
    pub kernels: Vec<(String, usize)>,
    pub steps: u64,
}

/// Clusters the kernels of `model` into codebooks of `options.bits` and
/// fine-tunes the codebooks on `data`, showing progress on stderr.
pub fn share(
    model: &FrozenModel,
    data: &Data,
    options: &ShareOptions,
) -> Result<Shared, CompressError> {
    check_bits(options.bits)?;
    let model = &crate::stages::for_storage(model, "sharing")?;
    let graph = model.layer_graph()?;
    let device = options.device;
    let weights = read_weights(&model.proto, &graph)?;
    let mut net = Net::fresh(&graph, device)?;
    net.load_weights(&weights)?;
    let measure = |net: &Net| Accuracy {
        val: evaluate(net, &data.val, device),
        test: evaluate(net, &data.test, device),
    };
    let before = measure(&net);
    if options.batch_norm != BatchNorm::Off {
        net = renormed(&graph, &weights, options.batch_norm, &data.train, device)?;
    }
    let codebooks = Codebooks::new(&net, options)?;
    codebooks.apply(&net, false);
    let clustered = measure(&net);
    eprintln!(
        "{} kernels on codebooks of at most {} entries: validation accuracy {:.2}% -> {:.2}% before fine-tuning",
        codebooks.kernels.len(),
        1 << options.bits,
        100.0 * before.val.accuracy,
        100.0 * clustered.val.accuracy,
    );
    let recipe = &options.recipe;
    let mut trainer = Trainer::new(net, recipe, &data.train, device)?;
    let mut console = ConsoleProgress::default();
    for epoch in 1..=recipe.epochs {
        let started = Instant::now();
        let mut hooks = Stepped {
            console: &mut console,
            step: |_: &ConsoleProgress, net: &Net, ema: Option<&Net>| {
                codebooks.apply(net, false);
                if let Some(ema) = ema {
                    codebooks.apply(ema, false);
                }
            },
        };
        let stats = trainer.train_epoch(&data.train, &mut hooks)?;
        let val = trainer.evaluate(&data.val);
        let log = EpochLog::new(epoch, &stats, &val, started.elapsed().as_secs_f64());
        let _ = console.epoch_ended(&log);
    }
    // The entries become whole int8 levels, so that int8 stores them as
    // they are.
    codebooks.apply(trainer.model(), true);
    let after = measure(trainer.model());

    let (graph, weights) =
        models::fold::fold_batchnorm(trainer.model().graph(), &trainer.model().weights()?)?;
    let step = format!("tw{}", options.bits);
    let mut meta = model.meta.clone();
    meta.variant = then(&meta.variant, &step);
    meta.test_accuracy = Some(after.test.accuracy);
    meta.compression.push(format!(
        "{step}: {} kernels on k-means codebooks of at most {} int8 levels under per-channel scales, \
         fine-tuned for {} steps; validation accuracy {:.2}% -> {:.2}% clustered -> {:.2}% fine-tuned, \
         test {:.2}% -> {:.2}%",
        codebooks.kernels.len(),
        1 << options.bits,
        trainer.steps(),
        100.0 * before.val.accuracy,
        100.0 * clustered.val.accuracy,
        100.0 * after.val.accuracy,
        100.0 * before.test.accuracy,
        100.0 * after.test.accuracy,
    ));
    let kernels: Vec<(String, usize)> = codebooks
        .kernels
        .iter()
        .map(|k| (k.name.clone(), k.used))
        .collect();
    meta.extra.insert(
        SHARING_KEY.into(),
        json!({
            "bits": options.bits,
            "scales": "per output channel",
            "fine_tuning_steps": trainer.steps(),
            "val_accuracy_before": before.val.accuracy,
            "val_accuracy_clustered": clustered.val.accuracy,
            "val_accuracy_after": after.val.accuracy,
            "test_accuracy_before": before.test.accuracy,
            "test_accuracy_after": after.test.accuracy,
        })
        .to_string(),
    );
    let mut proto = models::onnx::encode(&graph, &weights, &meta)?;
    let all: std::collections::BTreeSet<String> = kernels.iter().map(|(k, _)| k.clone()).collect();
    store_sparse_noted(&mut proto, &all, &mut meta, &graph);
    Ok(Shared {
        proto,
        meta,
        before,
        clustered,
        after,
        kernels,
        steps: trainer.steps(),
    })
}

/// Metadata key of the sharing details (JSON).
pub const SHARING_KEY: &str = "sharing";

/// One kernel's codebook, in the units of its int8 levels.
struct Kernel {
    name: String,
    /// The batch norm scale whose signs flip the kernel's channels.
    norm: Option<String>,
    /// Each weight's entry, flat.
    entry: Tensor,
    /// Weights per entry, at least one (an empty entry is never read).
    counts: Tensor,
    /// Entries that hold weights.
    used: usize,
    /// Entries held where they are (zero, -127, 127), and their values.
    pinned: Tensor,
    pinned_values: Tensor,
    /// `[channels, 1]`: the weight of one int8 level in each channel, as
    /// static int8 measures it.
    scale: Tensor,
    channels: i64,
}

impl Kernel {
    /// Clusters `values` (of shape `shape`) into `bits`.
    fn new(
        name: &str,
        norm: Option<String>,
        values: &[f32],
        signs: &[f32],
        shape: &[usize],
        options: &ShareOptions,
    ) -> Kernel {
        let channels = shape[0];
        let per = values.len() / channels;
        let scale = channel_scales(values, channels);
        let mut levels: Vec<f64> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| signs[i / per] as f64 * v as f64 / scale[i / per] as f64)
            .collect();
        // Each channel's largest weight, exactly at its end of the range.
        let tops: Vec<usize> = (0..channels)
            .filter_map(|c| {
                let chunk = &levels[c * per..(c + 1) * per];
                let (i, v) = chunk
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
                (*v != 0.0).then_some(c * per + i)
            })
            .collect();
        for &i in &tops {
            levels[i] = TOP.copysign(levels[i]);
        }
        let coded = cluster(&levels, options.bits, Element::F32);
        let entries = coded.codebook.len();
        let mut pinned = vec![false; entries];
        let mut pinned_values = vec![0f32; entries];
        for (e, &v) in coded.codebook.iter().enumerate() {
            if v == 0.0 {
                pinned[e] = true;
            }
        }
        for &i in &tops {
            let e = coded.codes[i] as usize;
            pinned[e] = true;
            pinned_values[e] = levels[i] as f32;
        }
        let mut counts = vec![0f32; entries];
        for &c in &coded.codes {
            counts[c as usize] += 1.0;
        }
        let entry: Vec<i64> = coded.codes.iter().map(|&c| c as i64).collect();
        let device = options.device;
        Kernel {
            name: name.into(),
            norm,
            entry: Tensor::from_slice(&entry).to_device(device),
            used: counts.iter().filter(|&&n| n > 0.0).count(),
            counts: Tensor::from_slice(&counts).clamp_min(1.0).to_device(device),
            pinned: Tensor::from_slice(&pinned).to_device(device),
            pinned_values: Tensor::from_slice(&pinned_values).to_device(device),
            scale: Tensor::from_slice(&scale)
                .view([channels as i64, 1])
                .to_device(device),
            channels: channels as i64,
        }
    }

    /// Moves each entry to the mean of its weights in `kernel` (signs
    /// `signs`, `[channels, 1]`) and sets each weight to its entry, whole
    /// levels if `round`.
    fn project(&self, kernel: &Tensor, signs: &Tensor, round: bool) {
        let unit = &self.scale * signs;
        let levels = (kernel.view([self.channels, -1]) / &unit).flatten(0, -1);
        let sums = Tensor::zeros_like(&self.counts).index_add(0, &self.entry, &levels);
        let mut book =
            (sums / &self.counts).where_self(&self.pinned.logical_not(), &self.pinned_values);
        if round {
            book = book.round();
        }
        let shared = book.index_select(0, &self.entry).view([self.channels, -1]) * unit;
        kernel.shallow_clone().copy_(&shared.view_as(kernel));
    }
}

/// The codebooks of a net's shared kernels.
struct Codebooks {
    kernels: Vec<Kernel>,
}

impl Codebooks {
    fn new(net: &Net, options: &ShareOptions) -> Result<Codebooks, CompressError> {
        let graph = net.graph();
        let specs = graph.params()?;
        // The batch norm (its scale) that follows each layer, if any.
        let norms: HashMap<usize, String> = specs
            .iter()
            .filter(|p| p.role == ParamRole::NormScale)
            .map(|p| (graph.nodes[p.node].inputs[0], p.name.clone()))
            .collect();
        let weights = net.weights()?;
        let all = specs.iter().filter(|p| p.role == ParamRole::Weight);
        options
            .layers
            .check(&all.map(|p| p.name.clone()).collect())?;
        let kernels = specs
            .iter()
            .filter(|p| p.role == ParamRole::Weight && options.layers.take(&p.name))
            .map(|p| {
                let norm = norms.get(&p.node).cloned();
                let signs = match &norm {
                    Some(n) => weights[n].data.iter().map(|&g| sign(g)).collect(),
                    None => vec![1.0; p.shape[0]],
                };
                Kernel::new(
                    &p.name,
                    norm,
                    &weights[&p.name].data,
                    &signs,
                    &p.shape,
                    options,
                )
            })
            .collect::<Vec<_>>();
        if kernels.is_empty() {
            return Err(CompressError::Invalid(
                "no kernel of the model's layers is to share".into(),
            ));
        }
        Ok(Codebooks { kernels })
    }

    /// Puts every shared kernel of `net` on its codebook.
    fn apply(&self, net: &Net, round: bool) {
        let params: HashMap<&str, &Tensor> =
            net.params().map(|(s, t)| (s.name.as_str(), t)).collect();
        tch::no_grad(|| {
            for k in &self.kernels {
                let signs = match &k.norm {
                    Some(n) => {
                        let positive = params[n.as_str()].ge(0.0).to_kind(Kind::Float);
                        (positive * 2.0 - 1.0).view([k.channels, 1])
                    }
                    None => Tensor::ones([k.channels, 1], (Kind::Float, k.scale.device())),
                };
                k.project(params[k.name.as_str()], &signs, round);
            }
        });
    }
}

/// A batch norm scale's sign, zero counted as positive.
fn sign(g: f32) -> f32 {
    if g < 0.0 {
        -1.0
    } else {
        1.0
    }
}
