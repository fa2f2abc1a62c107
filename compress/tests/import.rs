//! `compress import` on nets exported with `torch.onnx.export`, as users
//! export theirs (tests/python/export_nets.py): the imported file agrees
//! with onnxruntime on the original, quantizes to integer kernels, prunes,
//! and bad input is refused in one line.

use std::path::Path;
use std::process::{Command, Output};

use models::onnx::{self, proto::ModelProto};
use prost::Message;
use runtime::Model;

mod common;

use common::{compress, export, python, repo, s, sample_images};

const MEAN: &str = "0.49,0.48,0.45";
const STD: &str = "0.25,0.24,0.26";

fn import(model: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "import",
        s(model),
        "-o",
        s(out),
        "--mean",
        MEAN,
        "--std",
        STD,
    ];
    args.extend(extra);
    compress(&args)
}

/// onnxruntime's probabilities on `model` (a foreign file) for `pixels`
/// normalised as the import was told to.
fn onnxruntime(model: &Path, pixels: &[u8], (h, w): (usize, usize)) -> Vec<Vec<f32>> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("pixels.bin");
    std::fs::write(&raw, pixels).unwrap();
    let o = Command::new(python())
        .arg(repo().join("tests/python/onnxruntime_probabilities.py"))
        .args([s(model), s(&raw), &h.to_string(), &w.to_string(), MEAN, STD])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap()
}

/// Both nets, from both exporters: the imported file runs in the runtime
/// with the same top-1 on every sample picture as onnxruntime on the
/// original, probabilities within 1e-4.
#[test]
fn imported_exports_agree_with_onnxruntime_on_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = sample_images();
    for net in ["resnet", "mobilenet"] {
        for opset in ["13", "default"] {
            let original = dir.path().join(format!("{net}_{opset}.onnx"));
            export(net, &original, &["--opset", opset]);
            let imported = dir.path().join(format!("{net}_{opset}.sb.onnx"));
            let o = import(&original, &imported, &[]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let model = Model::load(&imported).unwrap();
            assert_eq!(model.meta().arch, format!("{net}_{opset}"));
            assert_eq!(model.labels()[3], "3");
            let ours = model.run(&pixels).unwrap();
            let theirs = onnxruntime(&original, &pixels, (32, 32));
            assert_eq!(theirs.len(), ours.len());
            let mut worst = 0f32;
            for (i, p) in theirs.iter().enumerate() {
                let q = ours.probabilities_of(i);
                assert_eq!(argmax(p), argmax(q), "{net} opset {opset}: picture {i}");
                worst = p
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b).abs())
                    .fold(worst, f32::max);
            }
            println!("{net} opset {opset}: largest probability difference {worst:e}");
            assert!(worst <= 1e-4, "{net} opset {opset}: {worst}");
        }
    }
}

/// A net exported at 40x48 takes 40x48 pixels once imported, and its
/// batch norms are folded: the layer graph has the convolutions alone.
#[test]
fn an_import_keeps_the_models_own_size_and_folds_batch_norm() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("wide.onnx");
    export(
        "resnet",
        &original,
        &["--size", "40", "48", "--classes", "5"],
    );
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "ant\nbee\ncat\ndog\neel\n").unwrap();
    let imported = dir.path().join("wide.sb.onnx");
    let o = import(
        &original,
        &imported,
        &["--labels", s(&labels), "--arch", "tiny-resnet"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let frozen = onnx::decode(&std::fs::read(&imported).unwrap()).unwrap();
    assert_eq!(frozen.meta.labels, ["ant", "bee", "cat", "dog", "eel"]);
    assert_eq!(frozen.meta.arch, "tiny-resnet");
    let graph = frozen.layer_graph().unwrap();
    assert_eq!((graph.preprocess.height, graph.preprocess.width), (40, 48));
    assert!(!graph
        .nodes
        .iter()
        .any(|n| matches!(n.op, models::Op::BatchNorm { .. })));
    // The same pictures through onnxruntime, on both files.
    let pixels: Vec<u8> = (0..2 * 40 * 48 * 3).map(|i| (i * 37 % 256) as u8).collect();
    let theirs = onnxruntime(&original, &pixels, (40, 48));
    let ours = onnxruntime_on_import(&imported, &pixels, (40, 48));
    for (p, q) in theirs.iter().zip(&ours) {
        let worst = p
            .iter()
            .zip(q)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-4, "{worst}");
    }
    // Calibrated on a folder of pictures at the model's size; CIFAR-10's
    // 32x32 pictures are refused for it.
    let int8 = dir.path().join("wide.int8.onnx");
    let quantize = |calib: &Path| {
        compress(&[
            "quantize",
            s(&imported),
            "-o",
            s(&int8),
            "--calib",
            s(calib),
        ])
    };
    let o = quantize(&repo().join("../shared/cifar10"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("takes 40x48"));
    assert!(!int8.exists());
    let o = quantize(&repo().join("../shared/images"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("calibrated on 11 training images"), "{out}");
    let q = Model::load(&int8).unwrap();
    assert_eq!((q.height(), q.width()), (40, 48));
}

/// onnxruntime's probabilities on a squeezebox file, which takes pixels.
fn onnxruntime_on_import(model: &Path, pixels: &[u8], (h, w): (usize, usize)) -> Vec<Vec<f32>> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("pixels.bin");
    std::fs::write(&raw, pixels).unwrap();
    let script = "import sys, json, numpy as np, onnxruntime as ort\n\
        m, raw, h, w = sys.argv[1:]\n\
        px = np.fromfile(raw, dtype=np.uint8).reshape(-1, int(h), int(w), 3)\n\
        s = ort.InferenceSession(m, providers=['CPUExecutionProvider'])\n\
        print(json.dumps(s.run(['probabilities'], {'pixels': px})[0].tolist()))";
    let o = Command::new(python())
        .args([
            "-c",
            script,
            s(model),
            s(&raw),
            &h.to_string(),
            &w.to_string(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A briefly trained net: static int8 computes its convolutions on the
/// runtime's integer kernels and stays within a point of float on CIFAR-10
/// test images; pruning at 50% with a few fine-tuning steps works too.
#[test]
fn an_imported_net_quantizes_to_integer_kernels_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cifar = repo().join("../shared/cifar10");
    let original = d.join("trained.onnx");
    export(
        "resnet",
        &original,
        &["--train", s(&cifar), "--steps", "150"],
    );
    let imported = d.join("trained.sb.onnx");
    assert!(import(&original, &imported, &[]).status.success());
    let int8 = d.join("trained.int8.onnx");
    let o = compress(&[
        "quantize",
        s(&imported),
        "-o",
        s(&int8),
        "--calib",
        s(&cifar),
        "--calib-images",
        "200",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let q = Model::load(&int8).unwrap();
    let integer = q
        .plan_nodes()
        .iter()
        .filter(|n| n.op == "PlaneQConv" || (n.op.contains("MatMul") && !n.is_float()))
        .count();
    assert!(integer >= 3, "the convolutions run on integers");
    let test = cifar::open(&cifar)
        .unwrap()
        .load(cifar::Split::Test, Some(1000))
        .unwrap();
    let f32_model = Model::load(&imported).unwrap();
    let accuracy = |m: &Model| {
        let p = m.run(&test.images).unwrap();
        let right = (0..p.len())
            .filter(|&i| p.top_k(i, 1)[0].0 == test.labels[i] as usize)
            .count();
        right as f64 / p.len() as f64
    };
    let (a, b) = (accuracy(&f32_model), accuracy(&q));
    println!(
        "1000 test images: float {:.2}%, int8 {:.2}%",
        100.0 * a,
        100.0 * b
    );
    assert!(a > 0.25, "the brief training learned little: {a}");
    assert!((a - b).abs() <= 0.01, "int8 {b} against float {a}");

    let pruned = d.join("trained.p50.onnx");
    let o = compress(&[
        "prune",
        s(&imported),
        "-o",
        s(&pruned),
        "--sparsity",
        "0.5",
        "--data",
        s(&cifar),
        "--steps",
        "2",
        "--frequency",
        "5",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "10",
        "--batch",
        "32",
        "--train-limit",
        "640",
        "--val-limit",
        "200",
        "--test-limit",
        "200",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("sparsity 50.0%"), "{out}");
    Model::load(&pruned)
        .unwrap()
        .run(&test.images[..3072 * 4])
        .unwrap();
}

/// Each of these gets one line naming the problem, exit 2, and no file.
#[test]
fn bad_imports_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let original = d.join("net.onnx");
    export("resnet", &original, &[]);
    let proto = || ModelProto::decode(&std::fs::read(&original).unwrap()[..]).unwrap();
    let edited = |name: &str, edit: &dyn Fn(&mut ModelProto)| {
        let mut p = proto();
        edit(&mut p);
        let path = d.join(name);
        std::fs::write(&path, p.encode_to_vec()).unwrap();
        path
    };
    let tanh = edited("tanh.onnx", &|p| {
        let g = p.graph.as_mut().unwrap();
        let relu = g
            .node
            .iter_mut()
            .find(|n| n.op_type.as_deref() == Some("Relu"))
            .unwrap();
        relu.op_type = Some("Tanh".into());
        relu.name = Some("/act/Tanh".into());
    });
    let two_inputs = edited("two.onnx", &|p| {
        let g = p.graph.as_mut().unwrap();
        let mut second = g.input[0].clone();
        second.name = Some("other".into());
        g.input.push(second);
    });
    let not_an_image = edited("vector.onnx", &|p| {
        let g = p.graph.as_mut().unwrap();
        let Some(onnx::proto::type_proto::Value::TensorType(t)) =
            g.input[0].r#type.as_mut().unwrap().value.as_mut()
        else {
            panic!("a tensor input")
        };
        t.shape.as_mut().unwrap().dim.truncate(2);
    });
    let labels = d.join("labels.txt");
    std::fs::write(&labels, "a\nb\nc\n").unwrap();
    let out = d.join("never.onnx");
    let no_labels: &[&str] = &[];
    let three = &["--labels", s(&labels)][..];
    // (file, --mean, --std, more flags, what the error says)
    let cases = [
        (
            &tanh,
            MEAN,
            STD,
            no_labels,
            "node '/act/Tanh': Tanh is not an op compress import reads",
        ),
        (&two_inputs, MEAN, STD, no_labels, "2 inputs"),
        (&not_an_image, MEAN, STD, no_labels, "[N,3,H,W]"),
        (
            &original,
            "0.5,0.5",
            STD,
            no_labels,
            "2 values where R,G,B needs 3",
        ),
        (&original, MEAN, "0.2,0,0.2", no_labels, "above zero"),
        (
            &original,
            MEAN,
            STD,
            three,
            "3 labels for a model with 10 classes",
        ),
    ];
    for (model, mean, std, more, want) in cases {
        let mut args = vec![
            "import",
            s(model),
            "-o",
            s(&out),
            "--mean",
            mean,
            "--std",
            std,
        ];
        args.extend(more);
        let o = compress(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{want}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "wanted '{want}' in: {err}");
        assert!(!out.exists(), "{want}: a file was written");
    }
}

/// Mutated exports: the importer answers each with a model or an error,
/// never a panic.
#[test]
fn mutated_exports_never_panic_the_importer() {
    let dir = tempfile::tempdir().unwrap();
    let mut originals = Vec::new();
    for net in ["resnet", "mobilenet"] {
        let path = dir.path().join(format!("{net}.onnx"));
        export(net, &path, &["--opset", "default"]);
        originals.push(std::fs::read(&path).unwrap());
    }
    let normalise = models::graph::Normalise::Channels {
        mean: [0.5; 3],
        std: [0.25; 3],
    };
    // A fixed xorshift, so that a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut imported, mut refused) = (0, 0);
    for i in 0..600 {
        let mut bytes = originals[i % 2].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        let result =
            std::panic::catch_unwind(|| onnx::import::import(&bytes, "mutant", normalise).is_ok());
        match result {
            Ok(true) => imported += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("mutant {i} panicked the importer"),
        }
    }
    println!("600 mutants: {imported} imported, {refused} refused");
    assert!(refused > 0 && imported > 0);
}
