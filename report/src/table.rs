//! The results as a markdown table, with the machine and settings that
//! produced them and the study's figures as the baseline.

use std::fmt::Write;

use crate::frontier;
use crate::study::STUDY;
use crate::{Args, Row};

pub fn markdown(rows: &[Row], args: &Args) -> String {
    let mut out = String::new();
    out.push_str(
        "| file | variant | test acc. | params | non-zero | MACs | bytes | gzip | squeezebox ms \
         | onnxruntime ms | libtorch ms | vs onnxruntime | vs libtorch |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let m = &row.measured;
        let l = &row.latency;
        let ratio = |peer: Option<f64>| peer.map(|p| format!("{:.2}x", l.squeezebox_ms / p));
        let _ = writeln!(
            out,
            "| {} | {} | {:.2}% | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {} |",
            m.name,
            m.variant,
            100.0 * m.accuracy,
            opt(m.params.map(thousands)),
            opt(m.nonzero_params.map(thousands)),
            opt(m.macs.map(thousands)),
            thousands(m.bytes),
            thousands(m.gzip_bytes),
            l.squeezebox_ms,
            opt(l.onnxruntime_ms.map(|v| format!("{v:.3}"))),
            opt(l.libtorch_ms.map(|v| format!("{v:.3}"))),
            opt(ratio(l.onnxruntime_ms)),
            opt(ratio(l.libtorch_ms)),
        );
    }
    let images = rows.first().map_or(0, |r| r.measured.test_images);
    let _ = write!(
        out,
        "\nMachine: {}. Accuracy: top-1 through squeezebox's runtime over {images} \
         images of the CIFAR-10 test batch. Latency: median per image, one thread, \
         batch 1, on {}; {} alternating rounds of {} runs after {} warm-up runs, \
         the median of the rounds. Ratios: squeezebox's time over the peer's (below 1 is \
         faster). libtorch runs float weights only. Non-zero: parameters less the kernel \
         values stored as zero.\n",
        machine(),
        args.image.display(),
        args.rounds,
        args.runs,
        args.warmup,
    );
    out.push_str(&within_one_point(rows));
    out.push_str(
        "\nThe study's figures (TensorFlow frozen graphs; latency from TensorFlow's \
         label_image on the author's 2017 machine):\n\n\
         | model | test acc. | params | ops | bytes | latency ms |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for s in &STUDY {
        let _ = writeln!(
            out,
            "| {} | {:.1}% | {} | {} | {} | {:.0} |",
            s.name,
            100.0 * s.accuracy,
            s.params,
            s.ops,
            thousands(s.bytes),
            s.latency_ms
        );
    }
    out
}

/// The study's question, answered from the rows: per model, the smallest
/// and the fastest file within a point of its dense file.
fn within_one_point(rows: &[Row]) -> String {
    let mut out = format!(
        "\nWithin {:.0} point of the dense file (computed from the rows above):\n\n\
         | model | dense | smallest | bytes | of dense | of the study's | fastest | ms | of dense |\n\
         |---|---:|---|---:|---:|---:|---|---:|---:|\n",
        100.0 * frontier::TOLERANCE
    );
    for best in frontier::within_one_point(rows) {
        let (d, s, f) = (&best.dense, &best.smallest, &best.fastest);
        let study = STUDY
            .iter()
            .find(|m| m.name == d.measured.arch)
            .map(|m| format!("{:.3}x", s.measured.bytes as f64 / m.bytes as f64));
        let _ = writeln!(
            out,
            "| {} | {:.2}% | {} ({:.2}%) | {} | {:.3}x | {} | {} ({:.2}%) | {:.3} | {:.2}x |",
            d.measured.arch,
            100.0 * d.measured.accuracy,
            s.measured.name,
            100.0 * s.measured.accuracy,
            thousands(s.measured.bytes),
            s.measured.bytes as f64 / d.measured.bytes as f64,
            opt(study),
            f.measured.name,
            100.0 * f.measured.accuracy,
            f.latency.squeezebox_ms,
            f.latency.squeezebox_ms / d.latency.squeezebox_ms,
        );
    }
    out
}

fn opt(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".into())
}

/// 1234567 as "1,234,567".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The CPU model and core count, from /proc/cpuinfo where there is one.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|v| v.split_once(':')))
        .map(|(_, name)| name.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(595_754), "595,754");
        assert_eq!(thousands(11_264_000), "11,264,000");
    }
}
