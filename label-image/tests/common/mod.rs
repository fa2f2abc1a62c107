//! Running the built binary on models exported by the runtime's test helper.
//! Each test binary uses part of it.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::Command;

// One copy of the test-model code, shared with runtime's tests.
#[path = "../../../runtime/tests/common/mod.rs"]
mod fixtures;
pub use fixtures::*;

/// What a run of `label-image` left.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn label_image<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_label-image"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A run that must succeed; its stdout.
pub fn accepted<S: AsRef<OsStr>>(args: &[S]) -> String {
    let run = label_image(args);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.stdout
}
