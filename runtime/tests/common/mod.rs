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
    export(&path, &graph);
    TestModel { dir, path, graph }
}

/// `graph` with random weights and the CIFAR-10 labels, written to `path`.
pub fn export(path: &Path, graph: &Graph) {
    let labels = CIFAR_LABELS.iter().map(|s| s.to_string()).collect();
    let meta = Metadata::new(graph, labels);
    onnx::export(path, graph, &weights_for(graph), &meta).unwrap();
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

/// Runs `tests/python/SCRIPT` with `args` in the Python that has torch,
/// onnx and onnxruntime (`$SQUEEZEBOX_PYTHON`, else `.venv`'s, which
/// scripts/setup.sh installs); its stdout.
pub fn python<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("SQUEEZEBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/python").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (scripts/setup.sh): {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `net` of export_nets.py as `torch.onnx.export` writes it at `opset`
/// (`13`, or `default`, the exporter's own): float [N,3,32,32] in, 10
/// classes out; in `dir`.
pub fn torch_export(dir: &Path, net: &str, opset: &str) -> PathBuf {
    let path = dir.join(format!("{net}.onnx"));
    python(
        "export_nets.py",
        &[
            net.as_ref(),
            path.as_os_str(),
            "--opset".as_ref(),
            opset.as_ref(),
        ],
    );
    path
}

/// export_nets.py's ResNet behind squeezebox's contract, taking pictures
/// 64 wide and 48 high (tests/python/squeezebox_net.py), in `dir`.
pub fn squeezebox_64x48(dir: &Path) -> PathBuf {
    let path = dir.join("wide.onnx");
    python(
        "squeezebox_net.py",
        &[
            path.as_os_str(),
            "--size".as_ref(),
            "48".as_ref(),
            "64".as_ref(),
        ],
    );
    path
}

/// onnxruntime's probabilities, one row per picture, for raw `pixels` of
/// `height` x `width`: a squeezebox file takes them as they are
/// (tests/python/onnxruntime_pixels.py); with `normalise` (mean, std),
/// another tool's classifier takes them standardised
/// (tests/python/onnxruntime_probabilities.py).
pub fn onnxruntime_probabilities(
    model: &Path,
    pixels: &[u8],
    (height, width): (usize, usize),
    normalise: Option<([f32; 3], [f32; 3])>,
) -> Vec<Vec<f32>> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("pixels.raw");
    std::fs::write(&raw, pixels).unwrap();
    let mut args: Vec<String> = vec![
        model.display().to_string(),
        raw.display().to_string(),
        height.to_string(),
        width.to_string(),
    ];
    let script = match normalise {
        None => "onnxruntime_pixels.py",
        Some(values) => {
            let list = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
            args.extend([list(values.0), list(values.1)]);
            "onnxruntime_probabilities.py"
        }
    };
    serde_json::from_str(&python(script, &args)).unwrap()
}
