//! Helpers the compress test files share; each test binary uses part of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs the `compress` command with `args`.
pub fn compress<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_compress"))
        .args(args)
        .output()
        .unwrap()
}

/// `p` as the text a command line takes.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The Python with PyTorch and onnxruntime: `$SQUEEZEBOX_PYTHON`, or the
/// one scripts/setup.sh installs.
pub fn python() -> PathBuf {
    std::env::var_os("SQUEEZEBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

/// Exports `net` with `tests/python/export_nets.py` and its extra flags.
pub fn export(net: &str, out: &Path, flags: &[&str]) {
    let o = Command::new(python())
        .arg(repo().join("tests/python/export_nets.py"))
        .args([net, out.to_str().unwrap()])
        .args(flags)
        .args([
            "--mean", "0.49", "0.48", "0.45", "--std", "0.25", "0.24", "0.26",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `quantize_conformance.py` (the ONNX checker and onnxruntime against
/// tract's probabilities) over `dir`, asserts that it passed, and returns its
/// report.
pub fn conformance(dir: &Path) -> String {
    let python = python();
    let out = Command::new(&python)
        .arg(repo().join("compress/tests/quantize_conformance.py"))
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (run scripts/setup.sh): {e}",
                python.display()
            )
        });
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "conformance failed:\n{report}");
    report
}

/// The largest element-wise difference between two outputs of one model's
/// variants: probabilities or logits.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The sample pictures of `../shared/images` as 32x32 pixels, in one batch.
pub fn sample_images() -> Vec<u8> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("../shared/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| runtime::preprocess::is_image(p))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10);
    paths
        .iter()
        .flat_map(|p| runtime::preprocess::load_image(p).unwrap())
        .collect()
}
