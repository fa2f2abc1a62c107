//! When to prune and how far: Zhu & Gupta's gradual schedule and two
//! simpler ones, as a function of the optimiser step.

/// How sparsity rises from the initial to the target value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ramp {
    /// Zhu & Gupta: `s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n·Δt))^3`, fast
    /// early while the net has redundant weights, slow near the target.
    Polynomial,
    /// The same increment at every pruning step.
    Constant,
    /// Everything at once before fine-tuning.
    Oneshot,
}

/// A pruning schedule starting at step t0 = 0: pruning steps at
/// `0, Δt, ..., n·Δt`, fine-tuning in between and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PruneSchedule {
    pub ramp: Ramp,
    /// `s_i`, reached at step 0.
    pub initial: f64,
    /// `s_f`, reached at step `n·Δt`.
    pub target: f64,
    /// `n`: pruning steps after the first.
    pub steps: u64,
    /// `Δt`: optimiser steps between pruning steps.
    pub frequency: u64,
}

impl PruneSchedule {
    /// The sparsity to prune to at optimiser step `step`, or `None` if no
    /// pruning happens then.
    pub fn at(&self, step: u64) -> Option<f64> {
        if self.ramp == Ramp::Oneshot {
            return (step == 0).then_some(self.target);
        }
        let frequency = self.frequency.max(1);
        let k = step / frequency;
        if k * frequency != step || k > self.steps {
            return None;
        }
        let done = k as f64 / self.steps.max(1) as f64;
        let (s_i, s_f) = (self.initial, self.target);
        Some(match self.ramp {
            Ramp::Polynomial => s_f + (s_i - s_f) * (1.0 - done).powi(3),
            _ => s_i + (s_f - s_i) * done,
        })
    }

    /// The optimiser step of the last pruning step.
    pub fn end(&self) -> u64 {
        match self.ramp {
            Ramp::Oneshot => 0,
            _ => self.steps * self.frequency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(ramp: Ramp) -> PruneSchedule {
        PruneSchedule {
            ramp,
            initial: 0.1,
            target: 0.8,
            steps: 4,
            frequency: 10,
        }
    }

    #[test]
    fn polynomial_rises_fast_then_slowly_to_the_target() {
        let s = schedule(Ramp::Polynomial);
        let values: Vec<f64> = (0..=4).map(|k| s.at(k * 10).unwrap()).collect();
        assert!((values[0] - 0.1).abs() < 1e-12 && (values[4] - 0.8).abs() < 1e-12);
        // (1 - 1/4)^3 of the way left after the first step.
        assert!((values[1] - (0.8 - 0.7 * 0.421875)).abs() < 1e-12);
        let rises: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(rises.windows(2).all(|r| r[1] < r[0]), "{rises:?}");
        assert_eq!((s.at(5), s.at(50), s.end()), (None, None, 40));
    }

    #[test]
    fn constant_steps_evenly_and_oneshot_prunes_once() {
        let s = schedule(Ramp::Constant);
        assert!((s.at(20).unwrap() - 0.45).abs() < 1e-12);
        let once = schedule(Ramp::Oneshot);
        assert_eq!((once.at(0), once.at(10), once.end()), (Some(0.8), None, 0));
    }
}
