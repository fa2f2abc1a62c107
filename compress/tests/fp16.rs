//! `compress fp16` halves the file and keeps the answers.

mod common;

use std::path::Path;
use std::process::Command;

use models::onnx::{self, Metadata};

fn export_squeeze1(path: &Path) {
    let graph = models::zoo::arch("squeeze1").unwrap().graph();
    let weights = models::weights::seeded(&graph, 3).unwrap();
    let labels = (0..10).map(|i| format!("class{i}")).collect();
    let meta = Metadata {
        test_accuracy: Some(0.5),
        command: Some("trainer train".into()),
        ..Metadata::new(&graph, labels)
    };
    onnx::export(path, &graph, &weights, &meta).unwrap();
}

/// Eight deterministic images with some structure: gradients and stripes.
fn images() -> Vec<u8> {
    (0..8 * 3072)
        .map(|i| ((i % 3072) / 96 * 7 + (i / 3072) * 29 + (i % 7) * 11) as u8)
        .collect()
}

#[test]
fn fp16_halves_the_file_and_keeps_the_predictions() {
    let dir = std::env::temp_dir().join(format!("sb-fp16-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (f32_path, f16_path) = (dir.join("m.onnx"), dir.join("m.fp16.onnx"));
    export_squeeze1(&f32_path);

    let status = Command::new(env!("CARGO_BIN_EXE_compress"))
        .args([
            "fp16",
            f32_path.to_str().unwrap(),
            "-o",
            f16_path.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());

    let (a, b) = (
        std::fs::metadata(&f32_path).unwrap().len(),
        std::fs::metadata(&f16_path).unwrap().len(),
    );
    assert!(
        (b as f64) < 0.55 * a as f64,
        "{b} bytes is not about half of {a}"
    );

    let full = runtime::Model::load(&f32_path).unwrap();
    let half = runtime::Model::load(&f16_path).unwrap();
    assert_eq!(half.meta().variant, "fp16");
    assert!(half.meta().compression[0].starts_with("fp16"));
    // Provenance: how to make the file again, and no accuracy it was not
    // measured to have.
    let command = half.meta().command.clone().unwrap();
    let lines: Vec<&str> = command.lines().collect();
    assert_eq!(lines[0], "trainer train");
    assert!(
        lines[1].contains(" fp16 ") && lines[1].ends_with("m.fp16.onnx"),
        "{command}"
    );
    assert_eq!(half.meta().test_accuracy, None);
    let pixels = images();
    let (p, q) = (full.run(&pixels).unwrap(), half.run(&pixels).unwrap());
    let worst = common::max_abs_diff(&p.probabilities, &q.probabilities);
    assert!(worst < 2e-3, "fp16 changed probabilities by {worst}");
    assert!(
        worst > 0.0,
        "fp16 changed nothing: were the weights converted?"
    );

    // Compressing twice is refused, with the file named.
    let out = Command::new(env!("CARGO_BIN_EXE_compress"))
        .args([
            "fp16",
            f16_path.to_str().unwrap(),
            "-o",
            dir.join("x.onnx").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("m.fp16.onnx")
            && err.contains("already stored as fp16")
            && err.lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_model_files_are_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("sb-fp16-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"this is not a model").unwrap();
    for input in [junk.clone(), dir.join("missing.onnx")] {
        let out = Command::new(env!("CARGO_BIN_EXE_compress"))
            .args([
                "fp16",
                input.to_str().unwrap(),
                "-o",
                dir.join("o.onnx").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(input.file_name().unwrap().to_str().unwrap()) && err.lines().count() == 1,
            "{err}"
        );
        assert!(!err.contains("panicked"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader that closes the pipe before the summary (`compress ... | head
/// -0`) does not make the command panic: it writes its file and exits 0.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let (f32_path, f16_path) = (dir.path().join("m.onnx"), dir.path().join("m.fp16.onnx"));
    export_squeeze1(&f32_path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_compress"))
        .args(["fp16", f32_path.to_str().unwrap(), "-o"])
        .arg(&f16_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the command has read the model.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(f16_path.exists());
}
