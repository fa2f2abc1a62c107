//! The report command end to end on a small model: the figures it prints
//! are the file's own, the peers are timed, and the plots and manifest are
//! written. Bad input is one line and exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use models::onnx::{self, Metadata};
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_report"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--data", &shared().join("cifar10").display().to_string()])
        .args([
            "--image",
            &shared().join("images/cat.png").display().to_string(),
        ])
        .args(["--python", "../.venv/bin/python"])
        .args(args)
        .output()
        .unwrap()
}

/// squeeze1 with seeded weights, as a float file in `dir`.
fn squeeze1(dir: &Path) -> PathBuf {
    let graph = models::zoo::arch("squeeze1").unwrap().graph();
    let weights = models::weights::seeded(&graph, 3).unwrap();
    let labels = cifar::open(shared().join("cifar10"))
        .unwrap()
        .classes()
        .to_vec();
    let mut meta = Metadata::new(&graph, labels);
    meta.command = Some("cargo test (seeded weights)".into());
    let path = dir.join("squeeze1.onnx");
    let proto = onnx::encode(&graph, &weights, &meta).unwrap();
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

#[test]
fn reports_the_files_own_figures_beside_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let model = squeeze1(dir.path());
    let plots = dir.path().join("plots");
    let manifest = dir.path().join("manifest.json");
    let out = report(&[
        &model.display().to_string(),
        "--limit",
        "100",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--rounds",
        "2",
        "--json",
        "--plots",
        &plots.display().to_string(),
        "--manifest",
        &manifest.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(row["bytes"], bytes.len());
    assert_eq!(row["params"], 146_570);
    assert_eq!(row["nonzero_params"], 146_570);
    assert_eq!(row["macs"], 11_261_952);
    assert_eq!(row["test_images"], 100);
    let accuracy = row["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    for runtime in ["squeezebox_ms", "onnxruntime_ms", "libtorch_ms"] {
        assert!(
            row[runtime].as_f64().is_some_and(|ms| ms > 0.0),
            "{runtime}: {row}"
        );
    }
    for png in [
        "accuracy_vs_bytes",
        "accuracy_vs_latency",
        "accuracy_vs_nonzero",
    ] {
        let file = std::fs::read(plots.join(format!("{png}.png"))).unwrap();
        assert!(file.starts_with(b"\x89PNG"), "{png}");
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let entry = &manifest["models"][0];
    assert_eq!(entry["file"], "squeeze1.onnx");
    assert_eq!(entry["sha256"], format!("{:x}", Sha256::digest(&bytes)));
    assert_eq!(entry["test_accuracy"], accuracy);
    assert_eq!(entry["command"][0], "cargo test (seeded weights)");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = squeeze1(dir.path());
    let missing = dir.path().join("missing.onnx");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec![missing.display().to_string()],
            "missing.onnx: no such file",
        ),
        (vec![empty.display().to_string()], "no .onnx files"),
        (
            vec![model.display().to_string(), "--runs".into(), "0".into()],
            "--runs",
        ),
        (
            vec![
                model.display().to_string(),
                "--manifest".into(),
                "/tmp/elsewhere.json".into(),
            ],
            "not in /tmp",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = report(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
