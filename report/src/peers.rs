//! Latency of one file in squeezebox's runtime and, in the same round, in
//! its peers: onnxruntime (from PyPI, through Python) and libtorch (the same
//! architecture and weights through tch). Everything runs on one thread at
//! batch 1 on the same picture; the figure is the median per-image time.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use models::onnx::read_weights;
use models::onnx::sparse::densify;
use runtime::timing::{measure, timed, LatencyStats};
use serde::Serialize;
use tch::{Device, Tensor};
use trainer::Net;

use crate::measure::Loaded;

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

/// onnxruntime, driven through `scripts/onnxruntime_latency.py --serve`:
/// one Python process for the whole report, which keeps each file's
/// session (loaded and optimised once) across the timing rounds.
pub struct OnnxRuntime {
    server: Child,
    requests: ChildStdin,
    replies: BufReader<ChildStdout>,
}

impl OnnxRuntime {
    /// Checks that `python` can import onnxruntime, then starts the script,
    /// which times `runs` runs after `warmup` on `image` per request.
    pub fn start(
        python: &Path,
        image: &Path,
        runs: usize,
        warmup: usize,
    ) -> anyhow::Result<OnnxRuntime> {
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
        let mut server = Command::new(python)
            .arg(ONNXRUNTIME_SCRIPT)
            .arg("--serve")
            .arg("--image")
            .arg(image)
            .args(["--runs", &runs.to_string(), "--warmup", &warmup.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start onnxruntime's timing script")?;
        let (Some(requests), Some(replies)) = (server.stdin.take(), server.stdout.take()) else {
            unreachable!("both pipes were asked for");
        };
        Ok(OnnxRuntime {
            server,
            requests,
            replies: BufReader::new(replies),
        })
    }

    fn median(&mut self, file: &Path) -> anyhow::Result<Duration> {
        let request = serde_json::to_string(file).context("the path is not UTF-8")?;
        writeln!(self.requests, "{request}")
            .and_then(|()| self.requests.flush())
            .context("onnxruntime's timing script has stopped")?;
        let mut reply = String::new();
        if self.replies.read_line(&mut reply)? == 0 {
            bail!("onnxruntime's timing script ended without an answer");
        }
        let reply: serde_json::Value =
            serde_json::from_str(&reply).context("onnxruntime's timing script printed no JSON")?;
        if let Some(error) = reply["error"].as_str() {
            bail!("onnxruntime failed: {error}");
        }
        let ms = reply["median_ms"]
            .as_f64()
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .context("onnxruntime's timing script printed no median")?;
        Ok(Duration::from_secs_f64(ms / 1e3))
    }
}

impl Drop for OnnxRuntime {
    /// Stops the script: it ends at the end of its input, but a report that
    /// failed midway need not wait for a request it was in.
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// One file made ready once for all rounds: squeezebox's optimised plan
/// (loaded once for the whole report, [`Loaded`]) and, for float weights,
/// the same architecture and weights in libtorch.
pub struct Contestants<'a> {
    loaded: &'a Loaded,
    libtorch: Option<Net>,
}

impl<'a> Contestants<'a> {
    /// The loaded file and, when `with_libtorch`, its twin in tch; int8 and
    /// fp16 files have none.
    pub fn new(loaded: &'a Loaded, with_libtorch: bool) -> anyhow::Result<Contestants<'a>> {
        let libtorch = if with_libtorch {
            let graph = loaded.frozen.layer_graph()?;
            match read_weights(&densify(&loaded.frozen.proto)?, &graph) {
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
        Ok(Contestants { loaded, libtorch })
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
    pub fn time(
        &self,
        file: &Contestants,
        peers: Option<&mut OnnxRuntime>,
    ) -> anyhow::Result<Round> {
        let squeezebox = measure(&file.loaded.model, self.pixels, self.warmup, self.runs)?.median;
        let (onnxruntime, libtorch) = match peers {
            Some(onnxruntime) => (
                Some(onnxruntime.median(&file.loaded.file)?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnxruntime_loads_each_file_once_for_every_round() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("squeeze1.onnx");
        std::fs::copy(root.join("models/squeeze1.onnx"), &file).unwrap();
        let mut onnxruntime = OnnxRuntime::start(
            &root.join(".venv/bin/python"),
            &root.join("../shared/images/cat.png"),
            3,
            1,
        )
        .unwrap();
        let first = onnxruntime.median(&file).unwrap();
        // The next round runs the session the first one made: loading the
        // file again would fail.
        std::fs::remove_file(&file).unwrap();
        let second = onnxruntime.median(&file).unwrap();
        assert!(first > Duration::ZERO && second > Duration::ZERO);
        let missing = onnxruntime.median(&dir.path().join("missing.onnx"));
        let error = missing.unwrap_err().to_string();
        assert!(error.starts_with("onnxruntime failed: "), "{error}");
    }
}
