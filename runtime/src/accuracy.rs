//! Top-1 accuracy of the deployed file itself: labelled pictures through
//! the runtime, exactly as a user's pictures would go.

use crate::{Model, RuntimeError};

/// How many of `labels` the model's top-1 gets right. `images` holds one
/// raw picture per label; they run `batch` at a time, and `progress` hears
/// the size of each batch done.
pub fn correct<L: Copy + Into<usize>>(
    model: &Model,
    images: &[u8],
    labels: &[L],
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<usize, RuntimeError> {
    let image_bytes = model.image_bytes();
    if images.len() != labels.len() * image_bytes {
        return Err(RuntimeError::Input(format!(
            "{} bytes of pictures for {} labels",
            images.len(),
            labels.len()
        )));
    }
    let batch = batch.max(1);
    let mut right = 0;
    for (pixels, labels) in images.chunks(batch * image_bytes).zip(labels.chunks(batch)) {
        let predictions = model.run(pixels)?;
        right += labels
            .iter()
            .enumerate()
            .filter(|&(i, &label)| {
                predictions
                    .top_k(i, 1)
                    .first()
                    .is_some_and(|&(class, _)| class == label.into())
            })
            .count();
        progress(labels.len());
    }
    Ok(right)
}
