//! `compress prune` on a seeded squeeze1 and a few hundred CIFAR-10 images:
//! the schedule reaches its target, pruned weights stay zero through
//! fine-tuning, the smaller file loads in tract and onnxruntime, and bad
//! input is a one-line error.

use std::path::{Path, PathBuf};

use compress::prune::{prune, Norm, PruneOptions, Ramp, Scope};
use compress::sparse_storage::zero_kernel_values;
use models::onnx::sparse::densify;
use models::onnx::{self, Metadata};
use prost::Message;
use trainer::batch_norm::BatchNorm;
use trainer::data::{Data, Limits};
use trainer::schedule::Schedule;
use trainer::train::Recipe;

mod common;

use common::{compress, repo, s};

fn cifar_dir() -> PathBuf {
    repo().join("../shared/cifar10")
}

const LIMITS: Limits = Limits {
    train: Some(256),
    val: Some(100),
    test: Some(100),
};

/// A squeeze1 with seeded weights, as `compress` reads it; the classifier's
/// scaled by `logit_scale`.
fn squeeze1(logit_scale: f32) -> onnx::FrozenModel {
    let graph = models::zoo::arch("squeeze1").unwrap().graph();
    let mut weights = models::weights::seeded(&graph, 11).unwrap();
    weights
        .get_mut("conv10.weight")
        .unwrap()
        .data
        .iter_mut()
        .for_each(|v| *v *= logit_scale);
    let labels = cifar::open(cifar_dir()).unwrap().classes().to_vec();
    let bytes = onnx::encode(&graph, &weights, &Metadata::new(&graph, labels))
        .unwrap()
        .encode_to_vec();
    onnx::decode(&bytes).unwrap()
}

/// Fine-tuning of 8 steps of 32 images; pruning in 4 steps, one apart, so
/// that 4 steps follow the last.
fn options(ramp: Ramp, scope: Scope, ema: Option<f64>) -> PruneOptions {
    let recipe = Recipe {
        epochs: 2,
        batch: 32,
        steps_per_epoch: Some(4),
        lr: 0.05,
        ema,
        limits: LIMITS,
        schedule: Schedule::Constant,
        ..Recipe::default()
    };
    PruneOptions {
        ramp,
        initial: 0.0,
        target: 0.75,
        steps: 4,
        frequency: Some(1),
        scope,
        structured: None,
        exclude: None,
        batch_norm: BatchNorm::Conv,
        recipe,
        device: tch::Device::Cpu,
    }
}

fn kernel_weights(proto: &onnx::proto::ModelProto) -> models::Weights {
    let graph = models::zoo::arch("squeeze1").unwrap().graph();
    onnx::read_weights(&densify(proto).unwrap(), &graph).unwrap()
}

#[test]
fn pruning_reaches_the_target_and_pruned_weights_stay_zero() {
    tch::set_num_threads(1);
    let model = squeeze1(1.0);
    let data = Data::load(&cifar_dir(), &LIMITS).unwrap();
    let original = kernel_weights(&model.proto);
    for (ramp, scope, ema) in [
        (Ramp::Polynomial, Scope::Global, None),
        (Ramp::Constant, Scope::Layer, Some(0.9)),
    ] {
        let p = prune(&model, &data, &options(ramp, scope, ema)).unwrap();
        assert_eq!(p.excluded, vec!["conv1".to_string(), "conv10".to_string()]);
        let pruned: Vec<_> = p
            .layers
            .iter()
            .filter(|l| !["conv1.weight", "conv10.weight"].contains(&l.kernel.as_str()))
            .collect();
        // Magnitude pruning drops exactly round(75%) of the values; any
        // pruned weight that fine-tuning (momentum, weight decay, the moving
        // average) moved off zero would leave fewer zeros.
        let (zeros, values) = pruned
            .iter()
            .fold((0, 0), |(z, v), l| (z + l.zeros, v + l.values));
        assert_eq!(
            zeros,
            (0.75 * values as f64).round() as usize,
            "{ramp:?} {scope:?}"
        );
        // The report's count, read from the stored (sparse) file, agrees.
        assert_eq!(zero_kernel_values(&p.proto).unwrap(), zeros);
        for l in &pruned {
            let share = l.zeros as f64 / l.values as f64;
            match scope {
                Scope::Layer => assert!((share - 0.75).abs() < 1e-3, "{}: {share}", l.kernel),
                Scope::Global => assert!(share > 0.1, "{}: {share}", l.kernel),
            }
        }
        assert!(p
            .layers
            .iter()
            .filter(|l| l.kernel.starts_with("conv"))
            .all(|l| l.zeros == 0));
        // The weights that were kept were fine-tuned.
        let after = kernel_weights(&p.proto);
        let k = "fire2.expand3x3.weight";
        let kept = after[k]
            .data
            .iter()
            .zip(&original[k].data)
            .filter(|(a, _)| **a != 0.0);
        assert!(kept.clone().count() > 0 && kept.filter(|(a, b)| a != b).count() > 0);
        assert!(p.stored_sparse.contains(&k.to_string()));
        assert_eq!(p.meta.variant, "p75");
    }
}

#[test]
fn oneshot_prunes_before_fine_tuning() {
    tch::set_num_threads(1);
    let model = squeeze1(1.0);
    let data = Data::load(&cifar_dir(), &LIMITS).unwrap();
    let opts = PruneOptions {
        frequency: None,
        ..options(Ramp::Oneshot, Scope::Global, None)
    };
    let p = prune(&model, &data, &opts).unwrap();
    assert_eq!(p.schedule.unwrap().end(), 0);
    assert!((p.sparsity - 0.75).abs() < 1e-4, "{}", p.sparsity);
}

/// A quick `compress prune` run of `input` to `output`, with `extra` flags.
fn prune_args(input: &Path, output: &Path, extra: &[&str]) -> Vec<String> {
    let data = cifar_dir();
    let mut args = vec![
        "prune",
        s(input),
        "-o",
        s(output),
        "--data",
        s(&data),
        "--epochs",
        "1",
        "--batch",
        "32",
    ];
    args.extend([
        "--steps",
        "3",
        "--train-limit",
        "200",
        "--val-limit",
        "100",
        "--test-limit",
        "100",
    ]);
    args.extend(["--threads", "1", "--device", "cpu"]);
    args.extend(extra);
    args.into_iter().map(String::from).collect()
}

#[test]
fn the_pruned_file_is_smaller_and_loads_in_tract_and_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let (dense, sparse) = (dir.path().join("f32.onnx"), dir.path().join("p75.onnx"));
    // Logits spread enough for clear top-1 decisions in the comparison below.
    std::fs::write(&dense, squeeze1(20.0).proto.encode_to_vec()).unwrap();
    let out = compress(&prune_args(&dense, &sparse, &["--sparsity", "0.75"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("validation accuracy") && stdout.contains("fire5.expand3x3.weight"),
        "{stdout}"
    );

    let (a, b) = (
        std::fs::metadata(&dense).unwrap().len(),
        std::fs::metadata(&sparse).unwrap().len(),
    );
    assert!(
        (b as f64) <= 0.40 * a as f64,
        "{b} bytes is more than 40% of {a}"
    );

    let model = runtime::Model::load(&sparse).unwrap();
    let meta = model.meta();
    assert_eq!(meta.variant, "p75");
    assert!(
        meta.compression.last().unwrap().starts_with("prune: 75.0%"),
        "{:?}",
        meta.compression
    );
    let details: serde_json::Value = serde_json::from_str(&meta.extra["pruning"]).unwrap();
    assert!(details["layers"]["fire3.squeeze.weight"].as_f64().unwrap() > 0.3);
    assert!(
        details["val_accuracy_before"].is_number() && details["test_accuracy_after"].is_number()
    );

    // The stored kernels decode to what the dense form of the same file computes.
    let pixels = cifar::open(cifar_dir())
        .unwrap()
        .load(cifar::Split::Test, Some(40))
        .unwrap()
        .images;
    let stored = onnx::decode(&std::fs::read(&sparse).unwrap()).unwrap();
    let unpacked = dir.path().join("unpacked.onnx");
    std::fs::write(&unpacked, densify(&stored.proto).unwrap().encode_to_vec()).unwrap();
    let (p, q) = (
        model.run(&pixels).unwrap(),
        runtime::Model::load(&unpacked)
            .unwrap()
            .run(&pixels)
            .unwrap(),
    );
    assert_eq!(p.logits, q.logits);
    assert!(std::fs::metadata(&unpacked).unwrap().len() > a * 9 / 10);

    // onnxruntime and the ONNX checker take the file as it is.
    std::fs::remove_file(&unpacked).unwrap();
    std::fs::remove_file(&dense).unwrap();
    std::fs::write(dir.path().join("pixels.bin"), &pixels).unwrap();
    let rows: Vec<&[f32]> = (0..p.len()).map(|i| p.probabilities_of(i)).collect();
    let expected = serde_json::json!({ "p75.onnx": rows });
    std::fs::write(dir.path().join("expected.json"), expected.to_string()).unwrap();
    let report = common::conformance(dir.path());
    assert!(report.contains("1 passed, 0 failed"), "{report}");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out) = (dir.path().join("m.onnx"), dir.path().join("o.onnx"));
    std::fs::write(&model, squeeze1(1.0).proto.encode_to_vec()).unwrap();
    let mut no_arch = squeeze1(1.0).proto;
    no_arch
        .metadata_props
        .retain(|p| p.key.as_deref() != Some("arch"));
    let bare = dir.path().join("no-arch.onnx");
    std::fs::write(&bare, no_arch.encode_to_vec()).unwrap();
    let missing = dir.path().join("no-such-cifar");

    let cases = [
        (
            prune_args(&model, &out, &["--sparsity", "1.0"]),
            "--sparsity",
        ),
        (prune_args(&model, &out, &["--sparsity=-0.1"]), "--sparsity"),
        (
            prune_args(&bare, &out, &["--sparsity", "0.5"]),
            "no-arch.onnx: not a squeezebox model: metadata 'arch': missing",
        ),
        (
            prune_args(&model, &out, &["--sparsity", "0.5", "--data", s(&missing)]),
            "no-such-cifar",
        ),
        (
            prune_args(
                &model,
                &out,
                &["--sparsity", "0.5", "--exclude", "fire9.squeeze"],
            ),
            "--exclude fire9.squeeze",
        ),
    ];
    for (args, expected) in cases {
        let result = compress(&args);
        let err = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expected) && err.lines().count() == 1 && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    assert!(!out.exists());
}

/// Thinning is exact: the narrower model computes what the original does
/// with the removed filters (weights and bias) zeroed.
#[test]
fn thinning_removes_filters_and_their_readers_channels_exactly() {
    let graph = models::zoo::arch("squeeze1").unwrap().graph();
    let weights = models::weights::seeded(&graph, 5).unwrap();
    let exclude = ["conv1".to_string()];
    let (thin, thin_weights, widths) =
        compress::prune::thin::thin(&graph, &weights, 0.5, Norm::L1, &exclude).unwrap();
    // Every fire convolution, not conv1 (excluded) nor conv10 (the logits).
    assert_eq!(widths.len(), 12);
    assert!(widths.iter().all(|w| w.kept.len() == w.before / 2));
    let mut zeroed = weights.clone();
    for w in &widths {
        let (kernel, bias) = (format!("{}.weight", w.layer), format!("{}.bias", w.layer));
        let per = zeroed[&kernel].data.len() / w.before;
        for c in (0..w.before).filter(|c| !w.kept.contains(c)) {
            zeroed.get_mut(&kernel).unwrap().data[c * per..(c + 1) * per].fill(0.0);
            zeroed.get_mut(&bias).unwrap().data[c] = 0.0;
        }
    }
    let run = |g: &models::Graph, w: &models::Weights| {
        let meta = Metadata::new(g, (0..10).map(|i| i.to_string()).collect());
        let bytes = onnx::encode(g, w, &meta).unwrap().encode_to_vec();
        (
            bytes.len(),
            runtime::Model::from_bytes(&bytes)
                .unwrap()
                .run(&sample_pixels())
                .unwrap()
                .logits,
        )
    };
    let ((full_bytes, expected), (thin_bytes, got)) =
        (run(&graph, &zeroed), run(&thin, &thin_weights));
    let worst = common::max_abs_diff(&expected, &got);
    assert!(worst < 1e-4, "thinned logits differ by {worst}");
    assert!(
        thin_bytes < full_bytes * 2 / 5,
        "{thin_bytes} vs {full_bytes}"
    );
    let macs = |g: &models::Graph| models::cost(g).unwrap().macs;
    assert!(macs(&thin) < macs(&graph) / 2);
}

#[test]
fn thinning_passes_through_lrn_and_flatten_into_the_dense_layers() {
    let graph = models::zoo::arch("tuto").unwrap().graph();
    let weights = models::weights::seeded(&graph, 5).unwrap();
    let (thin, thin_weights, widths) =
        compress::prune::thin::thin(&graph, &weights, 0.25, Norm::L2, &[]).unwrap();
    let names: Vec<&str> = widths.iter().map(|w| w.layer.as_str()).collect();
    assert_eq!(names, ["conv1", "conv2"]);
    assert!(widths.iter().all(|w| w.kept.len() == w.before * 3 / 4));
    // fc1 reads the flattened conv2 output: its columns shrink with it.
    let fc1 = |w: &models::Weights| w["fc1.weight"].shape[1];
    assert_eq!(fc1(&thin_weights) * 4, fc1(&weights) * 3);
    let meta = Metadata::new(&thin, (0..10).map(|i| i.to_string()).collect());
    let bytes = onnx::encode(&thin, &thin_weights, &meta)
        .unwrap()
        .encode_to_vec();
    let out = runtime::Model::from_bytes(&bytes)
        .unwrap()
        .run(&sample_pixels())
        .unwrap();
    assert!(out.logits.iter().all(|v| v.is_finite()));
}

/// Eight images with some structure.
fn sample_pixels() -> Vec<u8> {
    (0..8 * 3072)
        .map(|i| ((i % 3072) / 96 * 7 + (i / 3072) * 29 + (i % 5) * 13) as u8)
        .collect()
}

#[test]
fn sensitivity_reports_every_kernel_and_draws_the_curves() {
    let dir = tempfile::tempdir().unwrap();
    let (model, plot) = (dir.path().join("f32.onnx"), dir.path().join("curves.png"));
    std::fs::write(&model, squeeze1(20.0).proto.encode_to_vec()).unwrap();
    let args = [
        "sensitivity".into(),
        model.display().to_string(),
        "--data".into(),
        cifar_dir().display().to_string(),
        "--images".into(),
        "100".into(),
        "--sparsities".into(),
        "0.5,0.9".into(),
        "--json".into(),
        "--plot".into(),
        plot.display().to_string(),
        "--device".into(),
        "cpu".into(),
        "--threads".into(),
        "1".into(),
    ];
    let out = compress(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kernels = models::zoo::arch("squeeze1")
        .unwrap()
        .graph()
        .params()
        .unwrap()
        .into_iter()
        .filter(|p| p.role == models::ParamRole::Weight)
        .count();
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), kernels);
    for layer in layers {
        let accuracy = layer["accuracy"].as_array().unwrap();
        assert_eq!(accuracy.len(), 2, "{layer}");
        assert!(accuracy
            .iter()
            .all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())));
    }
    let png = std::fs::read(&plot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
