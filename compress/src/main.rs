//! `compress`: ONNX in, ONNX out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use compress::calibrate::{calibrate, Method};
use compress::data::DataDir;
use compress::prune::{Norm, PruneOptions, Ramp, Scope};
use compress::quantize::{Activations, Options};
use prost::Message;
use trainer::batch_norm::BatchNorm;
use trainer::device::DeviceChoice;

#[derive(Parser)]
#[command(
    version,
    about = "Compress frozen squeezebox models: ONNX in, ONNX out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn a standard ONNX image classifier (torch.onnx.export's, say)
    /// into a squeezebox model that takes raw pixels, with its
    /// normalisation in the graph, its labels and its layer graph.
    Import {
        /// The ONNX classifier to read: one float [N,3,H,W] input.
        model: PathBuf,
        /// Where to write the squeezebox model.
        #[arg(short, long)]
        output: PathBuf,
        /// Per-channel mean of the training pictures on a 0-1 scale, R,G,B
        /// (torchvision's convention; ImageNet's is 0.485,0.456,0.406).
        #[arg(long, value_name = "R,G,B", value_parser = cmdline::channels)]
        mean: cmdline::Channels,
        /// Per-channel standard deviation on a 0-1 scale, R,G,B (ImageNet's
        /// is 0.229,0.224,0.225).
        #[arg(long, value_name = "R,G,B", value_parser = cmdline::positive_channels)]
        std: cmdline::Channels,
        /// Class names, one per line, as many as the model's outputs
        /// [default: the class numbers].
        #[arg(long, value_name = "FILE")]
        labels: Option<PathBuf>,
        /// The architecture's name in the metadata [default: the file's
        /// name without .onnx].
        #[arg(long)]
        arch: Option<String>,
    },
    /// Store the weights as float16 (half the bytes), computing in float32.
    /// The same as `quantize --fp16`.
    Fp16 {
        /// The f32 model to read.
        model: PathBuf,
        /// Where to write the fp16 model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Quantize to int8: static (calibrated activations, integer kernels),
    /// or weight storage only (--weights-only, --fp16).
    Quantize {
        /// The f32 model to read.
        model: PathBuf,
        /// Where to write the quantized model.
        #[arg(short, long)]
        output: PathBuf,
        /// CIFAR-10 (directory or .tar.gz) whose training split calibrates
        /// the activations, or a folder of pictures (DIR/CLASS/*.png or
        /// loose) at the model's size. Required for static int8.
        #[arg(long, value_name = "DIR")]
        calib: Option<PathBuf>,
        /// How many training images calibrate.
        #[arg(long, value_name = "N", default_value_t = 500)]
        calib_images: usize,
        /// How ranges are chosen: minmax, percentile (99.99%) or entropy (KL).
        #[arg(long, default_value = "minmax")]
        method: String,
        /// 8-bit type of the activations: i8 (zero point -128 after a ReLU)
        /// or u8 (zero point 0).
        #[arg(long, default_value = "i8")]
        activations: String,
        /// One weight scale per layer instead of per output channel.
        #[arg(long)]
        per_tensor: bool,
        /// Store the kernels as int8 and compute in float (about 4x smaller).
        #[arg(long, conflicts_with = "fp16")]
        weights_only: bool,
        /// Store the weights as float16 and compute in float (2x smaller).
        #[arg(long)]
        fp16: bool,
        /// Then share each kernel's values: a k-means codebook of at most
        /// 2^B entries and packed B-bit codes (2-8).
        #[arg(long, value_name = "B", value_parser = clap::value_parser!(u32).range(2..=8))]
        weight_bits: Option<u32>,
        /// With --weight-bits: share only these layers' kernels, by name
        /// (conv10) or kind (expand3x3: every fire module's), comma-separated;
        /// the others keep their values [default: every layer].
        #[arg(
            long,
            value_name = "LAYERS",
            value_delimiter = ',',
            requires = "weight_bits"
        )]
        share_only: Vec<String>,
    },
    /// Layer-by-layer error (SQNR) of a compressed model against its float
    /// original, on CIFAR-10 validation images.
    Compare {
        /// The float model.
        a: PathBuf,
        /// Its compressed version.
        b: PathBuf,
        /// CIFAR-10 (directory or .tar.gz).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// How many validation images.
        #[arg(long, value_name = "N", default_value_t = 200)]
        images: usize,
    },
    /// Gradual magnitude pruning with fine-tuning (libtorch); the pruned
    /// kernels are stored without their zeros.
    #[command(args_override_self = true)]
    Prune(Box<PruneArgs>),
    /// Weight sharing fine-tuned (Deep Compression's trained quantization):
    /// each kernel's weights on a k-means codebook of at most 2^B int8
    /// levels, the codebooks fine-tuned in libtorch. The output is a float
    /// file that `quantize --weight-bits B` stores exactly.
    #[command(args_override_self = true)]
    Share(Box<ShareArgs>),
    /// Accuracy of the model with each layer alone pruned by magnitude, at
    /// several sparsities, without fine-tuning.
    Sensitivity {
        /// The model to read.
        model: PathBuf,
        /// CIFAR-10 (directory or .tar.gz) whose validation split measures,
        /// or a folder of labelled pictures, read at the model's size:
        /// DIR/val/CLASS/*.png if there is a DIR/train, else every 10th
        /// picture of each DIR/CLASS/. A class folder is named as one of the
        /// model's labels, or by its class number.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// How many validation images.
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cmdline::count::<u64>())]
        images: u64,
        /// Sparsities to try, comma-separated, each in [0, 1).
        #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75,0.9", value_parser = fraction)]
        sparsities: Vec<f64>,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
        /// Also draw the curves, one per layer, into this PNG file.
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
        /// auto, cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: DeviceChoice,
        /// libtorch CPU threads [default: all cores].
        #[arg(long, value_parser = cmdline::count::<u64>())]
        threads: Option<u64>,
    },
}

/// The fine-tuning of `prune` and `share`: the trainer's loop on a data set.
#[derive(Args)]
struct FineTuneArgs {
    /// CIFAR-10 (directory or .tar.gz): training split to fine-tune on,
    /// validation and test splits to measure. Or a folder of labelled
    /// pictures, read at the model's size: DIR/train, DIR/val and DIR/test
    /// (else val again) of DIR/SPLIT/CLASS/*.png; without DIR/train and
    /// DIR/val, DIR/CLASS/*.png with every 10th picture of each class held
    /// out for validation and test. A class folder is named as one of the
    /// model's labels, or by its class number.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Epochs of fine-tuning.
    #[arg(long, default_value_t = 3, value_parser = cmdline::count::<u64>())]
    epochs: u64,
    /// Batch norms to train with, folded away again on output, set at first
    /// so that the net computes what the file does: after each convolution
    /// (conv), also after each hidden dense layer (all), or none (off). A net
    /// trained with batch norm diverges when fine-tuned without it.
    #[arg(long, value_enum, default_value = "conv")]
    batch_norm: BatchNorm,
    /// Peak learning rate of fine-tuning (cosine decay to 0).
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    #[arg(long, default_value_t = 128, value_parser = cmdline::count::<u64>())]
    batch: u64,
    /// Moving-average decay of the weights, then what is measured and
    /// written [default: off].
    #[arg(long)]
    ema: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Cap the optimiser steps of an epoch.
    #[arg(long, value_parser = cmdline::count::<u64>())]
    steps_per_epoch: Option<u64>,
    /// Use only the first N training images.
    #[arg(long, value_name = "N", value_parser = cmdline::count::<u64>())]
    train_limit: Option<u64>,
    /// Use only the first N validation images.
    #[arg(long, value_name = "N", value_parser = cmdline::count::<u64>())]
    val_limit: Option<u64>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N", value_parser = cmdline::count::<u64>())]
    test_limit: Option<u64>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// libtorch CPU threads [default: all cores].
    #[arg(long, value_parser = cmdline::count::<u64>())]
    threads: Option<u64>,
    #[command(flatten)]
    distill: trainer::distill::DistillArgs,
}

#[derive(Args)]
struct ShareArgs {
    /// The f32 model to read (dense, pruned or thinned).
    model: PathBuf,
    /// Where to write the model with shared weights.
    #[arg(short, long)]
    output: PathBuf,
    /// Codebook entries: at most 2^B per kernel (2-8).
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u32).range(2..=8))]
    weight_bits: u32,
    /// Share only these layers' kernels, by name (conv10) or kind
    /// (expand3x3), comma-separated [default: every layer].
    #[arg(long, value_name = "LAYERS", value_delimiter = ',')]
    share_only: Vec<String>,
    #[command(flatten)]
    tune: FineTuneArgs,
}

#[derive(Args)]
struct PruneArgs {
    /// The f32 model to read: its weights, and its architecture from the
    /// metadata.
    model: PathBuf,
    /// Where to write the pruned model.
    #[arg(short, long)]
    output: PathBuf,
    /// Target share of zero weights in the pruned kernels, in [0, 1).
    #[arg(long, value_parser = fraction)]
    sparsity: f64,
    /// polynomial (Zhu & Gupta's cubic), constant (equal increments) or
    /// oneshot (all before fine-tuning).
    #[arg(long, value_enum, default_value = "polynomial")]
    schedule: Ramp,
    /// Sparsity of the first pruning step.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    initial_sparsity: f64,
    /// Pruning steps after the first.
    #[arg(long, default_value_t = 10, value_parser = cmdline::count::<u64>())]
    steps: u64,
    /// Optimiser steps between pruning steps [default: the steps spread over
    /// the first two thirds of fine-tuning].
    #[arg(long, value_parser = cmdline::count::<u64>())]
    frequency: Option<u64>,
    /// global (one magnitude threshold) or layer (one per kernel).
    #[arg(long, value_enum, default_value = "global")]
    scope: Scope,
    /// Remove whole filters instead of single weights: --sparsity of each
    /// convolution's filters, once, then fine-tune. The result is a
    /// narrower dense model.
    #[arg(long)]
    structured: bool,
    /// The filter norm that ranks filters for --structured: l1 or l2.
    #[arg(long, value_enum, default_value = "l1")]
    norm: Norm,
    /// Layers to leave dense, repeated or comma-separated; `none` prunes
    /// every kernel [default: the first layer and the classifier].
    #[arg(long, value_name = "LAYER", value_delimiter = ',')]
    exclude: Option<Vec<String>>,
    #[command(flatten)]
    tune: FineTuneArgs,
}

/// A share in [0, 1).
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside [0, 1)")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

fn main() -> ExitCode {
    let cli = match cmdline::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compress: {}", cmdline::one_line(&message));
            ExitCode::from(cmdline::BAD_INPUT)
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Import {
            model,
            output,
            mean,
            std,
            labels,
            arch,
        } => import(&model, &output, mean, std, labels.as_deref(), arch),
        Command::Fp16 { model, output } => fp16(&model, &output),
        Command::Quantize {
            model,
            output,
            calib,
            calib_images,
            method,
            activations,
            per_tensor,
            weights_only,
            fp16: half,
            weight_bits,
            share_only,
        } => {
            let method: Method = method.parse()?;
            let activations = match activations.as_str() {
                "u8" => Activations::U8,
                "i8" => Activations::I8,
                other => return Err(format!("unknown activation type '{other}' (known: u8, i8)")),
            };
            let (bytes, frozen) = read(&model)?;
            let in_file = |e: compress::CompressError| format!("{}: {e}", model.display());
            let graph = frozen.layer_graph().map_err(|e| in_file(e.into()))?;
            let (proto, meta) = if half {
                compress::fp16::to_fp16(&frozen).map_err(in_file)?
            } else if weights_only {
                compress::weights_only::weights_only(&frozen).map_err(in_file)?
            } else {
                let q = static_int8(
                    &model,
                    &bytes,
                    &frozen,
                    calib,
                    calib_images,
                    method,
                    activations,
                    per_tensor,
                )?;
                (q.proto, q.meta)
            };
            let proto = match weight_bits {
                Some(bits) => {
                    let layers = compress::codebook::Layers::named(share_only);
                    let (proto, shared) =
                        compress::codebook::share_model(proto, meta, &graph, bits, &layers)
                            .map_err(in_file)?;
                    for s in &shared {
                        cmdline::outln!(
                            "w{bits}: {} ({} values): {} entries, {} -> {} bytes",
                            s.name,
                            s.values,
                            s.entries,
                            s.bytes.0,
                            s.bytes.1
                        );
                    }
                    proto
                }
                None => proto,
            };
            write_stored(&output, proto, bytes.len())
        }
        Command::Compare { a, b, data, images } => {
            if images == 0 {
                return Err("--images must be at least 1".into());
            }
            let (a_bytes, fa) = read(&a)?;
            let (b_bytes, fb) = read(&b)?;
            let source = cifar::open(&data).map_err(|e| e.to_string())?;
            let set = source
                .load(cifar::Split::Validation, Some(images))
                .map_err(|e| e.to_string())?;
            let c = compress::compare::compare(&a_bytes, &fa, &b_bytes, &fb, &set.images)
                .map_err(|e| format!("{} vs {}: {e}", a.display(), b.display()))?;
            let width = c
                .layers
                .iter()
                .map(|l| l.value.len())
                .max()
                .unwrap_or(5)
                .max(5);
            cmdline::outln!("{:width$}  {:5}  {:>9}", "layer", "as", "SQNR dB");
            for l in &c.layers {
                let kind = if l.integer { "int8" } else { "float" };
                cmdline::outln!("{:width$}  {:5}  {:>9.1}", l.value, kind, l.sqnr_db);
            }
            cmdline::outln!(
                "{} validation images: top-1 agrees on {} ({:.1}%), largest probability error {:.4}",
                c.images,
                c.top1_agree,
                100.0 * c.top1_agree as f64 / c.images as f64,
                c.max_probability_error
            );
            if let Some((layer, drop)) = c.worst_layer() {
                cmdline::outln!(
                    "largest loss: {} (SQNR {:.1} dB, {drop:.1} dB below the layers before it)",
                    layer.value,
                    layer.sqnr_db
                );
            }
            Ok(())
        }
        Command::Prune(args) => prune(&args),
        Command::Share(args) => share(&args),
        Command::Sensitivity {
            model,
            data,
            images,
            sparsities,
            json,
            plot,
            device,
            threads,
        } => {
            let (_, frozen) = read(&model)?;
            let in_file = |e: compress::CompressError| format!("{}: {e}", model.display());
            frozen.layer_graph().map_err(|e| in_file(e.into()))?;
            let device = trainer::device::select(device, threads.map(|t| t as usize))
                .map_err(|e| e.to_string())?;
            let data = DataDir::open(&data, &frozen, "--data").map_err(|e| e.to_string())?;
            let val = data
                .validation(Some(images as usize))
                .map_err(|e| e.to_string())?;
            if let Some(how) = data.how() {
                eprintln!("{how}");
            }
            let report = compress::sensitivity::sensitivity(&frozen, &val, &sparsities, device)
                .map_err(in_file)?;
            if let Some(path) = &plot {
                let png = report
                    .chart()
                    .render_png()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                models::atomic::write_atomic(path, &png).map_err(|e| e.to_string())?;
            }
            if json {
                cmdline::outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serialises")
                );
                return Ok(());
            }
            cmdline::out!("{:32} {:>9}", "kernel", "weights");
            for s in &report.sparsities {
                cmdline::out!(" {:>7}", format!("{:.0}%", 100.0 * s));
            }
            cmdline::outln!();
            for layer in &report.layers {
                cmdline::out!("{:32} {:>9}", layer.kernel, layer.weights);
                for a in &layer.accuracy {
                    cmdline::out!(" {:>6.1}%", 100.0 * a);
                }
                cmdline::outln!();
            }
            cmdline::outln!(
                "validation accuracy of {} on {} images: {:.2}% unpruned",
                report.arch,
                report.images,
                100.0 * report.baseline
            );
            Ok(())
        }
    }
}

fn prune(args: &PruneArgs) -> Result<(), String> {
    let (bytes, frozen) = read(&args.model)?;
    let in_file = |e: compress::CompressError| format!("{}: {e}", args.model.display());
    // Fail on the model and the options before reading any data.
    compress::stages::for_pruning(&frozen).map_err(in_file)?;
    let graph = frozen.layer_graph().map_err(|e| in_file(e.into()))?;
    compress::prune::prunable(&graph, args.exclude.as_deref()).map_err(|e| e.to_string())?;
    let (recipe, device, data) = fine_tuning(&args.tune, &frozen)?;
    let options = PruneOptions {
        ramp: args.schedule,
        initial: args.initial_sparsity,
        target: args.sparsity,
        steps: args.steps,
        frequency: args.frequency,
        scope: args.scope,
        structured: args.structured.then_some(args.norm),
        exclude: args.exclude.clone(),
        batch_norm: args.tune.batch_norm,
        recipe,
        device,
    };
    let p = compress::prune::prune(&frozen, &data, &options).map_err(in_file)?;
    let dense = if p.excluded.is_empty() {
        "none".into()
    } else {
        p.excluded.join(", ")
    };
    if p.schedule.is_some() {
        cmdline::outln!("{:32} {:>9} {:>9}", "kernel", "weights", "sparsity");
        for l in &p.layers {
            let note = if p.stored_sparse.contains(&l.kernel) {
                "  stored sparse"
            } else {
                ""
            };
            let share = 100.0 * l.zeros as f64 / l.values.max(1) as f64;
            cmdline::outln!("{:32} {:>9} {:>8.1}%{note}", l.kernel, l.values, share);
        }
        cmdline::outln!(
            "sparsity {:.1}% of the pruned kernels after {} fine-tuning steps (left dense: {dense})",
            100.0 * p.sparsity,
            p.steps,
        );
    } else {
        cmdline::outln!("{:32} {:>9} {:>9}", "layer", "filters", "kept");
        for w in &p.widths {
            cmdline::outln!("{:32} {:>9} {:>9}", w.layer, w.before, w.kept.len());
        }
        cmdline::outln!(
            "MACs per image {} -> {} ({:.2}x) after {} fine-tuning steps (left whole: {dense})",
            p.macs.0,
            p.macs.1,
            p.macs.1 as f64 / p.macs.0.max(1) as f64,
            p.steps,
        );
    }
    for (split, before, after) in [
        ("validation", p.before.val, p.after.val),
        ("test", p.before.test, p.after.test),
    ] {
        cmdline::outln!(
            "{split} accuracy: {:.2}% -> {:.2}% ({:+.2} points, {} images)",
            100.0 * before.accuracy,
            100.0 * after.accuracy,
            100.0 * (after.accuracy - before.accuracy),
            after.images
        );
    }
    write(&args.output, p.proto, bytes.len())
}

fn share(args: &ShareArgs) -> Result<(), String> {
    let (bytes, frozen) = read(&args.model)?;
    let in_file = |e: compress::CompressError| format!("{}: {e}", args.model.display());
    let (recipe, device, data) = fine_tuning(&args.tune, &frozen)?;
    let options = compress::codebook_training::ShareOptions {
        bits: args.weight_bits,
        layers: compress::codebook::Layers::named(args.share_only.clone()),
        batch_norm: args.tune.batch_norm,
        recipe,
        device,
    };
    let s = compress::codebook_training::share(&frozen, &data, &options).map_err(in_file)?;
    cmdline::outln!("{:32} {:>9}", "kernel", "entries");
    for (kernel, entries) in &s.kernels {
        cmdline::outln!("{kernel:32} {entries:>9}");
    }
    for (split, before, clustered, after) in [
        ("validation", s.before.val, s.clustered.val, s.after.val),
        ("test", s.before.test, s.clustered.test, s.after.test),
    ] {
        cmdline::outln!(
            "{split} accuracy: {:.2}% -> {:.2}% clustered -> {:.2}% after {} fine-tuning steps ({:+.2} points, {} images)",
            100.0 * before.accuracy,
            100.0 * clustered.accuracy,
            100.0 * after.accuracy,
            s.steps,
            100.0 * (after.accuracy - before.accuracy),
            after.images
        );
    }
    write(&args.output, s.proto, bytes.len())
}

/// The fine-tuning run `args` asks for on `frozen`'s data: its recipe,
/// device and data, checked before any training starts.
fn fine_tuning(
    args: &FineTuneArgs,
    frozen: &models::onnx::FrozenModel,
) -> Result<(trainer::train::Recipe, tch::Device, trainer::data::Data), String> {
    let size = |n: Option<u64>| n.map(|n| n as usize);
    let recipe = trainer::train::Recipe {
        epochs: args.epochs as usize,
        batch: args.batch as usize,
        steps_per_epoch: size(args.steps_per_epoch),
        lr: args.lr,
        schedule: trainer::schedule::Schedule::Cosine { warmup_epochs: 0.0 },
        ema: args.ema,
        seed: args.seed,
        limits: trainer::data::Limits {
            train: size(args.train_limit),
            val: size(args.val_limit),
            test: size(args.test_limit),
        },
        distill: args.distill.distillation(),
        ..trainer::train::Recipe::default()
    };
    recipe.validate().map_err(|e| e.to_string())?;
    let device =
        trainer::device::select(args.device, size(args.threads)).map_err(|e| e.to_string())?;
    let dir = DataDir::open(&args.data, frozen, "--data").map_err(|e| e.to_string())?;
    let data = dir
        .data(&recipe.limits, recipe.batch)
        .map_err(|e| e.to_string())?;
    if let Some(how) = dir.how() {
        eprintln!("{how}");
    }
    Ok((recipe, device, data))
}

/// Static int8 of `frozen` (read from `bytes` at `model`), calibrated on
/// CIFAR-10's training images; prints what it did.
#[allow(clippy::too_many_arguments)]
fn static_int8(
    model: &Path,
    bytes: &[u8],
    frozen: &models::onnx::FrozenModel,
    calib: Option<PathBuf>,
    calib_images: usize,
    method: Method,
    activations: Activations,
    per_tensor: bool,
) -> Result<compress::quantize::Quantized, String> {
    if calib_images == 0 {
        return Err("--calib-images must be at least 1".into());
    }
    let in_file = |e: compress::CompressError| format!("{}: {e}", model.display());
    compress::stages::for_storage(frozen, "int8").map_err(in_file)?;
    let data = calib.ok_or(
        "static int8 needs calibration images: --calib DIR (CIFAR-10, or a folder of pictures), or use --weights-only",
    )?;
    let graph = frozen.layer_graph().map_err(|e| in_file(e.into()))?;
    let images = DataDir::open(&data, frozen, "--calib")
        .and_then(|dir| dir.calibration(calib_images))
        .map_err(|e| e.to_string())?;
    let calibration = calibrate(bytes, &graph, &images, method).map_err(in_file)?;
    let options = Options {
        activations,
        per_channel: !per_tensor,
    };
    let q = compress::quantize::quantize(frozen, &calibration, options).map_err(in_file)?;
    cmdline::outln!(
        "calibrated on {} training images ({method}); {} layers on int8 kernels: {}",
        calibration.images,
        q.report.integer_layers.len(),
        q.report.integer_layers.join(", ")
    );
    for (layer, why) in &q.report.float_layers {
        cmdline::outln!("float: {layer}: {why}");
    }
    for b in &q.report.boundaries {
        cmdline::outln!("boundary: {} of '{}' for {}", b.op, b.value, b.reason);
    }
    Ok(q)
}

fn import(
    model: &Path,
    output: &Path,
    mean: cmdline::Channels,
    std: cmdline::Channels,
    labels: Option<&Path>,
    arch: Option<String>,
) -> Result<(), String> {
    let bytes =
        std::fs::read(model).map_err(|e| format!("{}: cannot read: {e}", model.display()))?;
    let arch = arch.unwrap_or_else(|| {
        let stem = model.file_stem().unwrap_or_default().to_string_lossy();
        stem.split('.').next().unwrap_or_default().to_string()
    });
    let normalise = models::graph::Normalise::Channels {
        mean: mean.0,
        std: std.0,
    };
    let in_file = |e: models::ModelError| format!("{}: {e}", model.display());
    let imported = models::onnx::import::import(&bytes, &arch, normalise).map_err(in_file)?;
    let labels = match labels {
        Some(path) => models::labels::read(path, imported.classes).map_err(|e| e.to_string())?,
        None => (0..imported.classes).map(|c| c.to_string()).collect(),
    };
    let mut meta = models::onnx::Metadata::new(&imported.graph, labels);
    let source = model.file_name().unwrap_or_default().to_string_lossy();
    meta.extra
        .insert("imported_from".into(), source.into_owned());
    let proto = models::onnx::encode(&imported.graph, &imported.weights, &meta).map_err(in_file)?;
    let cost = models::cost(&imported.graph).map_err(in_file)?;
    cmdline::outln!(
        "{arch}: {} layers, {} parameters, {} MACs per {}x{} image, {} classes",
        imported.graph.nodes.len() - 1,
        models::cost::grouped(cost.params),
        models::cost::grouped(cost.macs),
        imported.graph.preprocess.height,
        imported.graph.preprocess.width,
        imported.classes,
    );
    write(output, proto, bytes.len())
}

fn fp16(model: &Path, output: &Path) -> Result<(), String> {
    let (bytes, frozen) = read(model)?;
    let (proto, _) =
        compress::fp16::to_fp16(&frozen).map_err(|e| format!("{}: {e}", model.display()))?;
    write_stored(output, proto, bytes.len())
}

/// Writes the output of a storage step, its parameters under short names
/// (`compress::short_names`).
fn write_stored(
    output: &Path,
    mut proto: models::onnx::proto::ModelProto,
    before: usize,
) -> Result<(), String> {
    compress::short_names::shorten(&mut proto);
    write(output, proto, before)
}

fn write(
    output: &Path,
    mut proto: models::onnx::proto::ModelProto,
    before: usize,
) -> Result<(), String> {
    record_command(&mut proto);
    let bytes = proto.encode_to_vec();
    models::atomic::write_atomic(output, &bytes).map_err(|e| e.to_string())?;
    cmdline::outln!(
        "{}: {} -> {} bytes ({:.2}x)",
        output.display(),
        before,
        bytes.len(),
        bytes.len() as f64 / before as f64
    );
    Ok(())
}

/// Appends this invocation to the `command` metadata, one line per stage,
/// so the file says how to make it again from the trainer's output.
fn record_command(proto: &mut models::onnx::proto::ModelProto) {
    use models::onnx::{keys, proto::StringStringEntryProto};
    let this = std::env::args().collect::<Vec<_>>().join(" ");
    let props = &mut proto.metadata_props;
    match props
        .iter_mut()
        .find(|p| p.key.as_deref() == Some(keys::COMMAND))
    {
        Some(p) => {
            let before = p.value.take().unwrap_or_default();
            p.value = Some(format!("{before}\n{this}"));
        }
        None => props.push(StringStringEntryProto {
            key: Some(keys::COMMAND.into()),
            value: Some(this),
        }),
    }
}

/// Reads and checks a squeezebox model; errors name the file.
fn read(path: &Path) -> Result<(Vec<u8>, models::onnx::FrozenModel), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let frozen = models::onnx::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((bytes, frozen))
}
