//! models/manifest.json: every shipped file with its sha256, variant, the
//! commands that made it and its measured accuracy. A test checks the
//! shipped files against it, so a file changed without a new report fails.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::Row;

#[derive(Debug, Serialize)]
struct Manifest {
    regenerate: &'static str,
    models: Vec<Entry>,
}

#[derive(Debug, Serialize)]
struct Entry {
    /// The file's name, in the manifest's directory.
    file: String,
    sha256: String,
    bytes: usize,
    arch: String,
    variant: String,
    /// Top-1 through the runtime, over `test_images` of the test batch.
    test_accuracy: f64,
    test_images: usize,
    /// One command per stage, training first.
    command: Vec<String>,
}

/// Checks, before anything is measured, that every file sits beside the
/// manifest at `path`, which names them by file name.
pub fn check(path: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot find its directory", path.display()))?;
    for file in files {
        let parent = file.canonicalize()?.parent().map(Path::to_path_buf);
        if parent.as_deref() != Some(dir.as_path()) {
            bail!(
                "{}: not in {}, the manifest's directory",
                file.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Writes the manifest of `rows` (already [`check`]ed) to `path`.
pub fn write(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let models = rows
        .iter()
        .map(|row| {
            let m = &row.measured;
            Entry {
                file: m
                    .file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                sha256: m.sha256.clone(),
                bytes: m.bytes,
                arch: m.arch.clone(),
                variant: m.variant.clone(),
                test_accuracy: m.accuracy,
                test_images: m.test_images,
                command: m
                    .command
                    .iter()
                    .flat_map(|c| c.lines())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect();
    let manifest = Manifest {
        regenerate: "bash scripts/report.sh",
        models,
    };
    let json = serde_json::to_string_pretty(&manifest)? + "\n";
    models::atomic::write_atomic(path, json.as_bytes())?;
    Ok(())
}
