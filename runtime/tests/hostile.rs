//! Hostile model files: seeded mutants of every kind of shipped file, each
//! through the readers that label-image, compress and report use, in
//! process. Each must load (and run) or give one clean line; never panic,
//! and never take long. Release builds abort on a panic, so a panic here is
//! a crash there.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use common::mutants::mutants;
use models::onnx::{self, sparse::densify};
use runtime::{Model, IMAGE_BYTES};

/// One of each kind of file in models/: dense f32, int8, pruned with
/// sparse storage at three sparsities, and thinned.
const FILES: [&str; 6] = [
    "squeeze1",
    "squeeze1.int8",
    "squeeze1.p50",
    "squeeze1.p75",
    "squeeze1.p90",
    "squeeze1.thin25",
];
/// Mutants of each file: a few hundred in all, within CI's time.
const PER_FILE: usize = 200;
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

#[test]
fn mutated_model_files_load_or_are_refused_in_one_line() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let (mut loaded, mut refused, mut failures) = (0, 0, Vec::new());
    for (seed, file) in FILES.iter().enumerate() {
        let bytes = std::fs::read(models.join(format!("{file}.onnx"))).unwrap();
        read_everywhere(&bytes).unwrap_or_else(|e| panic!("{file} itself: {e}"));
        for mutant in mutants(&bytes, seed as u64, PER_FILE) {
            let start = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| read_everywhere(&mutant.bytes))) {
                Ok(Ok(())) => loaded += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => failures.push(format!("{file}, {}: panicked", mutant.what)),
            }
            if start.elapsed() > LIMIT {
                failures.push(format!(
                    "{file}, {}: took {:?}",
                    mutant.what,
                    start.elapsed()
                ));
            }
        }
    }
    eprintln!("{loaded} mutants loaded and ran, {refused} refused");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
