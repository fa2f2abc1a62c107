//! Latency of one file in squeezebox's runtime and, in the same round, in
//! its peers: onnxruntime (from PyPI, through Python) and libtorch (the same
//! architecture and weights through tch). Everything runs on one thread at
//! batch 1 on the same picture; the figure is the median per-image time.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use compress::sparse_storage::densify;
use models::onnx::read_weights;
use runtime::timing::measure;
use runtime::Model;
use serde::Serialize;
use tch::{Device, Tensor};
use trainer::Net;

/// The script that times onnxruntime, in the source tree.
const ONNXRUNTIME_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/onnxruntime_latency.py"
);

/// Median per-image milliseconds in each runtime; `None` where a peer was
/// not asked or cannot run the file (libtorch runs float weights only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latencies {
    pub squeezebox_ms: f64,
    pub onnxruntime_ms: Option<f64>,
    pub libtorch_ms: Option<f64>,
}

impl Latencies {
    /// Each runtime's median over rounds.
    pub fn median<'a>(rounds: impl Iterator<Item = &'a Latencies>) -> Latencies {
        let rounds: Vec<&Latencies> = rounds.collect();
        let of = |f: fn(&Latencies) -> Option<f64>| median(rounds.iter().filter_map(|r| f(r)));
        Latencies {
            squeezebox_ms: of(|r| Some(r.squeezebox_ms)).unwrap_or(f64::NAN),
            onnxruntime_ms: of(|r| r.onnxruntime_ms),
            libtorch_ms: of(|r| r.libtorch_ms),
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[(v.len() - 1) / 2])
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

    fn median_ms(&self, file: &Path, runs: usize, warmup: usize) -> anyhow::Result<f64> {
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
        line["median_ms"]
            .as_f64()
            .context("onnxruntime's timing script printed no median")
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
    /// One round for `file`: squeezebox, then the peers when given.
    pub fn time(&self, file: &Path, peers: Option<&OnnxRuntime>) -> anyhow::Result<Latencies> {
        let model = Model::load_with_threads(file, NonZeroUsize::MIN)?;
        let ours = measure(&model, self.pixels, self.warmup, self.runs)?.median;
        let Some(onnxruntime) = peers else {
            return Ok(Latencies {
                squeezebox_ms: ours.as_secs_f64() * 1e3,
                onnxruntime_ms: None,
                libtorch_ms: None,
            });
        };
        Ok(Latencies {
            squeezebox_ms: ours.as_secs_f64() * 1e3,
            onnxruntime_ms: Some(onnxruntime.median_ms(file, self.runs, self.warmup)?),
            libtorch_ms: self.libtorch_ms(file)?,
        })
    }

    /// The file's architecture and weights in libtorch; `None` when its
    /// weights are not float (int8 and fp16 files have no libtorch twin).
    fn libtorch_ms(&self, file: &Path) -> anyhow::Result<Option<f64>> {
        let frozen = models::onnx::decode(&std::fs::read(file)?)?;
        let graph = frozen.layer_graph()?;
        let Ok(weights) = read_weights(&densify(&frozen.proto), &graph) else {
            return Ok(None);
        };
        let mut net = Net::fresh(&graph, Device::Cpu)?;
        net.load_weights(&weights)?;
        let input = Tensor::from_slice(self.pixels).reshape([1, 32, 32, 3]);
        let mut times = Vec::with_capacity(self.runs);
        tch::no_grad(|| {
            for _ in 0..self.warmup {
                drop(net.forward_pixels(&input));
            }
            for _ in 0..self.runs {
                let start = Instant::now();
                drop(net.forward_pixels(&input));
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        });
        Ok(median(times.into_iter()))
    }
}
