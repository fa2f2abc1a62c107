//! `label-image`: a thin command line over the runtime. Labels pictures with
//! a frozen model and reports its size, speed and (with `--eval`) accuracy.
//! Every failure is one line on stderr naming the file, and exit code 2.
//!
//! Never depends on libtorch (`tch`), directly or through `trainer`,
//! `compress` or `report`: this is the binary that ships to boards.

mod bench;
mod cli;
mod eval;
mod inputs;
mod report;
mod source;

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use runtime::profile::profile;
use runtime::timing::timed;
use runtime::Model;

use crate::cli::Args;
use crate::report::{ms, Guess, Labelled, ModelFacts, Report};
use crate::source::ModelSource;

fn main() -> ExitCode {
    let args = match cmdline::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let output = label(&args).and_then(|report| {
        Ok(if args.json {
            serde_json::to_string_pretty(&report)? + "\n"
        } else {
            report.to_string()
        })
    });
    match output.map(|text| std::io::stdout().lock().write_all(text.as_bytes())) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Ok(Err(e)) => fail(anyhow::anyhow!("cannot write the output: {e}")),
        Err(e) => fail(e),
    }
}

/// Prints `e` on one line and gives the exit code for bad input. The
/// messages already carry their causes, so the chain is not repeated.
fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {}", cmdline::one_line(&e.to_string()));
    ExitCode::from(cmdline::BAD_INPUT)
}

fn label(args: &Args) -> anyhow::Result<Report> {
    let source = ModelSource::new(args.model.as_deref())?;
    let normalise = args.mean.as_deref().zip(args.std.as_deref());
    let (model, load) = timed(|| source.model(normalise, args.threads));
    let model = model?;
    let labels = match &args.labels {
        Some(path) => models::labels::read(path, model.classes())?,
        None => model.labels().to_vec(),
    };
    let files = inputs::expand(&args.images)?;
    let pixels = inputs::load(&files, model.image_size())?;
    let mut report = Report {
        model: facts(&source, &model, ms(load))?,
        images: Vec::new(),
        latency: None,
        profile: None,
        eval: None,
    };
    if !files.is_empty() {
        report.images = top_labels(&model, &pixels, &files, &labels, args.top_k.get())?;
        report.latency = Some(bench::latency(
            &model,
            &pixels,
            args.warmup,
            args.runs.get(),
        )?);
        if args.profile {
            let ops = profile(&model, &pixels[..model.image_bytes()], args.runs.get())?;
            report.profile = Some(ops.into_iter().map(Into::into).collect());
        }
    }
    if let Some(dir) = &args.eval {
        report.eval = Some(eval::evaluate(&model, dir, args.limit.map(|n| n.get()))?);
    }
    Ok(report)
}

fn facts(source: &ModelSource, model: &Model, load_ms: f64) -> anyhow::Result<ModelFacts> {
    let meta = model.meta();
    Ok(ModelFacts {
        file: source.origin.display().to_string(),
        bytes: source.bytes.len(),
        gzip_bytes: source.gzip_len(),
        arch: meta.arch.clone(),
        variant: meta.variant.clone(),
        test_accuracy: meta.test_accuracy,
        width: model.width(),
        height: model.height(),
        mean: model.normalise().map(|n| n.mean()),
        std: model.normalise().map(|n| n.std()),
        params: model.params(),
        initializer_values: model.initializer_values(),
        macs: model.macs(),
        threads: model.threads().get(),
        load_ms,
    })
}

/// Runs every picture as one batch and keeps each one's `k` best labels.
fn top_labels(
    model: &Model,
    pixels: &[u8],
    files: &[PathBuf],
    labels: &[String],
    k: usize,
) -> anyhow::Result<Vec<Labelled>> {
    let predictions = model.run(pixels)?;
    Ok(files
        .iter()
        .enumerate()
        .map(|(i, file)| Labelled {
            file: file.display().to_string(),
            top: predictions
                .top_k(i, k)
                .into_iter()
                .map(|(class, probability)| Guess {
                    label: labels[class].clone(),
                    probability,
                })
                .collect(),
        })
        .collect())
}
