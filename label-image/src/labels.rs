//! Class names from a file, for models whose metadata names them badly.

use std::path::Path;

use runtime::RuntimeError;

/// One name per line (blank lines ignored); there must be one per class.
pub fn read(path: &Path, classes: usize) -> Result<Vec<String>, RuntimeError> {
    let fail = |why: String| RuntimeError::File {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let labels: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if labels.len() != classes {
        return Err(fail(format!(
            "{} labels for a model with {classes} classes",
            labels.len()
        )));
    }
    Ok(labels)
}
