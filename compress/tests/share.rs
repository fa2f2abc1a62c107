//! `compress share` on the shipped squeeze1.p80 and a few hundred CIFAR-10
//! images: the kernels end on codebooks that static int8 stores exactly,
//! pruned weights stay zero, and bad options are one-line errors.

use std::collections::BTreeSet;
use std::path::Path;

use models::onnx::{self, proto::GraphProto, sparse::Element};

mod common;

use common::{compress, repo, s};

/// The tiny fine-tuning every run here takes.
const TUNE: [&str; 12] = [
    "--epochs",
    "1",
    "--steps-per-epoch",
    "3",
    "--batch",
    "32",
    "--train-limit",
    "256",
    "--val-limit",
    "100",
    "--test-limit",
    "100",
];

fn run(args: &[&str]) -> std::process::Output {
    let data = repo().join("../shared/cifar10");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--data", s(&data), "--device", "cpu"]);
    all.extend(TUNE);
    compress(&all)
}

fn graph(path: &Path) -> GraphProto {
    let frozen = onnx::decode(&std::fs::read(path).unwrap()).unwrap();
    onnx::sparse::densify(&frozen.proto).unwrap().graph.unwrap()
}

/// Each layer's kernel values: the convolution's weight input, or the
/// `QLinearConv`'s.
fn kernels(graph: &GraphProto) -> Vec<(String, Vec<f64>)> {
    let layers = graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type(), "Conv" | "QLinearConv"));
    layers
        .map(|n| {
            let weight = &n.input[if n.op_type() == "QLinearConv" { 3 } else { 1 }];
            let t = graph
                .initializer
                .iter()
                .find(|t| t.name.as_ref() == Some(weight));
            let t = t.unwrap_or_else(|| panic!("{weight} is not stored"));
            let ty = onnx::proto::tensor_proto::DataType::try_from(t.data_type()).unwrap();
            let element = Element::of(ty).unwrap();
            let values = compress::codebook::values_of(element, t.raw_data.as_deref().unwrap());
            (n.name.clone().unwrap(), values)
        })
        .collect()
}

fn distinct_non_zero(values: &[f64]) -> usize {
    let set: BTreeSet<u64> = values
        .iter()
        .filter(|v| **v != 0.0)
        .map(|v| v.to_bits())
        .collect();
    set.len()
}

#[test]
fn shared_kernels_are_stored_exactly_and_keep_their_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let p80 = repo().join("models/squeeze1.p80.onnx");
    let tw3 = dir.path().join("p80.tw3.onnx");
    let o = run(&["share", s(&p80), "-o", s(&tw3), "--weight-bits", "3"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("clustered") && out.contains("fire2.expand3x3.weight"),
        "{out}"
    );
    let model = runtime::Model::load(&tw3).unwrap();
    assert_eq!(model.meta().variant, "p80.tw3");
    let step = model.meta().compression.last().unwrap().clone();
    assert!(
        step.starts_with("tw3: 14 kernels on k-means codebooks of at most 8"),
        "{step}"
    );

    // Pruned weights are still zero.
    let (before, after) = (kernels(&graph(&p80)), kernels(&graph(&tw3)));
    for ((layer, b), (_, a)) in before.iter().zip(&after) {
        let lost = b
            .iter()
            .zip(a)
            .filter(|(b, a)| **b == 0.0 && **a != 0.0)
            .count();
        assert_eq!(lost, 0, "{layer}");
    }

    // Static int8 finds the codebooks: at most 8 levels a kernel, zero
    // among them where the kernel has zeros, and 3-bit sharing of the int8
    // file changes no weight.
    let int8 = dir.path().join("p80.tw3.int8.onnx");
    let w3 = dir.path().join("p80.tw3.int8.w3.onnx");
    let calib = repo().join("../shared/cifar10");
    for (out, extra) in [(&int8, &[][..]), (&w3, &["--weight-bits", "3"][..])] {
        let mut args = vec!["quantize", s(&tw3), "-o", s(out), "--calib", s(&calib)];
        args.extend(["--calib-images", "100"]);
        args.extend(extra);
        let o = compress(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (stored, coded) = (kernels(&graph(&int8)), kernels(&graph(&w3)));
    assert_eq!(stored.len(), 14);
    for ((layer, q), (_, c)) in stored.iter().zip(&coded) {
        let zero = q.contains(&0.0) as usize;
        assert!(
            distinct_non_zero(q) + zero <= 8,
            "{layer}: {} levels",
            distinct_non_zero(q)
        );
        assert_eq!(q, c, "{layer}: sharing changed the int8 kernel");
    }
}

#[test]
fn bad_options_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p80 = repo().join("models/squeeze1.p80.onnx");
    let int8 = repo().join("models/squeeze1.p80.int8.onnx");
    let out = dir.path().join("never.onnx");
    for (args, want) in [
        (
            vec![
                "share",
                s(&p80),
                "-o",
                s(&out),
                "--weight-bits",
                "4",
                "--share-only",
                "expand5x5",
            ],
            "--share-only expand5x5",
        ),
        (
            vec!["share", s(&int8), "-o", s(&out), "--weight-bits", "4"],
            "already stored as int8",
        ),
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{want}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "expected '{want}' in: {err}");
        assert!(!out.exists());
    }
}
