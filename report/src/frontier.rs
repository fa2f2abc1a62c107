//! What the study asked: for each model, the smallest and the fastest file
//! within one point of its own dense float file, and the files no other
//! beats on both accuracy and bytes (the frontier). Computed from the
//! measured rows, so the claim moves with the files.

use crate::Row;

/// How far below its dense file a variant may fall and still count.
pub const TOLERANCE: f64 = 0.01;
/// Slack for the floating-point subtraction: a file exactly one point down
/// (84.00% beside 85.00%) counts, whichever way the difference rounds.
const SLACK: f64 = 1e-9;

/// One model's answer.
pub struct Best<'r> {
    pub dense: &'r Row,
    pub smallest: &'r Row,
    pub fastest: &'r Row,
}

/// Per architecture with a dense float file (variant `f32`), in the
/// rows' order: its smallest and fastest files within [`TOLERANCE`].
pub fn within_one_point(rows: &[Row]) -> Vec<Best<'_>> {
    rows.iter()
        .filter(|r| r.measured.variant == "f32")
        .map(|dense| {
            let near: Vec<&Row> = rows
                .iter()
                .filter(|r| {
                    r.measured.arch == dense.measured.arch
                        && r.measured.accuracy >= dense.measured.accuracy - TOLERANCE - SLACK
                })
                .collect();
            let by = |key: fn(&Row) -> f64| {
                *near
                    .iter()
                    .min_by(|a, b| key(a).total_cmp(&key(b)))
                    .expect("the dense file is within a point of itself")
            };
            Best {
                dense,
                smallest: by(|r| r.measured.bytes as f64),
                fastest: by(|r| r.latency.squeezebox_ms),
            }
        })
        .collect()
}

/// The rows of `arch` that no other row of it beats on both bytes and
/// accuracy, smallest first.
pub fn frontier<'r>(rows: &'r [Row], arch: &str) -> Vec<&'r Row> {
    let mut own: Vec<&Row> = rows.iter().filter(|r| r.measured.arch == arch).collect();
    own.sort_by(|a, b| {
        a.measured
            .bytes
            .cmp(&b.measured.bytes)
            .then(b.measured.accuracy.total_cmp(&a.measured.accuracy))
    });
    let mut best = f64::NEG_INFINITY;
    own.into_iter()
        .filter(|r| {
            let better = r.measured.accuracy > best;
            best = best.max(r.measured.accuracy);
            better
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Measured;
    use crate::peers::Latencies;

    fn row(variant: &str, accuracy: f64, bytes: usize, ms: f64) -> Row {
        Row {
            measured: Measured {
                file: format!("m.{variant}.onnx").into(),
                name: format!("m.{variant}"),
                sha256: String::new(),
                arch: "m".into(),
                variant: variant.into(),
                compression: vec![],
                command: None,
                accuracy,
                test_images: 10_000,
                params: None,
                nonzero_params: None,
                sparsity: None,
                macs: None,
                bytes,
                gzip_bytes: bytes,
            },
            latency: Latencies {
                squeezebox_ms: ms,
                onnxruntime_ms: None,
                libtorch_ms: None,
            },
        }
    }

    #[test]
    fn the_smallest_and_fastest_within_a_point_and_the_frontier() {
        let rows = [
            row("f32", 0.80, 600, 1.0),
            row("int8", 0.799, 160, 0.4),
            row("p75.int8", 0.792, 100, 0.5),
            // Smaller still, but 1.5 points down: not within one.
            row("p90.int8", 0.785, 60, 0.3),
            // Within a point, but larger and slower than int8.
            row("p50", 0.801, 400, 0.9),
        ];
        let exactly = [
            row("f32", 0.85, 600, 1.0),
            row("p75.int8.w4", 0.84, 70, 0.5),
        ];
        assert_eq!(
            within_one_point(&exactly)[0].smallest.measured.variant,
            "p75.int8.w4"
        );
        let best = within_one_point(&rows);
        assert_eq!(best.len(), 1);
        assert_eq!(best[0].smallest.measured.variant, "p75.int8");
        assert_eq!(best[0].fastest.measured.variant, "int8");
        let names: Vec<&str> = frontier(&rows, "m")
            .iter()
            .map(|r| r.measured.variant.as_str())
            .collect();
        assert_eq!(names, ["p90.int8", "p75.int8", "int8", "p50"]);
    }
}
