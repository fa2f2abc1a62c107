//! Hostile model files: seeded mutants of every kind of shipped file, each
//! through the readers that label-image, compress and report use, in
//! process. Each must load (and run) or give one clean line; never panic,
//! and never take long. Release builds abort on a panic, so a panic here is
//! a crash there.

mod common;

use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use common::mutants::mutants;
use common::torch_export;
use models::onnx::{self, sparse::densify};
use runtime::foreign::Normalise;
use runtime::{Model, RuntimeError, IMAGE_BYTES};

/// One of each kind of file in models/: dense f32, int8, pruned with
/// sparse storage at three sparsities, thinned, and pruned then quantized
/// (sparse int8, and sparse int8 whose values are 4-bit codes).
const FILES: [&str; 8] = [
    "squeeze1",
    "squeeze1.int8",
    "squeeze1.p50",
    "squeeze1.p75",
    "squeeze1.p90",
    "squeeze1.thin25",
    "squeeze1.p75.int8",
    "squeeze1.p75.tw4.int8.w4",
];
/// Mutants of each file: about twelve hundred in all, within CI's time.
const PER_FILE: usize = 150;
/// The most one mutant may take, in any build.
const LIMIT: Duration = Duration::from_secs(10);

/// What the tools do with a file: compress's and report's readers (decode,
/// the layer graph, the weights with sparse kernels densified), then the
/// runtime's load and one run. `Err` is a refusal, which must be one line.
fn read_everywhere(bytes: &[u8]) -> Result<(), String> {
    let one_line = |e: String| {
        assert!(!e.is_empty() && !e.contains('\n'), "not one line: {e:?}");
        e
    };
    if let Ok(frozen) = onnx::decode(bytes) {
        if let Ok(graph) = frozen.layer_graph() {
            let dense = densify(&frozen.proto).map_err(|e| one_line(e.to_string()))?;
            // int8 files have no float weights: a refusal is their answer.
            let _ = onnx::read_weights(&dense, &graph).map_err(|e| one_line(e.to_string()));
        }
    }
    let model = Model::from_bytes(bytes).map_err(|e| one_line(e.to_string()))?;
    model
        .run(&[128; IMAGE_BYTES])
        .map_err(|e| one_line(e.to_string()))?;
    Ok(())
}

/// What label-image does with another tool's classifier: load it with a
/// normalisation and run one picture.
fn read_foreign(bytes: &[u8]) -> Result<(), String> {
    let one_line = |e: RuntimeError| {
        let e = e.to_string();
        assert!(!e.is_empty() && !e.contains('\n'), "not one line: {e:?}");
        e
    };
    let normalise = Normalise::new(&[0.5; 3], &[0.25; 3]).unwrap();
    let model = Model::foreign_from_bytes(bytes, normalise, NonZeroUsize::MIN).map_err(one_line)?;
    model
        .run(&vec![128; model.image_bytes()])
        .map_err(one_line)?;
    Ok(())
}

/// Tallies of a run over mutants, and what went wrong, one line each.
#[derive(Default)]
struct Tally {
    loaded: usize,
    refused: usize,
    failures: Vec<String>,
}

impl Tally {
    /// Runs `count` mutants of each shipped kind of file, from `seed` on.
    fn run(&mut self, seed: u64, count: usize) {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for (i, file) in FILES.iter().enumerate() {
            let bytes = std::fs::read(models.join(format!("{file}.onnx"))).unwrap();
            let seed = seed * FILES.len() as u64 + i as u64;
            self.run_on(file, &bytes, seed, count, read_everywhere);
        }
    }

    /// Runs `count` mutants of `bytes`, the file `file`, through `read`.
    fn run_on(
        &mut self,
        file: &str,
        bytes: &[u8],
        seed: u64,
        count: usize,
        read: fn(&[u8]) -> Result<(), String>,
    ) {
        for mutant in mutants(bytes, seed, count) {
            let start = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| read(&mutant.bytes))) {
                Ok(Ok(())) => self.loaded += 1,
                Ok(Err(_)) => self.refused += 1,
                Err(_) => self.fail(file, seed, &mutant.what, "panicked"),
            }
            if start.elapsed() > LIMIT {
                self.fail(
                    file,
                    seed,
                    &mutant.what,
                    &format!("took {:?}", start.elapsed()),
                );
            }
        }
    }

    fn fail(&mut self, file: &str, seed: u64, what: &str, how: &str) {
        self.failures
            .push(format!("{file} (seed {seed}), {what}: {how}"));
    }

    fn check(&self) {
        eprintln!(
            "{} mutants loaded and ran, {} refused",
            self.loaded, self.refused
        );
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
    }
}

#[test]
fn shipped_files_pass() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for file in FILES {
        let bytes = std::fs::read(models.join(format!("{file}.onnx"))).unwrap();
        read_everywhere(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Mutants of a `torch.onnx.export` file (export_nets.py's ResNet), read as
/// label-image reads other tools' classifiers, with tract-onnx's whole
/// registry where `all-ops` is on.
#[test]
fn mutated_foreign_files_load_or_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(torch_export(dir.path(), "resnet", "13")).unwrap();
    read_foreign(&bytes).unwrap();
    let mut tally = Tally::default();
    tally.run_on("resnet.onnx", &bytes, 0, PER_FILE * 2, read_foreign);
    tally.check();
}

#[test]
fn mutated_model_files_load_or_are_refused_in_one_line() {
    let mut tally = Tally::default();
    tally.run(0, PER_FILE);
    tally.check();
}

/// The same mutators as a fuzzer, for longer runs on a developer's
/// machine: new seeds until `HOSTILE_SECONDS` (default 60) have passed,
/// from `HOSTILE_SEED` (default 1; CI's test uses seed 0):
/// `HOSTILE_SECONDS=1800 cargo test -p runtime --test hostile -- --ignored`.
#[test]
#[ignore]
fn fuzz_for_a_while() {
    let number = |var: &str, default: u64| {
        std::env::var(var).map_or(default, |v| v.parse().expect("a number"))
    };
    let end = Instant::now() + Duration::from_secs(number("HOSTILE_SECONDS", 60));
    let mut tally = Tally::default();
    let mut seed = number("HOSTILE_SEED", 1);
    while Instant::now() < end {
        tally.run(seed, 40);
        seed += 1;
    }
    eprintln!("seeds up to {}", seed - 1);
    tally.check();
}
