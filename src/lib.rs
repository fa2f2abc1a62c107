//! Shared helpers for squeezebox's end-to-end tests (`tests/`) and
//! benchmarks (`benches/`): where the shared data lives, and zoo models
//! exported with reproducible random weights.
//!
//! Never a dependency of a member crate: it links libtorch (through
//! `trainer`) for the tests that compare it with the runtime.

use std::path::{Path, PathBuf};

use models::onnx::Metadata;
use models::{ParamRole, Tensor, Weights};
use trainer::Net;

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared`, beside the checkout: the CIFAR-10 copy and sample images.
pub fn shared_dir() -> PathBuf {
    repo_root().join("../shared")
}

/// The ONNX files shipped in `models/`, sorted by name.
pub fn shipped_models() -> Vec<PathBuf> {
    let dir = repo_root().join("models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("models/ is readable")
        .map(|entry| entry.expect("models/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    files
}

/// The Python with onnx and onnxruntime: `$SQUEEZEBOX_PYTHON`, else the
/// one `scripts/setup.sh` installs in `.venv`.
pub fn python() -> PathBuf {
    std::env::var_os("SQUEEZEBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

/// The first `n` images of the CIFAR-10 test batch, as raw HWC pixels, and
/// the class names.
pub fn test_images(n: usize) -> (Vec<u8>, Vec<String>) {
    let source =
        cifar::open(shared_dir().join("cifar10")).expect("CIFAR-10 under ../shared/cifar10");
    let data = source
        .load(cifar::Split::Test, Some(n))
        .expect("test batch readable");
    (data.images, source.classes().to_vec())
}

/// A zoo network with its usual initialisation, then batch-norm statistics,
/// biases and gains moved off their defaults (seeded), so that every stored
/// value takes part in a comparison.
pub fn random_net(arch: &str, seed: i64) -> (tch::nn::VarStore, Net) {
    random_net_of(
        &models::zoo::arch(arch).expect("zoo architecture").graph(),
        seed,
    )
}

/// [`random_net`] for any graph, such as a zoo net as trained with batch
/// norm ([`models::Graph::with_batchnorm`]).
pub fn random_net_of(graph: &models::Graph, seed: i64) -> (tch::nn::VarStore, Net) {
    tch::manual_seed(seed);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let mut net = Net::new(&vs.root(), graph).expect("zoo graphs build");
    let mut state = seed as u64 * 2 + 1;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let roles: Vec<(String, ParamRole)> = graph
        .params()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.role))
        .collect();
    let mut weights: Weights = net.weights().unwrap();
    for (name, role) in roles {
        let t: &mut Tensor = weights.get_mut(&name).unwrap();
        for v in t.data.iter_mut() {
            *v = match role {
                ParamRole::Weight => *v,
                ParamRole::RunningVar => 0.5 + uniform().abs() * 2.0,
                ParamRole::NormScale => 1.0 + uniform() * 0.4,
                ParamRole::Bias | ParamRole::NormShift | ParamRole::RunningMean => uniform() * 0.2,
            };
        }
    }
    net.load_weights(&weights).unwrap();
    (vs, net)
}

/// Metadata for a test export of `net`, with the data set's class names.
pub fn test_metadata(net: &Net, labels: Vec<String>) -> Metadata {
    let mut meta = Metadata::new(net.graph(), labels);
    meta.dataset = Some("CIFAR-10".into());
    meta.command = Some("cargo test (random weights)".into());
    meta
}
