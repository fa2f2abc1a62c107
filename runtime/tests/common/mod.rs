//! Test models without libtorch: zoo graphs with deterministic pseudo-random
//! weights, exported to a temporary directory. label-image's tests include
//! this file too, so there is one copy; each test binary uses part of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use models::onnx::{self, proto::ModelProto, Metadata};
use models::{zoo, Graph, ParamRole, Tensor, Weights};
use prost::Message;
use tempfile::TempDir;

pub mod mutants;

/// CIFAR-10's class names in label order, so output reads like the real thing.
pub const CIFAR_LABELS: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// A sample picture from `shared/images`.
pub fn sample(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/images")).join(name)
}

/// The CIFAR-10 binary data in `shared/`.
pub fn cifar_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cifar10"))
}

/// An exported model with random weights; the directory goes when it drops.
pub struct TestModel {
    pub dir: TempDir,
    pub path: PathBuf,
    pub graph: Graph,
}

/// `arch` from the zoo with random weights and the CIFAR-10 labels.
pub fn random_model(arch: &str) -> TestModel {
    let graph = zoo::arch(arch).unwrap().graph();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{arch}.onnx"));
    let labels = CIFAR_LABELS.iter().map(|s| s.to_string()).collect();
    onnx::export(
        &path,
        &graph,
        &weights_for(&graph),
        &Metadata::new(&graph, labels),
    )
    .unwrap();
    TestModel { dir, path, graph }
}

impl TestModel {
    /// A copy of the model, changed by `edit`, written beside it as `name`.
    pub fn edited(&self, name: &str, edit: impl FnOnce(&mut ModelProto)) -> PathBuf {
        let mut proto = onnx::decode(&std::fs::read(&self.path).unwrap())
            .unwrap()
            .proto;
        edit(&mut proto);
        let path = self.dir.path().join(name);
        std::fs::write(&path, proto.encode_to_vec()).unwrap();
        path
    }
}

/// Deterministic pseudo-random weights (xorshift), with plausible batch-norm
/// statistics.
fn weights_for(graph: &Graph) -> Weights {
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32) - 0.5
    };
    graph
        .params()
        .unwrap()
        .into_iter()
        .map(|p| {
            let n: usize = p.shape.iter().product();
            let data = (0..n)
                .map(|_| match p.role {
                    ParamRole::RunningVar => 0.5 + next().abs(),
                    ParamRole::NormScale => 1.0 + next() * 0.2,
                    _ => next() * 0.2,
                })
                .collect();
            (p.name, Tensor::new(p.shape, data).unwrap())
        })
        .collect()
}
