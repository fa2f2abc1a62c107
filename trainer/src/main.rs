//! `trainer`: trains a zoo model on CIFAR-10 and writes it as ONNX, or
//! measures how fast it trains. Parses arguments and prints; the work is in
//! the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trainer::batch_norm::BatchNorm;
use trainer::bench::bench;
use trainer::data::{Data, Limits};
use trainer::device::{self, DeviceChoice};
use trainer::distill::DistillArgs;
use trainer::outputs::Outputs;
use trainer::progress::ConsoleProgress;
use trainer::schedule::{Schedule, ONECYCLE_WARMUP_SHARE};
use trainer::train::{train, Recipe, Run};
use trainer::{Net, TrainError};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Trains squeezebox models on CIFAR-10 and exports them to ONNX"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model; write it as ONNX with a checkpoint and CSV log beside it.
    #[command(args_override_self = true)]
    Train(Box<TrainArgs>),
    /// Compare the training loop's speed with a bare libtorch loop.
    Bench(BenchArgs),
}

#[derive(Args)]
struct Common {
    /// Zoo architecture: tuto, alex4, nin2, squeeze1, allconv, resnet9, convnext-tiny.
    #[arg(long)]
    model: String,
    /// CIFAR-10: a directory holding cifar-10-batches-bin/, that directory, or the .tar.gz.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = Recipe::default().batch, value_parser = cmdline::count::<usize>())]
    batch: usize,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// libtorch CPU threads [default: all cores].
    #[arg(long, value_parser = cmdline::count::<usize>())]
    threads: Option<usize>,
    /// Batch norm in training only, folded away at export: after each
    /// convolution (conv), or after each convolution and hidden dense layer (all).
    #[arg(long, value_enum, default_value = "off")]
    batch_norm: BatchNorm,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleKind {
    /// Linear warm-up, then linear decay to 0.
    Onecycle,
    /// Optional linear warm-up, then cosine decay to 0.
    Cosine,
    /// Multiplied by --step-factor at each of --milestones.
    Step,
    Constant,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// The ONNX model to write; NAME.ckpt and NAME.csv go beside it.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = Recipe::default().epochs, value_parser = cmdline::count::<usize>())]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = Recipe::default().lr, allow_negative_numbers = true)]
    lr: f64,
    #[arg(long, default_value_t = Recipe::default().momentum)]
    momentum: f64,
    /// Plain momentum instead of Nesterov's.
    #[arg(long)]
    no_nesterov: bool,
    /// L2 decay of convolution and dense kernels (not biases or norms).
    #[arg(long, default_value_t = Recipe::default().weight_decay)]
    weight_decay: f64,
    #[arg(long, value_enum, default_value = "onecycle")]
    schedule: ScheduleKind,
    /// Linear warm-up, in epochs [default: 30% of the epochs for onecycle, 0 for cosine].
    #[arg(long)]
    warmup_epochs: Option<f64>,
    /// Epochs at which the step schedule multiplies the rate by --step-factor.
    #[arg(long, value_delimiter = ',', default_value = "15,40,75,90,115,140")]
    milestones: Vec<usize>,
    #[arg(long, default_value_t = 0.7)]
    step_factor: f64,
    #[arg(long, default_value_t = Recipe::default().label_smoothing)]
    label_smoothing: f64,
    /// Decay of the weights' moving average (e.g. 0.999), which is then what
    /// is validated and exported [default: off].
    #[arg(long)]
    ema: Option<f64>,
    /// Side of a zeroed square cut out of each training image [default: none].
    #[arg(long)]
    cutout: Option<usize>,
    /// Brightness and contrast jitter of 24x24 models, as a multiple of the
    /// study's ranges (0 for none).
    #[arg(long, default_value_t = Recipe::default().jitter, allow_negative_numbers = true)]
    jitter: f32,
    #[arg(long, default_value_t = Recipe::default().seed)]
    seed: u64,
    /// Use only the first N training images.
    #[arg(long, value_parser = cmdline::count::<usize>())]
    train_limit: Option<usize>,
    /// Use only the first N validation images.
    #[arg(long, value_parser = cmdline::count::<usize>())]
    val_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long, value_parser = cmdline::count::<usize>())]
    test_limit: Option<usize>,
    /// Cap the steps of an epoch.
    #[arg(long, value_parser = cmdline::count::<usize>())]
    steps_per_epoch: Option<usize>,
    /// Continue from the checkpoint beside --out (same settings required).
    #[arg(long)]
    resume: bool,
    /// Leave the test split alone (a recipe search); the file records no
    /// test accuracy.
    #[arg(long)]
    no_test: bool,
    #[command(flatten)]
    distill: DistillArgs,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,
    /// Timed steps of each loop.
    #[arg(long, default_value_t = 60, value_parser = cmdline::count::<usize>())]
    steps: usize,
    /// Moving-average decay used by the training loop.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Learning rate of both loops: one that trains, as a net that dies or
    /// diverges runs at another speed.
    #[arg(long, default_value_t = 0.02)]
    lr: f64,
}

impl TrainArgs {
    fn recipe(&self) -> Recipe {
        let warmup = |default: f64| self.warmup_epochs.unwrap_or(default);
        let schedule = match self.schedule {
            ScheduleKind::Onecycle => Schedule::OneCycle {
                warmup_epochs: warmup(ONECYCLE_WARMUP_SHARE * self.epochs as f64),
            },
            ScheduleKind::Cosine => Schedule::Cosine {
                warmup_epochs: warmup(0.0),
            },
            ScheduleKind::Step => Schedule::Step {
                milestones: self.milestones.clone(),
                factor: self.step_factor,
            },
            ScheduleKind::Constant => Schedule::Constant,
        };
        Recipe {
            epochs: self.epochs,
            batch: self.common.batch,
            steps_per_epoch: self.steps_per_epoch,
            lr: self.lr,
            momentum: self.momentum,
            nesterov: !self.no_nesterov,
            weight_decay: self.weight_decay,
            schedule,
            label_smoothing: self.label_smoothing,
            ema: self.ema,
            cutout: self.cutout.unwrap_or(0),
            jitter: self.jitter,
            seed: self.seed,
            limits: Limits {
                train: self.train_limit,
                val: self.val_limit,
                test: self.test_limit,
            },
            distill: self.distill.distillation(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match cmdline::parse::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Train(args) => run_train(&args),
        Command::Bench(args) => run_bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The graph, device and data every subcommand starts from, checked in the
/// order a user would fix them.
fn setup(
    common: &Common,
    limits: &Limits,
) -> Result<(models::Graph, tch::Device, Data), TrainError> {
    let graph = models::zoo::arch(&common.model)?.graph();
    let device = device::select(common.device, common.threads)?;
    let data = Data::load(&common.data, limits)?;
    Ok((graph, device, data))
}

fn run_train(args: &TrainArgs) -> Result<(), TrainError> {
    let recipe = args.recipe();
    // Fail on bad settings or an unwritable output before reading any data.
    models::zoo::arch(&args.common.model)?;
    recipe.validate()?;
    Outputs::beside(&args.out)?;
    let (graph, device, data) = setup(&args.common, &recipe.limits)?;
    let steps = recipe.steps_in_epoch(data.train.len())?;
    // On stdout: stderr is kept for progress and for one-line errors.
    cmdline::outln!(
        "{}: {} parameters | {} train, {} validation, {} test images | {} epochs of {} steps at batch {} | {:?}, {} threads",
        graph.arch,
        models::cost(&graph)?.params,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        recipe.epochs,
        steps,
        recipe.batch,
        device,
        tch::get_num_threads()
    );
    let net = Net::seeded(
        &args.common.batch_norm.training_graph(&graph),
        device,
        recipe.seed,
    )?;
    let run = Run {
        out: args.out.clone(),
        device,
        resume: args.resume,
        command: command_line(),
        test: !args.no_test,
    };
    let outcome = train(net, &data, &recipe, &run, &mut ConsoleProgress::default())?;
    let result = match (outcome.test, outcome.history.last()) {
        (Some(test), _) => format!(
            "test accuracy {:.2}% on {} images",
            100.0 * test.accuracy,
            test.images
        ),
        (None, Some(last)) => format!(
            "validation accuracy {:.2}%, test split untouched",
            100.0 * last.val_acc
        ),
        (None, None) => "test split untouched".into(),
    };
    cmdline::outln!(
        "{}: {result} after {} steps (checkpoint {}, log {})",
        outcome.outputs.model.display(),
        outcome.steps,
        outcome.outputs.checkpoint.display(),
        outcome.outputs.log.display()
    );
    Ok(())
}

fn run_bench(args: &BenchArgs) -> Result<(), TrainError> {
    let recipe = Recipe {
        batch: args.common.batch,
        ema: Some(args.ema),
        lr: args.lr,
        ..Recipe::default()
    };
    let (graph, device, data) = setup(&args.common, &recipe.limits)?;
    eprintln!(
        "benchmarking {} at batch {} for {} steps of each loop on {device:?}...",
        graph.arch, recipe.batch, args.steps
    );
    let report = bench(
        &args.common.batch_norm.training_graph(&graph),
        &data,
        &recipe,
        args.steps,
        device,
    )?;
    cmdline::outln!(
        "model {} | batch {} | {} steps each | {} threads",
        graph.arch,
        report.batch,
        report.steps,
        report.threads
    );
    cmdline::outln!(
        "bare loop (fixed batch, tch SGD):          {:8.1} images/s",
        report.bare_images_per_sec
    );
    cmdline::outln!(
        "training loop (augment, SGD, EMA, metrics): {:8.1} images/s",
        report.full_images_per_sec
    );
    cmdline::outln!("ratio: {:.1}%", 100.0 * report.ratio());
    cmdline::outln!(
        "augmentation: {:.1} us/image on one thread",
        report.augment_us_per_image
    );
    cmdline::outln!(
        "epoch: {} steps, about {:.0} s ({:.1} s of it validation)",
        report.steps_per_epoch,
        report.epoch_seconds(),
        report.val_seconds
    );
    Ok(())
}

/// The command line as typed, shell-quoted where needed, for the metadata.
fn command_line() -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    std::env::args().map(quote).collect::<Vec<_>>().join(" ")
}
