//! Latency of one file in squeezebox's runtime and, in the same round, in
//! its peers: onnxruntime (from PyPI, through Python) and libtorch (the same
//! architecture and weights through tch). Everything runs on one thread at
//! batch 1 on the same picture; the figure is the median per-image time.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use models::onnx::read_weights;
use models::onnx::sparse::densify;
use runtime::timing::{measure, timed, LatencyStats};
use runtime::Model;
use serde::Serialize;
use tch::{Device, Tensor};
use trainer::Net;

/// The script that times onnxruntime, in the source tree.
const ONNXRUNTIME_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/onnxruntime_latency.py"
);

/// One round's median per-image time in each runtime; `None` where a peer
/// was not asked or cannot run the file (libtorch runs float weights only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    pub squeezebox: Duration,
    pub onnxruntime: Option<Duration>,
    pub libtorch: Option<Duration>,
}

/// Median per-image milliseconds in each runtime, over rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latencies {
    pub squeezebox_ms: f64,
    pub onnxruntime_ms: Option<f64>,
    pub libtorch_ms: Option<f64>,
}

impl Latencies {
    /// Each runtime's median over `rounds`.
    pub fn median<'a>(rounds: impl Iterator<Item = &'a Round>) -> Latencies {
        let rounds: Vec<&Round> = rounds.collect();
        let of = |f: fn(&Round) -> Option<Duration>| {
            LatencyStats::from_samples(rounds.iter().filter_map(|r| f(r)).collect())
                .map(|stats| stats.median.as_secs_f64() * 1e3)
        };
        Latencies {
            squeezebox_ms: of(|r| Some(r.squeezebox)).unwrap_or(f64::NAN),
            onnxruntime_ms: of(|r| r.onnxruntime),
            libtorch_ms: of(|r| r.libtorch),
        }
    }
}

/// onnxruntime, driven through `scripts/onnxruntime_latency.py`.
pub struct OnnxRuntime {
    python: PathBuf,
    image: PathBuf,
}

impl OnnxRuntime {
    /// Checks that `python` can import onnxruntime.
    pub fn new(python: &Path, image: &Path) -> anyhow::Result<OnnxRuntime> {
        let ok = Command::new(python)
            .args(["-c", "import onnxruntime, PIL"])
            .output()
            .is_ok_and(|out| out.status.success());
        if !ok {
            bail!(
                "{}: no Python with onnxruntime here (run scripts/setup.sh, pass --python, or --no-peers)",
                python.display()
            );
        }
        Ok(OnnxRuntime {
            python: python.to_path_buf(),
            image: image.to_path_buf(),
        })
    }

    fn median(&self, file: &Path, runs: usize, warmup: usize) -> anyhow::Result<Duration> {
        let out = Command::new(&self.python)
            .arg(ONNXRUNTIME_SCRIPT)
            .arg("--image")
            .arg(&self.image)
            .args(["--runs", &runs.to_string(), "--warmup", &warmup.to_string()])
            .arg(file)
            .output()
            .context("cannot start onnxruntime's timing script")?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!(
                "onnxruntime failed: {}",
                stderr.lines().last().unwrap_or_default()
            );
        }
        let line: serde_json::Value = serde_json::from_slice(&out.stdout)
            .context("onnxruntime's timing script printed no JSON")?;
        let ms = line["median_ms"]
            .as_f64()
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .context("onnxruntime's timing script printed no median")?;
        Ok(Duration::from_secs_f64(ms / 1e3))
    }
}

/// One file made ready once for all rounds: squeezebox's optimised plan
/// and, for float weights, the same architecture and weights in libtorch.
pub struct Contestants {
    file: PathBuf,
    model: Model,
    libtorch: Option<Net>,
}

impl Contestants {
    /// Loads `file` into the runtime and, when `with_libtorch`, into tch;
    /// int8 and fp16 files have no libtorch twin.
    pub fn load(file: &Path, with_libtorch: bool) -> anyhow::Result<Contestants> {
        let bytes = std::fs::read(file).context("cannot read")?;
        let model = Model::from_bytes_with_threads(&bytes, NonZeroUsize::MIN)?;
        let libtorch = if with_libtorch {
            let frozen = models::onnx::decode(&bytes)?;
            let graph = frozen.layer_graph()?;
            match read_weights(&densify(&frozen.proto)?, &graph) {
                Ok(weights) => {
                    let mut net = Net::fresh(&graph, Device::Cpu)?;
                    net.load_weights(&weights)?;
                    Some(net)
                }
                Err(_) => None,
            }
        } else {
            None
        };
        Ok(Contestants {
            file: file.to_path_buf(),
            model,
            libtorch,
        })
    }
}

/// How each runtime is timed.
pub struct Timing<'a> {
    /// One raw picture.
    pub pixels: &'a [u8],
    pub runs: usize,
    pub warmup: usize,
}

impl Timing<'_> {
    /// One round: squeezebox, then the peers when given.
    pub fn time(&self, file: &Contestants, peers: Option<&OnnxRuntime>) -> anyhow::Result<Round> {
        let squeezebox = measure(&file.model, self.pixels, self.warmup, self.runs)?.median;
        let (onnxruntime, libtorch) = match peers {
            Some(onnxruntime) => (
                Some(onnxruntime.median(&file.file, self.runs, self.warmup)?),
                file.libtorch.as_ref().and_then(|net| self.libtorch(net)),
            ),
            None => (None, None),
        };
        Ok(Round {
            squeezebox,
            onnxruntime,
            libtorch,
        })
    }

    /// Median time of `net`'s forward pass on the picture; `None` for no runs.
    fn libtorch(&self, net: &Net) -> Option<Duration> {
        let input = Tensor::from_slice(self.pixels).reshape([1, 32, 32, 3]);
        let mut times = Vec::with_capacity(self.runs);
        tch::no_grad(|| {
            for _ in 0..self.warmup {
                drop(net.forward_pixels(&input));
            }
            for _ in 0..self.runs {
                let (out, took) = timed(|| net.forward_pixels(&input));
                drop(out);
                times.push(took);
            }
        });
        LatencyStats::from_samples(times).map(|stats| stats.median)
    }
}
