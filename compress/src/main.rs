//! `compress`: ONNX in, ONNX out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use compress::calibrate::{calibrate, Method};
use compress::quantize::{Activations, Options};
use prost::Message;

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
        /// the activations. Required for static int8.
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
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's first paragraph is the problem; the rest is advice.
            let text = e.render().to_string();
            eprintln!(
                "compress: {}",
                one_line(text.split("\n\n").next().unwrap_or_default())
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compress: {}", one_line(&message));
            ExitCode::from(2)
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(command: Command) -> Result<(), String> {
    match command {
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
        } => {
            let method: Method = method.parse()?;
            let activations = match activations.as_str() {
                "u8" => Activations::U8,
                "i8" => Activations::I8,
                other => return Err(format!("unknown activation type '{other}' (known: u8, i8)")),
            };
            if half {
                return fp16(&model, &output);
            }
            let (bytes, frozen) = read(&model)?;
            let in_file = |e: compress::CompressError| format!("{}: {e}", model.display());
            if weights_only {
                let (proto, _) = compress::weights_only::weights_only(&frozen).map_err(in_file)?;
                return write(&output, &proto, bytes.len());
            }
            if calib_images == 0 {
                return Err("--calib-images must be at least 1".into());
            }
            compress::quantize::refuse_compressed(&frozen, "int8").map_err(in_file)?;
            let data = calib.ok_or("static int8 needs calibration images: --calib DIR (CIFAR-10), or use --weights-only")?;
            let graph = frozen
                .layer_graph()
                .map_err(|e| format!("{}: {e}", model.display()))?;
            let source = cifar::open(&data).map_err(|e| e.to_string())?;
            let images = source
                .load(cifar::Split::Train, Some(calib_images))
                .map_err(|e| e.to_string())?;
            let calibration = calibrate(&bytes, &graph, &images.images, method).map_err(in_file)?;
            let options = Options {
                activations,
                per_channel: !per_tensor,
            };
            let q =
                compress::quantize::quantize(&frozen, &calibration, options).map_err(in_file)?;
            println!(
                "calibrated on {} training images ({method}); {} layers on int8 kernels: {}",
                calibration.images,
                q.report.integer_layers.len(),
                q.report.integer_layers.join(", ")
            );
            for (layer, why) in &q.report.float_layers {
                println!("float: {layer}: {why}");
            }
            for b in &q.report.boundaries {
                println!("boundary: {} of '{}' for {}", b.op, b.value, b.reason);
            }
            write(&output, &q.proto, bytes.len())
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
            println!("{:width$}  {:5}  {:>9}", "layer", "as", "SQNR dB");
            for l in &c.layers {
                let kind = if l.integer { "int8" } else { "float" };
                println!("{:width$}  {:5}  {:>9.1}", l.value, kind, l.sqnr_db);
            }
            println!(
                "{} validation images: top-1 agrees on {} ({:.1}%), largest probability error {:.4}",
                c.images,
                c.top1_agree,
                100.0 * c.top1_agree as f64 / c.images as f64,
                c.max_probability_error
            );
            if let Some((layer, drop)) = c.worst_layer() {
                println!(
                    "largest loss: {} (SQNR {:.1} dB, {drop:.1} dB below the layers before it)",
                    layer.value, layer.sqnr_db
                );
            }
            Ok(())
        }
    }
}

fn fp16(model: &Path, output: &Path) -> Result<(), String> {
    let (bytes, frozen) = read(model)?;
    let (proto, _) =
        compress::fp16::to_fp16(&frozen).map_err(|e| format!("{}: {e}", model.display()))?;
    write(output, &proto, bytes.len())
}

fn write(
    output: &Path,
    proto: &models::onnx::proto::ModelProto,
    before: usize,
) -> Result<(), String> {
    let bytes = proto.encode_to_vec();
    models::atomic::write_atomic(output, &bytes).map_err(|e| e.to_string())?;
    println!(
        "{}: {} -> {} bytes ({:.2}x)",
        output.display(),
        before,
        bytes.len(),
        bytes.len() as f64 / before as f64
    );
    Ok(())
}

/// Reads and checks a squeezebox model; errors name the file.
fn read(path: &Path) -> Result<(Vec<u8>, models::onnx::FrozenModel), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let frozen = models::onnx::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((bytes, frozen))
}
