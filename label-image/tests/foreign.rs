//! Other tools' classifiers, as `torch.onnx.export` writes them
//! (tests/python/export_nets.py), run with --mean, --std and --labels: the
//! same top-1 and probabilities as onnxruntime on the original file, given
//! the same preprocessed pixels. And squeezebox files of another size than
//! 32x32, whose pictures are resized to it.

mod common;

use common::{
    accepted, cifar_dir, label_image, onnxruntime_probabilities, sample, squeezebox_64x48,
    torch_export, Run,
};
use runtime::preprocess::load_image;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn list(values: [f32; 3]) -> String {
    values.map(|v| v.to_string()).join(",")
}

/// The ResNet (ending in logits) at opset 13 and at the exporter's
/// default (torch.export's), and the MobileNet (ending in Softmax).
#[test]
fn torch_exports_agree_with_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    let names: Vec<String> = (0..10).map(|i| format!("kind {i}")).collect();
    std::fs::write(&labels, names.join("\n")).unwrap();
    // CIFAR-sized pictures: resizing to the model's 32x32 leaves them be.
    let pictures = [sample("cat.png"), sample("ship.png"), sample("frog.png")];
    let pixels: Vec<u8> = pictures
        .iter()
        .flat_map(|p| load_image(p).unwrap())
        .collect();
    for (net, opset) in [("resnet", "13"), ("mobilenet", "13"), ("resnet", "default")] {
        let model = torch_export(dir.path(), net, opset);
        let mut args = vec![
            "--model".into(),
            model.display().to_string(),
            "--mean".into(),
            list(MEAN),
            "--std".into(),
            list(STD),
            "--labels".into(),
            labels.display().to_string(),
            "--json".into(),
            "--top-k".into(),
            "10".into(),
            "--runs".into(),
            "1".into(),
            "--warmup".into(),
            "0".into(),
        ];
        args.extend(pictures.iter().map(|p| p.display().to_string()));
        let report: serde_json::Value = serde_json::from_str(&accepted(&args)).unwrap();
        assert_eq!(report["model"]["mean"][1].as_f64().unwrap() as f32, MEAN[1]);
        let want = onnxruntime_probabilities(&model, &pixels, (32, 32), Some((MEAN, STD)));
        for (image, want) in report["images"].as_array().unwrap().iter().zip(&want) {
            let top = image["top"].as_array().unwrap();
            assert_eq!(top.len(), 10);
            for guess in top {
                let label = guess["label"].as_str().unwrap();
                let class = names.iter().position(|n| n == label).unwrap();
                let got = guess["probability"].as_f64().unwrap() as f32;
                assert!(
                    (got - want[class]).abs() < 1e-4,
                    "{net} ({opset}), {}: {label} {got} vs onnxruntime's {}",
                    image["file"],
                    want[class]
                );
            }
            let best = (0..10)
                .max_by(|&a, &b| want[a].total_cmp(&want[b]))
                .unwrap();
            assert_eq!(top[0]["label"], names[best], "{net} ({opset}): top-1");
        }
        assert_own_kernels(&model, net);
    }
}

/// Every convolution and pool of the exports runs on the runtime's own
/// kernels (on a CPU with AVX2 and FMA): the ResNet's stride-2 convolution
/// and 1x1 shortcut, the MobileNet's depthwise convolution and average
/// pools, with the activations after them.
#[cfg(target_arch = "x86_64")]
fn assert_own_kernels(model: &std::path::Path, net: &str) {
    use std::num::NonZeroUsize;
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        eprintln!("skipped: no AVX2 and FMA on this CPU, tract keeps the convolutions");
        return;
    }
    let normalise = runtime::foreign::Normalise::new(&MEAN, &STD).unwrap();
    let bytes = std::fs::read(model).unwrap();
    let model = runtime::Model::foreign_from_bytes(&bytes, normalise, NonZeroUsize::MIN).unwrap();
    let pixels = load_image(&sample("cat.png")).unwrap();
    let ops = runtime::profile::profile(&model, &pixels, 1).unwrap();
    let nodes = |name: &str| ops.iter().find(|o| o.op == name).map_or(0, |o| o.nodes);
    let expected: &[(&str, usize)] = match net {
        "resnet" => &[("PlaneConv", 4)],
        _ => &[("PlaneConv", 4), ("PlaneDepthwise", 1), ("PlaneAvgPool", 2)],
    };
    for &(op, count) in expected {
        assert_eq!(nodes(op), count, "{net}: {op} nodes in {ops:?}");
    }
    // The stem's HardSwish and the depthwise ReLU6 fold into their
    // convolutions: the one Min of tract's left, alone or in a chain, is
    // the gate's HardSigmoid.
    let mins: usize = (ops.iter().filter(|o| o.op.contains("Min")))
        .map(|o| o.nodes)
        .sum();
    assert_eq!(
        mins,
        usize::from(net == "mobilenet"),
        "{net}: nodes with a Min in {ops:?}"
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn assert_own_kernels(_: &std::path::Path, _: &str) {}

#[test]
fn squeezebox_files_of_another_size_take_pictures_resized_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = squeezebox_64x48(dir.path());
    let cat = sample("cat-256.jpg");
    let out = accepted(&[
        "--model",
        path.to_str().unwrap(),
        cat.to_str().unwrap(),
        "--runs",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(out.contains("input       64x48 RGB\n"), "{out}");
    assert!(out.contains("  class"), "{out}");
}

/// `--eval` on a folder of labelled pictures (one sub-folder per class,
/// named by class number here) at the model's own size; a folder that
/// names no class, a loose picture and CIFAR-10's 32x32 pictures are
/// refused in one line.
#[test]
fn eval_reads_a_folder_of_labelled_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let path = squeezebox_64x48(dir.path());
    let model = path.to_str().unwrap();
    let folder = dir.path().join("pictures");
    for (class, pictures) in [
        ("0", ["cat.png", "dog.png"]),
        ("3", ["ship.png", "cat-256.jpg"]),
    ] {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        for p in pictures {
            std::fs::copy(sample(p), folder.join(class).join(p)).unwrap();
        }
    }
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "--model",
            model,
            "--json",
            "--eval",
            folder.to_str().unwrap(),
        ];
        args.extend(extra);
        label_image(&args)
    };
    let run = eval(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["eval"]["images"], 4);
    assert!(report["eval"]["correct"].as_u64().unwrap() <= 4);
    let run = eval(&["--limit", "3"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["eval"]["images"], 3);

    let refused = |run: Run, want: &str| {
        assert_eq!(run.code, Some(2), "{want}: {}", run.stdout);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(want),
            "wanted '{want}' in {}",
            run.stderr
        );
    };
    std::fs::copy(sample("cat.png"), folder.join("loose.png")).unwrap();
    refused(eval(&[]), "loose.png: not in a class folder");
    std::fs::remove_file(folder.join("loose.png")).unwrap();
    std::fs::create_dir_all(folder.join("zebra")).unwrap();
    std::fs::copy(sample("cat.png"), folder.join("zebra/cat.png")).unwrap();
    refused(
        eval(&[]),
        "the folder 'zebra' is none of the model's 10 labels",
    );
    let cifar = cifar_dir();
    refused(
        label_image(&["--model", model, "--eval", cifar.to_str().unwrap()]),
        "give --eval a folder of labelled pictures",
    );
}

/// A graph exported for one picture at a time (input batch fixed at 1)
/// runs a batch of pictures one by one, with the same answers.
#[test]
fn batch_1_exports_label_several_pictures() {
    use models::onnx::proto::{tensor_shape_proto::dimension::Value as Dim, type_proto};
    let dir = tempfile::tempdir().unwrap();
    let dynamic = torch_export(dir.path(), "resnet", "13");
    let single = dir.path().join("single.onnx");
    let bytes = common::mutants::edit(&std::fs::read(&dynamic).unwrap(), |p| {
        let input = &mut p.graph.as_mut().unwrap().input[0];
        if let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().unwrap().value.as_mut()
        {
            t.shape.as_mut().unwrap().dim[0].value = Some(Dim::DimValue(1));
        }
    });
    std::fs::write(&single, bytes).unwrap();
    let probabilities = |model: &std::path::Path| {
        let pictures = [sample("cat.png"), sample("ship.png")];
        let mut args = vec![
            "--model".to_string(),
            model.display().to_string(),
            "--mean".into(),
            list(MEAN),
            "--std".into(),
            list(STD),
            "--json".into(),
            "--runs".into(),
            "1".into(),
        ];
        args.extend(pictures.iter().map(|p| p.display().to_string()));
        let report: serde_json::Value = serde_json::from_str(&accepted(&args)).unwrap();
        report["images"].clone()
    };
    let (one_by_one, batched) = (probabilities(&single), probabilities(&dynamic));
    assert_eq!(one_by_one.as_array().unwrap().len(), 2);
    for (a, b) in one_by_one
        .as_array()
        .unwrap()
        .iter()
        .zip(batched.as_array().unwrap())
    {
        for (a, b) in a["top"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["top"].as_array().unwrap())
        {
            assert_eq!(a["label"], b["label"]);
            let (a, b) = (
                a["probability"].as_f64().unwrap(),
                b["probability"].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
