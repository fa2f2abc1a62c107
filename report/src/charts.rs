//! The report's plots: accuracy against bytes on disk and against latency
//! (the study's four models as reference points), and accuracy against the
//! non-zero parameters of the pruned and thinned float files.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plot::{Chart, Corner, Mark, Point, Series};

use crate::study::STUDY;
use crate::Row;

pub fn write(dir: &Path, rows: &[Row]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let charts = [
        ("accuracy_vs_bytes.png", by_bytes(rows)),
        ("accuracy_vs_latency.png", by_latency(rows)),
        ("accuracy_vs_nonzero.png", by_nonzero(rows)),
    ];
    let archs: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.measured.arch.as_str()).collect();
    let frontiers = archs
        .into_iter()
        .map(|arch| (format!("frontier_{arch}.png"), by_bytes_of(rows, arch)));
    for (name, chart) in charts
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .chain(frontiers)
    {
        let path = dir.join(name);
        let png = chart
            .render_png()
            .with_context(|| path.display().to_string())?;
        models::atomic::write_atomic(&path, &png)?;
    }
    Ok(())
}

fn by_bytes(rows: &[Row]) -> Chart {
    let mut series = per_arch(rows, Mark::Points, "squeezebox", |r| {
        Some(Point::labelled(
            r.measured.bytes as f64,
            percent(r.measured.accuracy),
            &r.measured.variant,
        ))
    });
    series.push(study(|s| s.bytes as f64));
    Chart {
        title: "Test accuracy against bytes on disk".into(),
        x_label: "bytes on disk (log scale)".into(),
        y_label: "test accuracy %".into(),
        log_x: true,
        legend: Corner::LowerRight,
        series,
    }
}

/// One model's files against bytes on disk: each file, the frontier that
/// no file beats on both, and the study's figure for the model.
fn by_bytes_of(rows: &[Row], arch: &str) -> Chart {
    let point = |r: &Row| {
        Point::labelled(
            r.measured.bytes as f64,
            percent(r.measured.accuracy),
            &r.measured.variant,
        )
    };
    let files = rows
        .iter()
        .filter(|r| r.measured.arch == arch)
        .map(point)
        .collect();
    let frontier = crate::frontier::frontier(rows, arch)
        .into_iter()
        .map(|r| Point::new(r.measured.bytes as f64, percent(r.measured.accuracy)))
        .collect();
    let mut series = vec![
        Series {
            name: format!("{arch}: squeezebox's files"),
            mark: Mark::Points,
            points: files,
        },
        Series {
            name: "frontier (none smaller and better)".into(),
            mark: Mark::Line,
            points: frontier,
        },
    ];
    series.push(Series {
        name: "the study (TensorFlow, 2017)".into(),
        mark: Mark::Points,
        points: STUDY
            .iter()
            .filter(|s| s.name == arch)
            .map(|s| Point::labelled(s.bytes as f64, percent(s.accuracy), "study"))
            .collect(),
    });
    Chart {
        title: format!("{arch}: test accuracy against bytes on disk"),
        x_label: "bytes on disk (log scale)".into(),
        y_label: "test accuracy %".into(),
        log_x: true,
        legend: Corner::LowerRight,
        series,
    }
}

fn by_latency(rows: &[Row]) -> Chart {
    let mut series = per_arch(rows, Mark::Points, "squeezebox", |r| {
        Some(Point::labelled(
            r.latency.squeezebox_ms,
            percent(r.measured.accuracy),
            &r.measured.variant,
        ))
    });
    series.push(study(|s| s.latency_ms));
    Chart {
        title: "Test accuracy against latency (squeezebox: one thread, batch 1)".into(),
        x_label: "median ms per image (log scale)".into(),
        y_label: "test accuracy %".into(),
        log_x: true,
        legend: Corner::LowerRight,
        series,
    }
}

/// Pruned (unstructured, a line from the dense file down) and thinned
/// (structured, points) float files on one axis: what is left of the weights.
fn by_nonzero(rows: &[Row]) -> Chart {
    let point = |r: &Row| {
        let m = &r.measured;
        m.nonzero_params
            .map(|n| Point::labelled(n as f64, percent(m.accuracy), &m.variant))
    };
    let mut series = per_arch(rows, Mark::Line, "pruned", |r| {
        let m = &r.measured;
        (m.is_float() && !m.is_thinned())
            .then(|| point(r))
            .flatten()
    });
    for s in &mut series {
        s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    series.extend(per_arch(rows, Mark::Points, "thinned", |r| {
        r.measured.is_thinned().then(|| point(r)).flatten()
    }));
    Chart {
        title: "Test accuracy against non-zero parameters (float weights)".into(),
        x_label: "non-zero parameters (log scale)".into(),
        y_label: "test accuracy %".into(),
        log_x: true,
        legend: Corner::LowerRight,
        series,
    }
}

/// One series per architecture, named `arch (what)`, of the rows `point`
/// gives a point for.
fn per_arch(
    rows: &[Row],
    mark: Mark,
    what: &str,
    point: impl Fn(&Row) -> Option<Point>,
) -> Vec<Series> {
    let mut by_arch: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for row in rows {
        if let Some(p) = point(row) {
            by_arch.entry(&row.measured.arch).or_default().push(p);
        }
    }
    by_arch
        .into_iter()
        .map(|(arch, points)| Series {
            name: format!("{arch} ({what})"),
            mark,
            points,
        })
        .collect()
}

fn study(x: impl Fn(&crate::study::StudyModel) -> f64) -> Series {
    Series {
        name: "the study (TensorFlow, 2017)".into(),
        mark: Mark::Points,
        points: STUDY
            .iter()
            .map(|s| Point::labelled(x(s), percent(s.accuracy), s.name))
            .collect(),
    }
}

fn percent(fraction: f64) -> f64 {
    100.0 * fraction
}
