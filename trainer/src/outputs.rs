//! The files a run writes beside its model, checked before training so that
//! an unwritable path fails in a second rather than after an hour.

use std::path::{Path, PathBuf};

use crate::TrainError;

/// `squeeze1.onnx` with `squeeze1.ckpt` and `squeeze1.csv` beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub model: PathBuf,
    pub checkpoint: PathBuf,
    pub log: PathBuf,
}

impl Outputs {
    /// The paths for a model at `model`, after checking that its directory
    /// exists and takes new files.
    pub fn beside(model: &Path) -> Result<Outputs, TrainError> {
        let bad = |path: &Path, why: String| TrainError::Output {
            path: path.to_path_buf(),
            why,
        };
        if model.is_dir() {
            return Err(bad(
                model,
                "is a directory; give the model's file name".into(),
            ));
        }
        if model.file_name().is_none() {
            return Err(bad(model, "not a file name".into()));
        }
        let dir = match model.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(bad(dir, "output directory does not exist".into()));
        }
        let probe = dir.join(format!(".trainer-probe{}", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| bad(dir, format!("output directory is not writable: {e}")))?;
        let _ = std::fs::remove_file(&probe);
        Ok(Outputs {
            model: model.to_path_buf(),
            checkpoint: model.with_extension("ckpt"),
            log: model.with_extension("csv"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_and_log_sit_beside_the_model() {
        let dir = std::env::temp_dir();
        let out = Outputs::beside(&dir.join("squeeze1.onnx")).unwrap();
        assert_eq!(out.checkpoint, dir.join("squeeze1.ckpt"));
        assert_eq!(out.log, dir.join("squeeze1.csv"));
        let missing = Outputs::beside(Path::new("/no/such/dir/m.onnx"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/no/such/dir") && missing.contains("does not exist"),
            "{missing}"
        );
        assert!(Outputs::beside(&dir)
            .unwrap_err()
            .to_string()
            .contains("is a directory"));
    }
}
