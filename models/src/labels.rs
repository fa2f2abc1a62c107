//! Class names from a file: one name per line, one line per class.

use std::io::Read;
use std::path::Path;

use crate::error::ModelError;

/// Most bytes a labels file may take: a name a line for each class, where
/// a larger file (`--labels /dev/zero`, say) is a mistake, not read whole.
const MAX_BYTES: u64 = 1 << 20;

/// One name per line (blank lines ignored); there must be one per class.
pub fn read(path: &Path, classes: usize) -> Result<Vec<String>, ModelError> {
    let fail = |why: String| ModelError::File {
        path: path.to_path_buf(),
        why,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(fail(format!(
            "over {MAX_BYTES} bytes; a labels file is a name a line"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
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
