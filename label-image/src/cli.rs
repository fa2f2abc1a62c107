//! The command line.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Parser;

/// Labels pictures with a frozen squeezebox model, or another tool's ONNX
/// image classifier (given --mean and --std), then reports the model's
/// size and speed; or measures its accuracy on the CIFAR-10 test batch.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// The ONNX model file [default: the squeeze1 compiled into this binary].
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Pictures (PNG, JPEG, BMP) or directories of them; several run as one batch.
    #[arg(value_name = "IMAGE", required_unless_present = "eval")]
    pub images: Vec<PathBuf>,

    /// How many labels to show per picture.
    #[arg(long, value_name = "K", default_value = "5", value_parser = at_least_one)]
    pub top_k: NonZeroUsize,

    /// Class names, one per line, instead of those in the model (for
    /// another tool's classifier, instead of class numbers).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// For another tool's classifier (a float NCHW input): the mean of
    /// each channel on a 0-1 scale, subtracted before dividing by --std
    /// (torchvision's convention; ImageNet's is 0.485,0.456,0.406).
    #[arg(long, value_name = "R,G,B", value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f32>>,

    /// For another tool's classifier: each channel's standard deviation on
    /// a 0-1 scale (ImageNet's is 0.229,0.224,0.225).
    #[arg(long, value_name = "R,G,B", value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f32>>,

    /// Timed runs for each latency figure.
    #[arg(long, value_name = "N", default_value = "100", value_parser = at_least_one)]
    pub runs: NonZeroUsize,

    /// Untimed runs before timing.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub warmup: usize,

    /// Threads a batch of pictures is spread over (each picture runs on one).
    #[arg(long, value_name = "N", default_value = "1", value_parser = at_least_one)]
    pub threads: NonZeroUsize,

    /// Also time each op type (at batch 1).
    #[arg(long)]
    pub profile: bool,

    /// Write one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,

    /// Top-1 accuracy on the CIFAR-10 test batch in this directory.
    #[arg(long, value_name = "DIR")]
    pub eval: Option<PathBuf>,

    /// With --eval: only the first N test images.
    #[arg(long, value_name = "N", requires = "eval", value_parser = at_least_one)]
    pub limit: Option<NonZeroUsize>,
}

/// A count that must be at least one, with a plainer message than
/// `NonZeroUsize`'s own parser.
fn at_least_one(text: &str) -> Result<NonZeroUsize, String> {
    let n: usize = text.parse().map_err(|_| "not a whole number".to_string())?;
    NonZeroUsize::new(n).ok_or_else(|| "must be at least 1".into())
}
