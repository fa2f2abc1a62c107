//! Calibration: the range of every activation of a float model, measured by
//! running it (in tract, through [`runtime::probe`]) on sample images.
//!
//! Three ways to turn what was seen into a range:
//! - `minmax`: the smallest and largest values seen;
//! - `percentile`: the 0.01th and 99.99th percentiles, so that a few
//!   outliers do not stretch the scale of all the other values;
//! - `entropy`: the clipping threshold whose 8-bit histogram loses the least
//!   information (smallest KL divergence from the float histogram), as in
//!   TensorRT's calibrator.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use models::graph::{Graph, Op};
use models::onnx::LOGITS;
use runtime::probe::Probe;

use crate::CompressError;

/// How observed values become a quantization range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    MinMax,
    Percentile,
    Entropy,
}

impl Method {
    pub const NAMES: &'static str = "minmax, percentile, entropy";
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Method, String> {
        match s {
            "minmax" => Ok(Method::MinMax),
            "percentile" => Ok(Method::Percentile),
            "entropy" => Ok(Method::Entropy),
            other => Err(format!(
                "unknown calibration method '{other}' (known: {})",
                Method::NAMES
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::MinMax => "minmax",
            Method::Percentile => "percentile",
            Method::Entropy => "entropy",
        })
    }
}

/// The percentile kept by [`Method::Percentile`] at each end.
pub const PERCENTILE: f64 = 99.99;
/// Histogram bins for the percentile and entropy methods.
const BINS: usize = 2048;
/// Images per probed batch.
const BATCH: usize = 50;

/// The range of one value, `lo <= hi`, both finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

/// The calibrated range of every activation, by ONNX value name.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub method: Method,
    pub images: usize,
    /// The range chosen by `method`.
    pub ranges: BTreeMap<String, Range>,
    /// The smallest and largest values seen (the `minmax` range).
    pub extremes: BTreeMap<String, Range>,
}

/// The ONNX value name that each layer-graph node's output has in a file
/// written by `models::onnx::export`: the node's name, `logits` for the
/// output, and a dropout's input (dropout is absent from the file).
pub fn value_names(graph: &Graph) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let name = if id == graph.output {
            LOGITS.to_string()
        } else if matches!(node.op, Op::Dropout { .. }) {
            names[node.inputs[0]].clone()
        } else {
            node.name.clone()
        };
        names.push(name);
    }
    names
}

/// Runs the float model in `bytes` (whose layer graph is `graph`) on
/// `images` (raw `32x32x3` images laid end to end) and measures the range
/// of every layer's output.
pub fn calibrate(
    bytes: &[u8],
    graph: &Graph,
    images: &[u8],
    method: Method,
) -> Result<Calibration, CompressError> {
    let image_bytes = graph.preprocess.image_bytes();
    let count = images.len() / image_bytes;
    if count == 0 {
        return Err(CompressError::Refused(
            "calibration needs at least one image".into(),
        ));
    }
    let mut names: Vec<String> = value_names(graph);
    names.sort();
    names.dedup();
    let probe =
        Probe::from_bytes(bytes, &names).map_err(|e| CompressError::Refused(e.to_string()))?;
    let batches = || images.chunks(BATCH * image_bytes);
    let run = |batch: &[u8]| {
        probe
            .run(batch)
            .map_err(|e| CompressError::Refused(e.to_string()))
    };

    // Pass 1: the extremes.
    let mut extremes = vec![(f32::INFINITY, f32::NEG_INFINITY); names.len()];
    for batch in batches() {
        for (value, (lo, hi)) in run(batch)?.iter().zip(extremes.iter_mut()) {
            for &x in &value.data {
                if !x.is_finite() {
                    return Err(CompressError::Refused(
                        "the float model produces non-finite activations".into(),
                    ));
                }
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
    }
    let ranges: Vec<Range> = match method {
        Method::MinMax => extremes.iter().map(|&(lo, hi)| Range { lo, hi }).collect(),
        Method::Percentile | Method::Entropy => {
            // Pass 2: a histogram of each value over its extremes.
            let mut hists: Vec<Histogram> = extremes
                .iter()
                .map(|&(lo, hi)| Histogram::new(lo, hi))
                .collect();
            for batch in batches() {
                for (value, hist) in run(batch)?.iter().zip(hists.iter_mut()) {
                    hist.add(&value.data);
                }
            }
            hists
                .iter()
                .map(|h| match method {
                    Method::Percentile => h.percentile_range(PERCENTILE),
                    _ => h.entropy_range(),
                })
                .collect()
        }
    };
    let extremes = names
        .iter()
        .cloned()
        .zip(extremes.iter().map(|&(lo, hi)| Range { lo, hi }))
        .collect();
    Ok(Calibration {
        method,
        images: count,
        ranges: names.into_iter().zip(ranges).collect(),
        extremes,
    })
}

/// Counts of values in `BINS` equal bins over `[lo, hi]`, plus the counts of
/// negative values by magnitude (for the symmetric entropy threshold).
struct Histogram {
    lo: f32,
    hi: f32,
    counts: Vec<u64>,
    /// Histogram of |x| over `[0, max(|lo|, |hi|)]`.
    magnitude: Vec<u64>,
}

impl Histogram {
    fn new(lo: f32, hi: f32) -> Histogram {
        Histogram {
            lo,
            hi,
            counts: vec![0; BINS],
            magnitude: vec![0; BINS],
        }
    }

    fn reach(&self) -> f32 {
        self.lo.abs().max(self.hi.abs())
    }

    fn add(&mut self, data: &[f32]) {
        let width = (self.hi - self.lo).max(f32::MIN_POSITIVE);
        let reach = self.reach().max(f32::MIN_POSITIVE);
        let bin = |t: f32| ((t * BINS as f32) as usize).min(BINS - 1);
        for &x in data {
            self.counts[bin((x - self.lo) / width)] += 1;
            self.magnitude[bin(x.abs() / reach)] += 1;
        }
    }

    /// The range that keeps `p` percent of the values below its top and
    /// above its bottom, never wider than the extremes.
    fn percentile_range(&self, p: f64) -> Range {
        let total: u64 = self.counts.iter().sum();
        if total == 0 || self.hi <= self.lo {
            return Range {
                lo: self.lo,
                hi: self.hi,
            };
        }
        let width = (self.hi - self.lo) / BINS as f32;
        let tail = ((100.0 - p) / 100.0 * total as f64) as u64;
        // Top: the upper edge of the bin where the top `tail` values start.
        let mut seen = 0;
        let mut top = BINS;
        while top > 1 && seen + self.counts[top - 1] <= tail {
            seen += self.counts[top - 1];
            top -= 1;
        }
        let mut seen = 0;
        let mut bottom = 0;
        while bottom < top - 1 && seen + self.counts[bottom] <= tail {
            seen += self.counts[bottom];
            bottom += 1;
        }
        let hi = if top == BINS {
            self.hi
        } else {
            self.lo + width * top as f32
        };
        let lo = if bottom == 0 {
            self.lo
        } else {
            self.lo + width * bottom as f32
        };
        Range { lo, hi }
    }

    /// The threshold `t` minimising the KL divergence between the histogram
    /// of |x| clipped at `t` and its 8-bit quantization; the range is
    /// `[max(lo, -t), min(hi, t)]`.
    fn entropy_range(&self) -> Range {
        let total: u64 = self.magnitude.iter().sum();
        let reach = self.reach();
        if total == 0 || reach == 0.0 {
            return Range {
                lo: self.lo,
                hi: self.hi,
            };
        }
        // Non-negative values get all 255 steps; signed ones split them.
        let levels = if self.lo >= 0.0 { 255 } else { 128 };
        // The spike of exact zeros (after a ReLU, often half the values)
        // would dominate the divergence; like NVIDIA's pytorch-quantization,
        // count the first bin as its neighbour.
        let mut hist = self.magnitude.clone();
        hist[0] = hist[1];
        let mut best = (f64::INFINITY, BINS);
        let mut i = levels;
        while i <= BINS {
            let kl = kl_divergence(&hist, i, levels);
            if kl < best.0 {
                best = (kl, i);
            }
            i += 8;
        }
        let t = reach * best.1 as f32 / BINS as f32;
        Range {
            lo: self.lo.max(-t),
            hi: self.hi.min(t),
        }
    }
}

/// KL(P || Q) where P is `hist` clipped to its first `i` bins (the rest
/// added to the last one) and Q is those `i` bins without the clipped rest,
/// merged into `levels` bins, each spread back evenly over its non-empty
/// bins (TensorRT's calibration).
fn kl_divergence(hist: &[u64], i: usize, levels: usize) -> f64 {
    let mut p: Vec<f64> = hist[..i].iter().map(|&c| c as f64).collect();
    p[i - 1] += hist[i..].iter().map(|&c| c as f64).sum::<f64>();
    let mut q = vec![0.0; i];
    for level in 0..levels {
        let start = level * i / levels;
        let end = ((level + 1) * i / levels).max(start + 1).min(i);
        let bins = &hist[start..end];
        let mass: f64 = bins.iter().map(|&c| c as f64).sum();
        let nonzero = bins.iter().filter(|&&c| c > 0).count();
        for (j, &c) in (start..end).zip(bins) {
            if c > 0 {
                q[j] = mass / nonzero as f64;
            }
        }
    }
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    p.iter()
        .zip(&q)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &b)| {
            // Where only P has mass (the clipped outliers), Q gets a tiny
            // share: a heavy but finite penalty.
            let (a, b) = (a / sp, (b / sq).max(1e-9));
            a * (a / b).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(data: &[f32]) -> Histogram {
        let lo = data.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut h = Histogram::new(lo, hi);
        h.add(data);
        h
    }

    #[test]
    fn percentile_clips_rare_outliers() {
        let mut data: Vec<f32> = (0..100_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        data.push(50.0);
        let r = hist(&data).percentile_range(99.99);
        assert!(r.hi < 1.1 && r.hi > 0.9, "{r:?}");
        assert_eq!(r.lo, 0.0);
    }

    #[test]
    fn entropy_clips_a_long_tail_but_keeps_the_bulk() {
        // Mostly small values, a thin tail to 100.
        let mut data: Vec<f32> = (0..200_000)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .collect();
        data.extend((0..20).map(|i| 10.0 + i as f32 * 4.5));
        let r = hist(&data).entropy_range();
        assert!(r.hi >= 9.0 && r.hi < 60.0, "{r:?}");
        assert_eq!(r.lo, 0.0);
    }

    #[test]
    fn methods_parse_and_unknown_ones_are_named() {
        assert_eq!("entropy".parse::<Method>(), Ok(Method::Entropy));
        let err = "kl".parse::<Method>().unwrap_err();
        assert!(err.contains("'kl'") && err.contains("minmax"), "{err}");
    }
}
