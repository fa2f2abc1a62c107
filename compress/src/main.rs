//! `compress`: ONNX in, ONNX out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use prost::Message;

#[derive(Parser)]
#[command(version, about = "Compress frozen squeezebox models: ONNX in, ONNX out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store the weights as float16 (half the bytes), computing in float32.
    Fp16 {
        /// The f32 model to read.
        model: PathBuf,
        /// Where to write the fp16 model.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("compress: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Fp16 { model, output } => {
            let frozen = read(&model)?;
            let (proto, _) = compress::fp16::to_fp16(&frozen).map_err(|e| format!("{}: {e}", model.display()))?;
            let bytes = proto.encode_to_vec();
            models::atomic::write_atomic(&output, &bytes).map_err(|e| e.to_string())?;
            let before = std::fs::metadata(&model).map(|m| m.len()).unwrap_or(0);
            println!("{}: {} -> {} bytes", output.display(), before, bytes.len());
            Ok(())
        }
    }
}

/// Reads and checks a squeezebox model; errors name the file.
fn read(path: &Path) -> Result<models::onnx::FrozenModel, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    models::onnx::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
