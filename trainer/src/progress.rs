//! A terminal view of a run: an indicatif bar per epoch on stderr, and one
//! summary line per epoch that also reads well in a log file (where the
//! bar hides itself).

use std::ops::ControlFlow;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::history::EpochLog;
use crate::train::{Hooks, Progress};
use crate::Net;

/// [`Hooks`] that show progress on stderr.
pub struct ConsoleProgress {
    bar: ProgressBar,
    epochs: usize,
    /// When this process's first epoch began and how many it has done, for
    /// the run's time left.
    started: Option<Instant>,
    done: usize,
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        ConsoleProgress {
            bar: ProgressBar::hidden(),
            epochs: 0,
            started: None,
            done: 0,
        }
    }
}

impl ConsoleProgress {
    /// Prints `line` on stderr above the bar, for what a caller adds to a
    /// run (a pruning step, say), without tearing the bar.
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
}

impl Hooks for ConsoleProgress {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epochs = epochs;
        if self.started.is_none() && epoch > 1 {
            eprintln!("resuming at epoch {epoch}/{epochs}");
        }
        self.started.get_or_insert_with(Instant::now);
        let style = ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
        self.bar = ProgressBar::new(steps as u64)
            .with_style(style)
            .with_prefix(format!("epoch {epoch}/{epochs}"));
    }

    fn progress(&mut self, p: &Progress) {
        self.bar.set_position(p.step as u64);
        self.bar.set_message(format!(
            "loss {:.3} acc {:.1}% {:.0} img/s lr {:.4}",
            p.loss,
            100.0 * p.accuracy,
            p.images_per_sec,
            p.lr
        ));
    }

    fn epoch_ended(&mut self, log: &EpochLog) -> ControlFlow<()> {
        self.bar.finish_and_clear();
        self.done += 1;
        let per_epoch = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64()) / self.done as f64;
        let left = per_epoch * self.epochs.saturating_sub(log.epoch) as f64 / 60.0;
        eprintln!(
            "epoch {}/{}: train loss {:.3} acc {:.1}% | val loss {:.3} acc {:.2}% | lr {:.4} | {:.0} s, about {:.0} min left",
            log.epoch,
            self.epochs,
            log.train_loss,
            100.0 * log.train_acc,
            log.val_loss,
            100.0 * log.val_acc,
            log.lr,
            log.seconds,
            left
        );
        ControlFlow::Continue(())
    }
}

/// [`Hooks`] that run `step` after every optimiser step (with the console,
/// for notes above the bar) and show progress on stderr: what fine-tuning
/// with a constraint (pruning masks, shared weights) needs.
pub struct Stepped<'c, F> {
    pub console: &'c mut ConsoleProgress,
    pub step: F,
}

impl<F: FnMut(&ConsoleProgress, &Net, Option<&Net>)> Hooks for Stepped<'_, F> {
    fn after_step(&mut self, net: &Net, ema: Option<&Net>) {
        (self.step)(self.console, net, ema);
    }

    fn epoch_started(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.console.epoch_started(epoch, epochs, steps);
    }

    fn progress(&mut self, progress: &Progress) {
        self.console.progress(progress);
    }

    fn epoch_ended(&mut self, log: &EpochLog) -> ControlFlow<()> {
        self.console.epoch_ended(log)
    }
}
