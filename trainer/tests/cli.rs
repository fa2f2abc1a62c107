//! The `trainer` command: a tiny run end to end, and bad input refused with
//! one line on stderr and exit code 2, before any training.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cifar10");

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh directory for one test's outputs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trainer-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `train` with a small, valid setup, then `extra` (later flags win).
fn train(out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "train", "--model", "squeeze1", "--data", DATA, "--out", out, "--epochs", "1", "--batch",
        "32",
    ];
    args.extend([
        "--train-limit",
        "64",
        "--val-limit",
        "32",
        "--test-limit",
        "32",
        "--lr",
        "0.01",
    ]);
    args.extend(extra);
    trainer(&args)
}

/// Exit code 2 and exactly one stderr line, which contains `needle`.
fn assert_refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} does not mention {needle:?}"
    );
}

#[test]
fn a_tiny_run_writes_model_checkpoint_and_log_and_resumes_only_the_same_run() {
    let dir = scratch("run");
    let out = dir.join("tiny.onnx");
    assert_refused(&train(&out, &["--resume"]), "nothing to resume");

    let done = train(&out, &["--ema", "0.9"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        stdout.contains("test accuracy") && stdout.contains("after 2 steps"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.join("tiny.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(dir.join("tiny.ckpt").exists());
    let meta = models::onnx::decode(&std::fs::read(&out).unwrap())
        .unwrap()
        .meta;
    assert_eq!(meta.training_steps, Some(2));
    assert!(meta.command.unwrap().contains("--ema 0.9"));

    assert_refused(
        &train(&out, &["--ema", "0.9", "--lr", "0.02", "--resume"]),
        "lr 0.01 (checkpoint) vs 0.02 (now)",
    );
    // Training-time batch norm makes another net, even of the same zoo name.
    assert_refused(
        &train(&out, &["--ema", "0.9", "--batch-norm", "conv", "--resume"]),
        "an architecture or --batch-norm differs",
    );
    // A corrupt or cut-short checkpoint is refused, not started afresh.
    let checkpoint = std::fs::read(dir.join("tiny.ckpt")).unwrap();
    for (name, bytes) in [
        ("cut", &checkpoint[..checkpoint.len() / 2]),
        ("text", &b"not a checkpoint"[..]),
    ] {
        std::fs::write(dir.join("tiny.ckpt"), bytes).unwrap();
        let refused = train(&out, &["--ema", "0.9", "--resume"]);
        assert_refused(&refused, "not a trainer checkpoint");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("tiny.ckpt"),
            "{name}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_search_run_with_batch_norm_leaves_the_test_split_alone() {
    let dir = scratch("search");
    let out = dir.join("bn.onnx");
    let done = train(
        &out,
        &["--batch-norm", "all", "--jitter", "0.5", "--no-test"],
    );
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains("test split untouched"), "{stdout}");
    // The deployed count is the zoo's: batch norm is folded away.
    assert!(stdout.contains("squeeze1: 146570 parameters"), "{stdout}");
    let frozen = models::onnx::decode(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(frozen.meta.test_accuracy, None);
    let graph = frozen.layer_graph().unwrap();
    assert_eq!(graph, models::zoo::arch("squeeze1").unwrap().graph());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_diverging_run_stops_with_one_line_naming_the_epoch() {
    let dir = scratch("diverge");
    let out = dir.join("m.onnx");
    let refused = train(&out, &["--lr", "1e30", "--train-limit", "256"]);
    assert_refused(&refused, "diverged in epoch 1");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--warmup-epochs"));
    assert!(!out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_jitter_is_refused() {
    let out = scratch("jitter").join("m.onnx");
    for jitter in ["-1", "NaN", "2"] {
        assert_refused(
            &train(&out, &["--jitter", jitter]),
            "jitter must be between 0 and 1.25",
        );
    }
}

#[test]
fn an_unknown_model_is_refused() {
    let out = scratch("model").join("m.onnx");
    assert_refused(
        &train(&out, &["--model", "squeeze9"]),
        "unknown architecture 'squeeze9'",
    );
}

#[test]
fn missing_data_is_refused() {
    let out = scratch("data").join("m.onnx");
    assert_refused(
        &train(&out, &["--data", "/no/such/cifar"]),
        "/no/such/cifar: no CIFAR-10 data here",
    );
}

#[test]
fn zero_epochs_and_zero_batch_are_refused() {
    let out = scratch("zero").join("m.onnx");
    assert_refused(&train(&out, &["--epochs", "0"]), "--epochs");
    assert_refused(&train(&out, &["--batch", "0"]), "--batch");
}

#[test]
fn a_bad_learning_rate_is_refused() {
    let out = scratch("lr").join("m.onnx");
    for lr in ["0", "-0.1", "NaN", "inf"] {
        assert_refused(
            &train(&out, &["--lr", lr]),
            "learning rate must be a finite number above 0",
        );
    }
}

#[test]
fn an_unwritable_output_is_refused_before_training() {
    assert_refused(
        &train(Path::new("/no/such/dir/m.onnx"), &[]),
        "/no/such/dir: output directory does not exist",
    );
    // Not even root may create files in /proc.
    assert_refused(
        &train(Path::new("/proc/m.onnx"), &[]),
        "/proc: output directory is not writable",
    );
}

/// Shipped model files: a teacher of squeeze1's pictures, and one that
/// takes its pictures another way.
fn shipped(name: &str) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/").to_string() + name
}

#[test]
fn a_distilled_run_trains_and_resumes_only_under_the_same_teacher() {
    let dir = scratch("distil");
    let out = dir.join("tiny.onnx");
    let teacher = shipped("squeeze1.onnx");
    let done = train(&out, &["--teacher", &teacher, "--temperature", "2"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_refused(
        &train(
            &out,
            &["--teacher", &teacher, "--temperature", "3", "--resume"],
        ),
        "\"temperature\":2.0,",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_teacher_that_is_no_model_or_takes_other_pictures_is_refused() {
    let out = scratch("teacher").join("m.onnx");
    let other = shipped("imported/resnet-style.p50.int8.onnx");
    let refused = train(&out, &["--teacher", &other]);
    assert_refused(&refused, "the student 32x32 pictures cropped to 24x24");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("resnet-style"));
    let readme = shipped("../README.md");
    assert_refused(
        &train(&out, &["--teacher", &readme]),
        "not a squeezebox model",
    );
    let teacher = shipped("squeeze1.onnx");
    assert_refused(
        &train(&out, &["--teacher", &teacher, "--distill-weight", "1.5"]),
        "distillation weight 1.5 is outside (0, 1]",
    );
    assert!(!out.exists());
}
