//! Which weights to prune: those of smallest magnitude, under one threshold
//! for every tensor (global) or one per tensor (layer).

/// Where a magnitude threshold applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// One threshold over all pruned tensors: layers with many small
    /// weights give up more of them.
    Global,
    /// Each tensor pruned to the same sparsity.
    Layer,
}

/// Keep-masks (`true`: kept) that prune `sparsity` of the values of
/// `tensors` by magnitude within `scope`. Zeros go first, so a weight pruned
/// earlier stays pruned as sparsity rises.
pub fn masks(tensors: &[&[f32]], sparsity: f64, scope: Scope) -> Vec<Vec<bool>> {
    let count = |n: usize| ((sparsity * n as f64).round() as usize).min(n);
    match scope {
        Scope::Global => smallest(tensors, count(tensors.iter().map(|t| t.len()).sum())),
        Scope::Layer => tensors
            .iter()
            .flat_map(|t| smallest(&[t], count(t.len())))
            .collect(),
    }
}

/// Keep-masks that drop exactly the `count` values of smallest magnitude
/// across `tensors`; ties at the threshold go in order.
fn smallest(tensors: &[&[f32]], count: usize) -> Vec<Vec<bool>> {
    let mut magnitudes: Vec<f32> = tensors
        .iter()
        .flat_map(|t| t.iter().map(|v| v.abs()))
        .collect();
    if count == 0 || magnitudes.is_empty() {
        return tensors.iter().map(|t| vec![true; t.len()]).collect();
    }
    let count = count.min(magnitudes.len());
    let (_, &mut threshold, _) = magnitudes.select_nth_unstable_by(count - 1, f32::total_cmp);
    let below = tensors
        .iter()
        .flat_map(|t| t.iter())
        .filter(|v| v.abs() < threshold)
        .count();
    let mut ties = count - below;
    tensors
        .iter()
        .map(|t| {
            t.iter()
                .map(|v| {
                    let m = v.abs();
                    if m < threshold {
                        false
                    } else if m == threshold && ties > 0 {
                        ties -= 1;
                        false
                    } else {
                        true
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pruned(masks: &[Vec<bool>]) -> Vec<usize> {
        masks
            .iter()
            .map(|m| m.iter().filter(|k| !**k).count())
            .collect()
    }

    #[test]
    fn global_prunes_the_smallest_anywhere_layer_prunes_each_alike() {
        let a = [0.1f32, -0.2, 0.3, 0.4];
        let b = [1.0f32, -2.0, 3.0, 4.0];
        let global = masks(&[&a, &b], 0.5, Scope::Global);
        assert_eq!(pruned(&global), vec![4, 0]);
        let layer = masks(&[&a, &b], 0.5, Scope::Layer);
        assert_eq!(layer[0], vec![false, false, true, true]);
        assert_eq!(layer[1], vec![false, false, true, true]);
    }

    #[test]
    fn zeros_go_first_and_ties_reach_the_exact_count() {
        let t = [0.0f32, 0.5, 0.5, 0.5, 0.0, 0.5];
        let m = masks(&[&t], 0.5, Scope::Layer);
        assert_eq!(m[0], vec![false, false, true, true, false, true]);
        assert_eq!(pruned(&masks(&[&t], 0.0, Scope::Global)), vec![0]);
        assert_eq!(pruned(&masks(&[&t], 0.99, Scope::Global)), vec![6]);
    }
}
