//! `report`: the study's table regenerated from the shipped files. Each file
//! is measured through squeezebox's runtime (test accuracy of the file
//! itself, parameters, MACs, bytes) and timed beside onnxruntime and
//! libtorch in the same run. Writes the plots and the models/ manifest.
//! Every failure is one line on stderr naming the file, and exit code 2.
//!
//! Never a dependency of another crate, and never depends on `label-image`:
//! it links everything (libtorch included) to time the peers, and measures
//! through `runtime` as label-image does.

mod charts;
mod frontier;
mod manifest;
mod measure;
mod peers;
mod study;
mod table;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::measure::{Loaded, Measured};
use crate::peers::Latencies;

/// Regenerates the results table for ONNX files (default: every file in
/// models/), measured in one run on this machine.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// ONNX files, or directories whose .onnx files are all reported.
    #[arg(default_value = "models")]
    paths: Vec<PathBuf>,
    /// CIFAR-10 in its binary layout; accuracy is over its test batch.
    #[arg(long, default_value = "../shared/cifar10")]
    data: PathBuf,
    /// Evaluate only the first N test images (default: all 10,000).
    #[arg(long)]
    limit: Option<NonZeroUsize>,
    /// The picture every runtime is timed on.
    #[arg(long, default_value = "../shared/images/cat.png")]
    image: PathBuf,
    /// Timed runs per round and runtime.
    #[arg(long, default_value = "300")]
    runs: NonZeroUsize,
    /// Untimed runs before each round.
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// Rounds: the runtimes take turns, each keeps the median of its rounds.
    #[arg(long, default_value = "3")]
    rounds: NonZeroUsize,
    /// The Python with onnxruntime (scripts/setup.sh installs .venv).
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// Time squeezebox's runtime only: no onnxruntime or libtorch columns.
    #[arg(long)]
    no_peers: bool,
    /// Write the plots (PNG) into this directory.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Write the manifest of the reported files (sha256, variant, command,
    /// accuracy) to this file.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Print JSON instead of a markdown table.
    #[arg(long)]
    json: bool,
}

/// One file's row: what it costs and how fast each runtime runs it.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub measured: Measured,
    #[serde(flatten)]
    pub latency: Latencies,
}

fn main() -> ExitCode {
    let args = match cmdline::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match report(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cmdline::one_line(&format!("{e:#}")));
            ExitCode::from(cmdline::BAD_INPUT)
        }
    }
}

fn report(args: &Args) -> anyhow::Result<()> {
    let files = onnx_files(&args.paths)?;
    if let Some(path) = &args.manifest {
        manifest::check(path, &files)?;
    }
    let pixels = runtime::preprocess::load_image(&args.image)?;
    let data = cifar::open(&args.data)?.load(cifar::Split::Test, args.limit.map(|n| n.get()))?;
    let mut onnxruntime = (!args.no_peers)
        .then(|| peers::OnnxRuntime::start(&args.python, &args.image, args.runs.get(), args.warmup))
        .transpose()?;
    // Peers get one thread, as the runtime does.
    tch::set_num_threads(1);

    let bar = ProgressBar::new(files.len() as u64).with_style(ProgressStyle::with_template(
        "{msg:>12} {bar:30} {pos}/{len} files {elapsed}",
    )?);
    bar.set_message("accuracy");
    let mut loaded = Vec::with_capacity(files.len());
    let mut measured = Vec::with_capacity(files.len());
    for file in &files {
        let in_file = || file.display().to_string();
        let file = Loaded::read(file).with_context(in_file)?;
        measured.push(measure::measure(&file, &data).with_context(in_file)?);
        loaded.push(file);
        bar.inc(1);
    }
    let timing = peers::Timing {
        pixels: &pixels,
        runs: args.runs.get(),
        warmup: args.warmup,
    };
    let contestants = loaded
        .iter()
        .map(|file| {
            peers::Contestants::new(file, onnxruntime.is_some())
                .with_context(|| file.file.display().to_string())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rounds: Vec<Vec<peers::Round>> = Vec::new();
    for round in 1..=args.rounds.get() {
        bar.reset();
        bar.set_message(format!("timing {round}/{}", args.rounds));
        let mut times = Vec::with_capacity(files.len());
        for (file, contestants) in files.iter().zip(&contestants) {
            times.push(
                timing
                    .time(contestants, onnxruntime.as_mut())
                    .with_context(|| file.display().to_string())?,
            );
            bar.inc(1);
        }
        rounds.push(times);
    }
    bar.finish_and_clear();

    let rows: Vec<Row> = measured
        .into_iter()
        .enumerate()
        .map(|(i, measured)| Row {
            measured,
            latency: Latencies::median(rounds.iter().map(|r| &r[i])),
        })
        .collect();
    if let Some(dir) = &args.plots {
        charts::write(dir, &rows)?;
    }
    if let Some(path) = &args.manifest {
        manifest::write(path, &rows)?;
    }
    if args.json {
        cmdline::outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        cmdline::out!("{}", table::markdown(&rows, args));
    }
    Ok(())
}

/// The ONNX files named, directories expanded (sorted, so rows keep an order).
fn onnx_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot read the directory", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                .collect();
            if found.is_empty() {
                anyhow::bail!("{}: no .onnx files in the directory", path.display());
            }
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}

/// The file's name without `.onnx`: how rows, points and manifest entries
/// name it.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
