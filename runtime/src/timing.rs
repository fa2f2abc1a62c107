//! Latency: how long loading and running a model takes, summarised the way
//! deployment budgets are stated (typical and tail, not a mean).

use std::time::{Duration, Instant};

use crate::{Model, RuntimeError};

/// The result of `f` and how long it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// A summary of repeated timings; percentiles are nearest-rank, so every
/// figure is one that was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyStats {
    pub runs: usize,
    pub min: Duration,
    pub median: Duration,
    pub p95: Duration,
    pub max: Duration,
}

impl LatencyStats {
    /// Summarises `samples`; `None` when there are none.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<LatencyStats> {
        samples.sort();
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).max(1) - 1];
        Some(LatencyStats {
            runs: samples.len(),
            min: *samples.first()?,
            median: rank(0.5),
            p95: rank(0.95),
            max: *samples.last()?,
        })
    }

    /// Every figure divided by `n`: the per-image share of a batch of `n`.
    pub fn per_item(&self, n: usize) -> LatencyStats {
        let n = n.max(1) as u32;
        LatencyStats {
            runs: self.runs,
            min: self.min / n,
            median: self.median / n,
            p95: self.p95 / n,
            max: self.max / n,
        }
    }
}

/// Runs `pixels` through `model` `warmup` times untimed (caches, allocator
/// and plans settle), then `runs` times timed.
pub fn measure(
    model: &Model,
    pixels: &[u8],
    warmup: usize,
    runs: usize,
) -> Result<LatencyStats, RuntimeError> {
    for _ in 0..warmup {
        model.run(pixels)?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (result, took) = timed(|| model.run(pixels));
        result?;
        samples.push(took);
    }
    LatencyStats::from_samples(samples)
        .ok_or_else(|| RuntimeError::Input("at least one timed run is needed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = Duration::from_millis;
        let samples: Vec<Duration> = [
            7, 3, 20, 1, 12, 5, 9, 18, 2, 15, 4, 6, 8, 10, 11, 13, 14, 16, 17, 19,
        ]
        .map(ms)
        .to_vec();
        let stats = LatencyStats::from_samples(samples).unwrap();
        assert_eq!(
            stats,
            LatencyStats {
                runs: 20,
                min: ms(1),
                median: ms(10),
                p95: ms(19),
                max: ms(20)
            }
        );
        let one = LatencyStats::from_samples(vec![ms(4)]).unwrap();
        assert_eq!(
            (one.min, one.median, one.p95, one.max),
            (ms(4), ms(4), ms(4), ms(4))
        );
        assert_eq!(LatencyStats::from_samples(vec![]), None);
        assert_eq!(stats.per_item(10).median, ms(1));
    }
}
