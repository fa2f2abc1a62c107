//! Learning-rate schedules, as a function of the global step so that a
//! resumed run picks up exactly where the schedule was.

use serde::{Deserialize, Serialize};

/// Share of the epochs a one-cycle schedule warms up for unless told, as in
/// PyTorch's OneCycleLR.
pub const ONECYCLE_WARMUP_SHARE: f64 = 0.3;

/// The shape of the learning rate over a run, relative to its peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The peak throughout (fine-tuning, tests).
    Constant,
    /// Multiplied by `factor` at each of the `milestones` (epochs), as in
    /// the all-convolutional notebook.
    Step { milestones: Vec<usize>, factor: f64 },
    /// Linear warm-up, then half a cosine down to 0.
    Cosine { warmup_epochs: f64 },
    /// Linear warm-up from 0, then a straight line down to 0: the
    /// cifar10-fast schedule.
    OneCycle { warmup_epochs: f64 },
}

impl Schedule {
    /// The warm-up of a schedule, in epochs, or `None` if it has none.
    pub fn warmup_epochs(&self) -> Option<f64> {
        match self {
            Schedule::Cosine { warmup_epochs } | Schedule::OneCycle { warmup_epochs } => {
                Some(*warmup_epochs)
            }
            Schedule::Constant | Schedule::Step { .. } => None,
        }
    }

    /// The learning rate of step `step` (from 0) of a run of `total` steps
    /// with `per_epoch` steps an epoch and peak `peak`.
    pub fn lr(&self, peak: f64, step: u64, per_epoch: u64, total: u64) -> f64 {
        let warmup = self
            .warmup_epochs()
            .map_or(0, |e| ((e * per_epoch as f64).round() as u64).min(total));
        if step < warmup {
            return peak * (step + 1) as f64 / warmup as f64;
        }
        // How far through the decay this step is, from 0 to just under 1.
        let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
        match self {
            Schedule::Constant => peak,
            Schedule::Step { milestones, factor } => {
                let epoch = (step / per_epoch) as usize;
                peak * factor.powi(milestones.iter().filter(|&&m| m <= epoch).count() as i32)
            }
            Schedule::Cosine { .. } => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
            Schedule::OneCycle { .. } => peak * (1.0 - progress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PER_EPOCH: u64 = 10;
    const TOTAL: u64 = 100;

    fn lrs(s: &Schedule) -> Vec<f64> {
        (0..TOTAL).map(|t| s.lr(0.4, t, PER_EPOCH, TOTAL)).collect()
    }

    #[test]
    fn step_multiplies_at_each_milestone() {
        let lr = lrs(&Schedule::Step {
            milestones: vec![2, 5],
            factor: 0.5,
        });
        assert_eq!(
            (lr[19], lr[20], lr[49], lr[50], lr[99]),
            (0.4, 0.2, 0.2, 0.1, 0.1)
        );
    }

    #[test]
    fn onecycle_rises_to_the_peak_then_falls_to_about_zero() {
        let lr = lrs(&Schedule::OneCycle { warmup_epochs: 2.0 });
        assert!((lr[0] - 0.02).abs() < 1e-12);
        assert_eq!(lr[19], 0.4);
        assert_eq!(lr[20], 0.4);
        assert!(lr[20..].windows(2).all(|w| w[1] < w[0]));
        assert!(lr[99] > 0.0 && lr[99] < 0.01);
    }

    #[test]
    fn cosine_without_warmup_starts_at_the_peak_and_halves_midway() {
        let lr = lrs(&Schedule::Cosine { warmup_epochs: 0.0 });
        assert_eq!(lr[0], 0.4);
        assert!((lr[50] - 0.2).abs() < 1e-12);
        assert!(lr[99] < 1e-3);
        assert!(lrs(&Schedule::Constant).iter().all(|&v| v == 0.4));
    }
}
