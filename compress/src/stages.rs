//! Which compression steps may follow which, read from a file's variant:
//! its steps joined by dots in the order they were done (`p75.int8`,
//! `thin25.fp16`, `p90.int8.w4`). Pruning and thinning work on float
//! kernels, so they come first; a storage step (int8, int8 weights,
//! float16) ends the chain, bar a codebook (`wB`: B-bit shared weights)
//! on top of it.

use models::onnx::sparse::densify;
use models::onnx::FrozenModel;

use crate::CompressError;

/// Steps after which the kernels are no longer float32 values.
const STORAGE: [&str; 3] = ["int8", "int8-weights", "fp16"];

/// The steps of `variant`, oldest first; `f32` has none.
pub fn steps(variant: &str) -> Vec<&str> {
    variant.split('.').filter(|s| *s != "f32").collect()
}

/// The variant of a file made by `step` from one of `variant`.
pub fn then(variant: &str, step: &str) -> String {
    let mut all = steps(variant);
    all.push(step);
    all.join(".")
}

/// Whether a step of `variant` stored the kernels other than as float32.
fn stored(variant: &str) -> Option<&str> {
    steps(variant)
        .into_iter()
        .find(|s| STORAGE.contains(s) || codebook_bits(s).is_some())
}

/// The bits of a codebook step's name (`w4`).
pub fn codebook_bits(step: &str) -> Option<u32> {
    step.strip_prefix('w')?.parse().ok()
}

/// `model`, ready for a storage step (`step`, for the message): its
/// kernels must still be float32; those stored sparse come back dense, to
/// be stored sparse again in the step's own type.
pub fn for_storage(model: &FrozenModel, step: &str) -> Result<FrozenModel, CompressError> {
    if let Some(done) = stored(&model.meta.variant) {
        return Err(CompressError::Refused(format!(
            "the model's kernels are already stored as {done} (variant '{}'); {step} applies to float \
             files: run it on the file before that step",
            model.meta.variant
        )));
    }
    Ok(FrozenModel {
        proto: densify(&model.proto)?,
        ..model.clone()
    })
}

/// Refuses a model that pruning cannot start from: one already pruned
/// (prune the dense file to the sparsity wanted) or stored in another type
/// (prune the float file, then quantize). Thinned files are dense float
/// files, and may be pruned.
pub fn for_pruning(model: &FrozenModel) -> Result<(), CompressError> {
    let variant = &model.meta.variant;
    if let Some(done) = stored(variant) {
        return Err(CompressError::Refused(format!(
            "the model's kernels are stored as {done} (variant '{variant}'); prune the float file \
             first, then quantize the pruned file"
        )));
    }
    if steps(variant).iter().any(|s| s.starts_with('p')) {
        return Err(CompressError::Refused(format!(
            "the model is already pruned (variant '{variant}'); prune its dense parent to the \
             sparsity you want"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_compose_in_order() {
        assert_eq!(then("f32", "p75"), "p75");
        assert_eq!(then("p75", "int8"), "p75.int8");
        assert_eq!(then("thin25", "fp16"), "thin25.fp16");
        assert_eq!(steps("thin25.p50.int8"), ["thin25", "p50", "int8"]);
        assert_eq!(stored("p75.int8"), Some("int8"));
        assert_eq!(stored("thin25.p50"), None);
    }
}
