//! Everything label-image found, as one value: written as text for people or
//! as JSON for scripts, from the same fields.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use models::cost::grouped;
use runtime::profile::OpTime;
use runtime::timing::LatencyStats;
use serde::Serialize;

use crate::eval::Accuracy;

#[derive(Debug, Serialize)]
pub struct Report {
    pub model: ModelFacts,
    pub images: Vec<Labelled>,
    pub latency: Option<Latency>,
    pub profile: Option<Vec<OpShare>>,
    pub eval: Option<Accuracy>,
}

/// The model file and what its metadata says.
#[derive(Debug, Serialize)]
pub struct ModelFacts {
    pub file: String,
    pub bytes: usize,
    pub gzip_bytes: usize,
    pub arch: String,
    pub variant: String,
    pub test_accuracy: Option<f64>,
    /// The size of the pictures the model takes, to which each is resized.
    pub width: usize,
    pub height: usize,
    /// For another tool's classifier, how label-image normalises its
    /// pictures (0-1 scale, R,G,B); `None` where the graph does it.
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    /// Learned parameters; `None` without a layer graph in the metadata.
    pub params: Option<usize>,
    /// Values stored in initializers, the fallback parameter count.
    pub initializer_values: usize,
    pub macs: Option<usize>,
    pub threads: usize,
    /// Decoding the file and optimising the tract plan.
    pub load_ms: f64,
}

/// One picture's best labels.
#[derive(Debug, Serialize)]
pub struct Labelled {
    pub file: String,
    pub top: Vec<Guess>,
}

#[derive(Debug, Serialize)]
pub struct Guess {
    pub label: String,
    pub probability: f32,
}

/// Latency figures; per image unless named otherwise.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub warmup: usize,
    pub runs: usize,
    /// The first run ever, at batch 1: what a one-shot command pays.
    pub first_run_ms: f64,
    pub batch1: Millis,
    /// MACs per image over the median batch-1 latency.
    pub batch1_gmac_per_s: Option<f64>,
    /// All the pictures as one batch, when there are several.
    pub batch: Option<BatchLatency>,
}

#[derive(Debug, Serialize)]
pub struct BatchLatency {
    pub size: usize,
    pub whole: Millis,
    pub per_image: Millis,
    pub gmac_per_s: Option<f64>,
}

/// [`LatencyStats`] in milliseconds.
#[derive(Debug, Serialize)]
pub struct Millis {
    pub min_ms: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// Time in one op type over the profiled runs.
#[derive(Debug, Serialize)]
pub struct OpShare {
    pub op: String,
    pub nodes: usize,
    pub total_ms: f64,
    pub share: f64,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl From<&LatencyStats> for Millis {
    fn from(s: &LatencyStats) -> Millis {
        Millis {
            min_ms: ms(s.min),
            median_ms: ms(s.median),
            p95_ms: ms(s.p95),
            max_ms: ms(s.max),
        }
    }
}

impl From<OpTime> for OpShare {
    fn from(t: OpTime) -> OpShare {
        OpShare {
            op: t.op,
            nodes: t.nodes,
            total_ms: ms(t.total),
            share: t.share,
        }
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for image in &self.images {
            writeln!(f, "{}", image.file)?;
            for guess in &image.top {
                writeln!(f, "  {:.4}  {}", guess.probability, guess.label)?;
            }
        }
        if !self.images.is_empty() {
            writeln!(f)?;
        }
        write!(f, "{}", self.model)?;
        if let Some(latency) = &self.latency {
            write!(f, "{latency}")?;
        }
        if let Some(profile) = &self.profile {
            writeln!(f, "time per op type (batch 1):")?;
            for op in profile {
                let nodes = if op.nodes == 1 { "node" } else { "nodes" };
                writeln!(
                    f,
                    "  {:5.1}%  {:9.3} ms  {} ({} {nodes})",
                    op.share * 100.0,
                    op.total_ms,
                    op.op,
                    op.nodes
                )?;
            }
        }
        if let Some(eval) = &self.eval {
            writeln!(
                f,
                "accuracy    {:.2}% top-1 ({} of {} CIFAR-10 test images in {})",
                eval.top1 * 100.0,
                eval.correct,
                eval.images,
                eval.data
            )?;
        }
        Ok(())
    }
}

impl Display for ModelFacts {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model       {}: {} bytes, {} gzipped",
            self.file,
            grouped(self.bytes),
            grouped(self.gzip_bytes)
        )?;
        let accuracy = match self.test_accuracy {
            Some(a) => format!("test accuracy {:.2}%", a * 100.0),
            None => "no test accuracy recorded".into(),
        };
        writeln!(
            f,
            "            {}, variant {}, {accuracy}",
            self.arch, self.variant
        )?;
        write!(f, "input       {}x{} RGB", self.width, self.height)?;
        if let (Some(mean), Some(std)) = (self.mean, self.std) {
            let list = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
            write!(
                f,
                ", normalised here: mean {}, std {}",
                list(mean),
                list(std)
            )?;
        }
        writeln!(f)?;
        let params = match self.params {
            Some(p) => format!("{} params", grouped(p)),
            None => format!(
                "{} stored values (no layer graph)",
                grouped(self.initializer_values)
            ),
        };
        let macs = self.macs.map_or("MACs unknown".into(), |m| {
            format!("{} MACs per image", grouped(m))
        });
        writeln!(f, "cost        {params}, {macs}")?;
        writeln!(f, "threads     {}", self.threads)?;
        writeln!(
            f,
            "load        {:.1} ms (decode and optimise)",
            self.load_ms
        )
    }
}

impl Display for Latency {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "first run   {:.3} ms", self.first_run_ms)?;
        writeln!(
            f,
            "batch 1     {} ({} runs after {} warm-up)",
            self.batch1, self.runs, self.warmup
        )?;
        if let Some(g) = self.batch1_gmac_per_s {
            writeln!(f, "            {g:.2} GMAC/s at the median")?;
        }
        if let Some(batch) = &self.batch {
            writeln!(f, "batch {:<5} {} per image", batch.size, batch.per_image)?;
            writeln!(
                f,
                "            {:.3} ms median for the whole batch",
                batch.whole.median_ms
            )?;
            if let Some(g) = batch.gmac_per_s {
                writeln!(f, "            {g:.2} GMAC/s at the median")?;
            }
        }
        Ok(())
    }
}

impl Display for Millis {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {:.3} ms, median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
            self.min_ms, self.median_ms, self.p95_ms, self.max_ms
        )
    }
}
