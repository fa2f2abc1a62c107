//! `compress quantize` (static int8, int8 weights, fp16) and `compress
//! compare`, on a squeeze1 whose weights are seeded, not trained.
//!
//! A random ReLU network calls every image the same class, which would make
//! "top-1 agrees" an empty check. So the test model has He-scaled random
//! kernels and a classifier (conv10) set to the nearest class mean of its
//! fire5 features on CIFAR-10 training images: no training, but its top-1
//! follows the image, with margins that quantization error could upset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use compress::calibrate::{calibrate, Method};
use compress::quantize::{Activations, QParams};
use models::onnx::{self, Metadata};
use models::{ParamRole, Tensor};
use prost::Message;
use runtime::Model;

mod common;

use common::{compress, repo, s, sample_images};

fn shared() -> PathBuf {
    repo().join("../shared")
}

fn cifar_dir() -> PathBuf {
    shared().join("cifar10")
}

fn cifar_images(split: cifar::Split, n: usize) -> cifar::Dataset {
    cifar::open(cifar_dir())
        .unwrap()
        .load(split, Some(n))
        .unwrap()
}

/// The test model's bytes (see the module comment); built once.
fn squeeze1() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let graph = models::zoo::arch("squeeze1").unwrap().graph();
        let mut weights = models::weights::seeded(&graph, 7).unwrap();
        for spec in graph.params().unwrap() {
            let t = weights.get_mut(&spec.name).unwrap();
            match spec.role {
                ParamRole::Weight => t
                    .data
                    .iter_mut()
                    .for_each(|v| *v *= std::f32::consts::SQRT_2),
                _ => t.data.iter_mut().for_each(|v| *v = 0.0),
            }
        }
        let labels: Vec<String> = cifar::open(cifar_dir()).unwrap().classes().to_vec();
        let meta = Metadata::new(&graph, labels);
        let random = onnx::encode(&graph, &weights, &meta)
            .unwrap()
            .encode_to_vec();

        // fire5's features, pooled over positions, for 500 training images.
        let train = cifar_images(cifar::Split::Train, 500);
        let probe =
            runtime::probe::Probe::from_bytes(&random, &["fire5.concat".to_string()]).unwrap();
        let mut features: Vec<Vec<f64>> = Vec::new();
        for batch in train.images.chunks(100 * runtime::IMAGE_BYTES) {
            let v = &probe.run(batch).unwrap()[0];
            let (c, positions) = (v.shape[1], v.shape[2] * v.shape[3]);
            for image in v.data.chunks(c * positions) {
                features.push(
                    image
                        .chunks(positions)
                        .map(|p| p.iter().map(|&x| x as f64).sum::<f64>() / positions as f64)
                        .collect(),
                );
            }
        }
        let c = features[0].len();
        let mean = |rows: Vec<&Vec<f64>>| -> Vec<f64> {
            let n = rows.len() as f64;
            (0..c)
                .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
                .collect()
        };
        let overall = mean(features.iter().collect());
        let mut kernel = Vec::with_capacity(10 * c);
        let mut bias = Vec::with_capacity(10);
        for class in 0..10u8 {
            let members = features
                .iter()
                .zip(&train.labels)
                .filter(|(_, &l)| l == class)
                .map(|(f, _)| f)
                .collect();
            let direction: Vec<f64> = mean(members)
                .iter()
                .zip(&overall)
                .map(|(m, o)| m - o)
                .collect();
            let norm = direction
                .iter()
                .map(|d| d * d)
                .sum::<f64>()
                .sqrt()
                .max(1e-12);
            // Projections of the features on each direction spread over a
            // few units: margins that matter in a softmax.
            let spread = (features
                .iter()
                .map(|f| {
                    f.iter()
                        .zip(&overall)
                        .zip(&direction)
                        .map(|((x, o), d)| (x - o) * d / norm)
                        .sum::<f64>()
                        .powi(2)
                })
                .sum::<f64>()
                / features.len() as f64)
                .sqrt();
            let w: Vec<f64> = direction
                .iter()
                .map(|d| d / norm * 3.0 / spread.max(1e-12))
                .collect();
            bias.push((1.0 - w.iter().zip(&overall).map(|(w, o)| w * o).sum::<f64>()) as f32);
            kernel.extend(w.iter().map(|&w| w as f32));
        }
        weights.insert(
            "conv10.weight".into(),
            Tensor::new(vec![10, c, 1, 1], kernel).unwrap(),
        );
        weights.insert("conv10.bias".into(), Tensor::new(vec![10], bias).unwrap());
        onnx::encode(&graph, &weights, &meta)
            .unwrap()
            .encode_to_vec()
    })
}

/// A fresh directory holding the test model as `f32.onnx`.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("f32.onnx");
    std::fs::write(&model, squeeze1()).unwrap();
    (dir, model)
}

fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "compress failed:\n{text}");
    text
}

/// Quantizes `model` to `out` with `extra` flags, calibrating on 300 images.
fn quantize(model: &Path, out: &Path, extra: &[&str]) -> String {
    let calib = cifar_dir();
    let mut args = vec![
        "quantize",
        s(model),
        "-o",
        s(out),
        "--calib",
        s(&calib),
        "--calib-images",
        "300",
    ];
    args.extend(extra);
    ok(compress(&args))
}

/// Top-1 agreement and the largest probability difference.
fn agreement(a: &Model, b: &Model, pixels: &[u8]) -> (usize, usize, f32) {
    let (p, q) = (a.run(pixels).unwrap(), b.run(pixels).unwrap());
    let agree = (0..p.len())
        .filter(|&i| p.top_k(i, 1)[0].0 == q.top_k(i, 1)[0].0)
        .count();
    let worst = common::max_abs_diff(&p.probabilities, &q.probabilities);
    (agree, p.len(), worst)
}

/// On images whose float top-1 leads by more than 0.1: how many there are
/// and on how many `b` agrees; then overall agreement and the largest
/// probability difference.
fn clear_agreement(a: &Model, b: &Model, pixels: &[u8]) -> (usize, usize, usize, f32) {
    let (p, q) = (a.run(pixels).unwrap(), b.run(pixels).unwrap());
    let (mut clear, mut agree_clear, mut agree) = (0, 0, 0);
    for i in 0..p.len() {
        let top = p.top_k(i, 2);
        let same = top[0].0 == q.top_k(i, 1)[0].0;
        agree += same as usize;
        if top[0].1 - top[1].1 > 0.1 {
            clear += 1;
            agree_clear += same as usize;
        }
    }
    let worst = common::max_abs_diff(&p.probabilities, &q.probabilities);
    (clear, agree_clear, agree, worst)
}

fn quantization_meta(model: &Model) -> serde_json::Value {
    serde_json::from_str(&model.meta().extra["quantization"]).unwrap()
}

/// How many convolutions' products a plan node computes: one for tract's
/// matrix product (not its packing) or the runtime's own convolutions, two
/// for the runtime's pair of a fire module's expands into one output.
fn products(op: &str) -> usize {
    match op {
        "PlaneConvConcat" | "PlaneQConvConcat" => 2,
        "PlaneConv" | "PlaneQConv" => 1,
        _ => (op.contains("MatMul") && !op.contains("Pack")) as usize,
    }
}

#[test]
fn the_test_model_tells_classes_apart() {
    let (_dir, path) = workdir();
    let model = Model::load(&path).unwrap();
    let test = cifar_images(cifar::Split::Test, 500);
    let p = model.run(&test.images).unwrap();
    let right = (0..p.len())
        .filter(|&i| p.top_k(i, 1)[0].0 == test.labels[i] as usize)
        .count();
    let classes: std::collections::BTreeSet<usize> =
        (0..p.len()).map(|i| p.top_k(i, 1)[0].0).collect();
    println!(
        "float test model: {right}/500 right, predicts {} classes",
        classes.len()
    );
    assert!(
        right > 100,
        "{right}/500 is chance level: the fixture does not classify"
    );
    assert!(classes.len() >= 8);
}

#[test]
fn calibration_yields_finite_positive_scales() {
    let graph = models::onnx::decode(squeeze1())
        .unwrap()
        .layer_graph()
        .unwrap();
    let images = cifar_images(cifar::Split::Train, 200);
    for method in [Method::MinMax, Method::Percentile, Method::Entropy] {
        let calib = calibrate(squeeze1(), &graph, &images.images, method).unwrap();
        assert_eq!(calib.images, 200);
        // Every layer of the graph has a range (dropout-free squeeze1: one per node).
        assert_eq!(calib.ranges.len(), graph.nodes.len(), "{method}");
        for (name, r) in &calib.ranges {
            assert!(
                r.lo.is_finite() && r.hi.is_finite() && r.lo <= r.hi,
                "{method} {name}: {r:?}"
            );
            if name.ends_with(".relu") {
                assert!(r.lo >= 0.0, "{method} {name} is after a ReLU: {r:?}");
                assert!(
                    r.hi > 0.0,
                    "{method} {name}: a dead layer in the test model? {r:?}"
                );
            }
            for act in [Activations::U8, Activations::I8] {
                let q = QParams::for_range(*r, act);
                assert!(
                    q.scale.is_finite() && q.scale > 0.0,
                    "{method} {name}: {q:?}"
                );
            }
        }
        // The standardised input is signed; ReLU outputs start at zero.
        assert!(calib.ranges["input"].lo < 0.0);
        assert_eq!(calib.ranges["conv1.relu"].lo, 0.0);
    }
    // Clipping methods never widen the observed range.
    let minmax = calibrate(squeeze1(), &graph, &images.images, Method::MinMax).unwrap();
    let pct = calibrate(squeeze1(), &graph, &images.images, Method::Percentile).unwrap();
    let clipped = minmax
        .ranges
        .iter()
        .filter(|(k, r)| pct.ranges[*k].hi < r.hi)
        .count();
    assert!(pct
        .ranges
        .iter()
        .all(|(k, r)| r.hi <= minmax.ranges[k].hi && r.lo >= minmax.ranges[k].lo));
    assert!(clipped > 0, "the 99.99th percentile clipped nothing");
}

#[test]
fn int8_squeeze1_is_small_agrees_with_float_and_stays_integer() {
    let (dir, f32_path) = workdir();
    let q_path = dir.path().join("int8.onnx");
    let text = quantize(&f32_path, &q_path, &[]);
    assert!(text.contains("14 layers on int8 kernels"), "{text}");
    assert!(
        text.contains("float: conv10.relu.global_avg_pool"),
        "{text}"
    );
    // Exactly two boundaries: the input in, the last map out.
    assert_eq!(text.matches("boundary:").count(), 2, "{text}");

    let (a, b) = (
        std::fs::metadata(&f32_path).unwrap().len(),
        std::fs::metadata(&q_path).unwrap().len(),
    );
    assert!(
        (b as f64) <= 0.3 * a as f64,
        "{b} bytes is more than 0.3x of {a}"
    );

    let full = Model::load(&f32_path).unwrap();
    let int8 = Model::load(&q_path).unwrap();
    assert_eq!(int8.meta().variant, "int8");
    let entry = int8.meta().compression.last().unwrap();
    assert!(
        entry.starts_with("int8: static quantization, minmax calibration on 300 images"),
        "{entry}"
    );
    let details = quantization_meta(&int8);
    assert_eq!(details["calibration_images"], 300);
    assert_eq!(details["activations"], "int8");
    // After a ReLU the zero point is the bottom of the int8 range.
    // Each value is [scale, zero point].
    assert_eq!(details["values"]["conv1.relu"][1], -128);
    // tract takes int8 as it is: no offsetting pass before a convolution.
    assert!(!int8.plan_nodes().iter().any(|n| n.op.contains("Offset")));
    assert!(entry.contains("; 14 layers on int8 kernels"), "{entry}");
    for (value, p) in details["values"].as_object().unwrap() {
        let scale = p[0].as_f64().unwrap();
        assert!(scale.is_finite() && scale > 0.0, "{value}: {p}");
    }
    // The fire modules' expand branches share the concatenation's scale.
    let values = &details["values"];
    assert_eq!(
        values["fire2.expand1x1.relu"],
        values["fire2.expand3x3.relu"]
    );
    assert_eq!(values["fire2.expand1x1.relu"], values["fire2.concat"]);

    // Agreement with float: the sample pictures and 500 test images.
    let (agree, n, worst) = agreement(&full, &int8, &sample_images());
    println!("sample pictures: top-1 agrees on {agree}/{n}, max |dp| {worst:.4}");
    assert!(
        agree + 1 >= n,
        "top-1 differs on {} of {n} sample pictures",
        n - agree
    );
    assert!(worst < 0.05, "int8 changed a probability by {worst}");
    let test = cifar_images(cifar::Split::Test, 500);
    let (clear, agree_clear, agree, worst) = clear_agreement(&full, &int8, &test.images);
    println!("500 test images: top-1 agrees on {agree}/500 ({agree_clear}/{clear} with a clear float top-1), max |dp| {worst:.4}");
    assert!(
        clear >= 250,
        "the test model has too few clear decisions ({clear}/500)"
    );
    assert_eq!(agree_clear, clear, "int8 changed a clear top-1");
    assert!(agree >= 480, "top-1 agrees on only {agree}/500 test images");
    assert!(worst < 0.15, "int8 changed a probability by {worst}");

    // The integer-graph property, on what tract actually runs.
    let nodes = int8.plan_nodes();
    let names: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {} {:?}", n.name, n.op, n.output_types))
        .collect();
    let is_matmul = |i: usize| products(&nodes[i].op) > 0;
    let matmuls: Vec<usize> = (0..nodes.len()).filter(|&i| is_matmul(i)).collect();
    let convolutions: usize = matmuls.iter().map(|&i| products(&nodes[i].op)).sum();
    assert_eq!(
        convolutions,
        14,
        "one integer product per convolution:\n{}",
        names.join("\n")
    );
    let mut readers = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for &j in &n.inputs {
            readers[j].push(i);
        }
    }
    // From each product, walk forward to the next products: no float value,
    // hence no Dequantize/Quantize pair, on the way.
    let mut pairs = 0;
    for &m in &matmuls {
        assert!(!nodes[m].is_float(), "{} computes in float", nodes[m].name);
        let mut stack = readers[m].clone();
        let mut seen = std::collections::HashSet::new();
        let mut path_float = Vec::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            if is_matmul(i) {
                pairs += 1;
                continue;
            }
            if nodes[i].is_float() {
                path_float.push(i);
                continue; // the way out to the float head
            }
            stack.extend(&readers[i]);
        }
        // Only the last convolution leads to float, through one dequantize.
        for i in path_float {
            assert!(
                nodes[i].op.contains("Dequantize"),
                "{} ({}) is float after {}",
                nodes[i].name,
                nodes[i].op,
                nodes[m].name
            );
            assert!(!readers[i]
                .iter()
                .any(|&r| nodes[r].op.contains("Quantize") && !nodes[r].op.contains("Dequantize")));
        }
    }
    assert!(
        pairs + 1 >= matmuls.len(),
        "the products are not chained: {pairs} links"
    );
    // tract's QuantizeLinear, or the runtime's PlaneQuantize in its place.
    let quantize_ops = nodes
        .iter()
        .filter(|n| n.op.contains("Quantize") && !n.op.contains("Dequantize"))
        .count();
    let dequantize_ops = nodes
        .iter()
        .filter(|n| n.op.starts_with("DequantizeLinear"))
        .count();
    assert_eq!(
        (quantize_ops, dequantize_ops),
        (1, 1),
        "{}",
        names.join("\n")
    );
}

#[test]
fn uint8_activations_work_too() {
    let (dir, f32_path) = workdir();
    let q_path = dir.path().join("int8-u8.onnx");
    quantize(
        &f32_path,
        &q_path,
        &["--activations", "u8", "--method", "percentile"],
    );
    let full = Model::load(&f32_path).unwrap();
    let int8 = Model::load(&q_path).unwrap();
    let details = quantization_meta(&int8);
    assert_eq!(details["activations"], "uint8");
    assert_eq!(details["method"], "percentile");
    // After a ReLU the zero point is the bottom of the uint8 range.
    assert_eq!(details["values"]["conv1.relu"][1], 0);
    let (agree, n, worst) = agreement(&full, &int8, &sample_images());
    assert!(
        agree + 1 >= n && worst < 0.1,
        "{agree}/{n} agree, max |dp| {worst}"
    );
}

#[test]
fn per_tensor_weight_scales_work_too() {
    let (dir, f32_path) = workdir();
    let q_path = dir.path().join("int8-pt.onnx");
    quantize(&f32_path, &q_path, &["--per-tensor", "--method", "entropy"]);
    let full = Model::load(&f32_path).unwrap();
    let int8 = Model::load(&q_path).unwrap();
    // One weight scale a layer: QLinearConv's w_scale is a scalar.
    let graph = onnx::decode(&std::fs::read(&q_path).unwrap())
        .unwrap()
        .proto
        .graph
        .unwrap();
    let conv = graph
        .node
        .iter()
        .find(|n| n.name.as_deref() == Some("fire2.squeeze"))
        .unwrap();
    let w_scale = graph
        .initializer
        .iter()
        .find(|t| t.name.as_ref() == Some(&conv.input[4]));
    assert_eq!(w_scale.unwrap().dims, Vec::<i64>::new());
    let (agree, n, worst) = agreement(&full, &int8, &sample_images());
    assert!(
        agree + 2 >= n && worst < 0.1,
        "{agree}/{n} agree, max |dp| {worst}"
    );
}

#[test]
fn weights_only_and_fp16_shrink_the_file_and_compute_in_float() {
    let (dir, f32_path) = workdir();
    let (w8, f16) = (dir.path().join("w8.onnx"), dir.path().join("f16.onnx"));
    ok(compress(&[
        "quantize",
        s(&f32_path),
        "-o",
        s(&w8),
        "--weights-only",
    ]));
    ok(compress(&[
        "quantize",
        s(&f32_path),
        "-o",
        s(&f16),
        "--fp16",
    ]));
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
    assert!(
        size(&w8) < 0.3 * size(&f32_path),
        "int8 weights: {} of {} bytes",
        size(&w8),
        size(&f32_path)
    );
    assert!(size(&f16) < 0.55 * size(&f32_path));

    let full = Model::load(&f32_path).unwrap();
    let pixels = sample_images();
    for (path, variant, tolerance) in [(&w8, "int8-weights", 0.05), (&f16, "fp16", 2e-3)] {
        let m = Model::load(path).unwrap();
        assert_eq!(m.meta().variant, variant);
        assert!(
            m.meta().compression[0].starts_with(variant),
            "{:?}",
            m.meta().compression
        );
        let (agree, n, worst) = agreement(&full, &m, &pixels);
        assert_eq!(agree, n, "{variant}");
        assert!(
            worst < tolerance && worst > 0.0,
            "{variant}: max |dp| {worst}"
        );
        // Float compute: every product of the plan is f32.
        let nodes = m.plan_nodes();
        let computing: Vec<_> = nodes.iter().filter(|n| products(&n.op) > 0).collect();
        let convolutions: usize = computing.iter().map(|n| products(&n.op)).sum();
        assert_eq!(convolutions, 14, "{variant}");
        assert!(computing.iter().all(|n| n.is_float()), "{variant}");
    }
    let int8 = onnx::proto::tensor_proto::DataType::Int8 as i32;
    assert_eq!(kernels(&w8)["conv1"].0, int8);
}

#[test]
fn compare_reports_per_layer_sqnr() {
    let (dir, f32_path) = workdir();
    let (q, f16) = (dir.path().join("int8.onnx"), dir.path().join("f16.onnx"));
    quantize(&f32_path, &q, &[]);
    ok(compress(&["fp16", s(&f32_path), "-o", s(&f16)]));
    let data = cifar_dir();
    let report = ok(compress(&[
        "compare",
        s(&f32_path),
        s(&q),
        "--data",
        s(&data),
        "--images",
        "100",
    ]));
    println!("{report}");
    let sqnr: BTreeMap<String, (String, f64)> = report
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts[..] {
                [name, kind, db] => db
                    .parse()
                    .ok()
                    .map(|db| (name.to_string(), (kind.to_string(), db))),
                _ => None,
            }
        })
        .collect();
    assert_eq!(sqnr["conv1.relu"].0, "int8");
    assert_eq!(sqnr["logits"].0, "float");
    for layer in [
        "conv1.relu",
        "fire2.concat",
        "fire5.concat",
        "conv10.relu",
        "logits",
    ] {
        let db = sqnr[layer].1;
        assert!(db.is_finite() && db > 15.0, "{layer}: {db} dB");
    }
    // Error accumulates: the first layer is cleaner than the logits.
    assert!(sqnr["conv1.relu"].1 > sqnr["logits"].1);
    assert!(
        report.contains("100 validation images: top-1 agrees on"),
        "{report}"
    );
    assert!(report.contains("largest loss:"), "{report}");

    // fp16 loses far less than int8.
    let half = ok(compress(&[
        "compare",
        s(&f32_path),
        s(&f16),
        "--data",
        s(&data),
        "--images",
        "20",
    ]));
    let logits_db = |text: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with("logits "))
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(logits_db(&half) > logits_db(&report) + 20.0, "{half}");
}

#[test]
fn quantized_models_pass_the_onnx_checker_and_match_onnxruntime() {
    let (dir, f32_path) = workdir();
    let d = dir.path();
    quantize(&f32_path, &d.join("int8.onnx"), &[]);
    quantize(&f32_path, &d.join("int8-u8.onnx"), &["--activations", "u8"]);
    ok(compress(&[
        "quantize",
        s(&f32_path),
        "-o",
        s(&d.join("int8-weights.onnx")),
        "--weights-only",
    ]));
    ok(compress(&[
        "quantize",
        s(&f32_path),
        "-o",
        s(&d.join("fp16.onnx")),
        "--fp16",
    ]));
    let pixels = sample_images();
    std::fs::write(d.join("pixels.bin"), &pixels).unwrap();
    let mut expected = serde_json::Map::new();
    for name in [
        "f32.onnx",
        "int8.onnx",
        "int8-u8.onnx",
        "int8-weights.onnx",
        "fp16.onnx",
    ] {
        let model = Model::load(&d.join(name)).unwrap();
        expected.insert(name.into(), probabilities(&model, &pixels));
    }
    onnx_checker_and_onnxruntime_agree(d, &expected);
}

#[test]
fn bad_input_is_a_one_line_error() {
    let (dir, f32_path) = workdir();
    let d = dir.path();
    let out = d.join("out.onnx");
    let calib = cifar_dir();
    let q = d.join("int8.onnx");
    ok(compress(&[
        "quantize",
        s(&f32_path),
        "-o",
        s(&q),
        "--calib",
        s(&calib),
        "--calib-images",
        "20",
    ]));
    let missing = d.join("no-such-cifar");
    let missing_model = d.join("missing.onnx");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--calib",
                s(&calib),
                "--calib-images",
                "0",
            ],
            "--calib-images must be at least 1",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--calib",
                s(&calib),
                "--method",
                "kl",
            ],
            "unknown calibration method 'kl'",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--calib",
                s(&calib),
                "--activations",
                "u4",
            ],
            "unknown activation type 'u4'",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--calib",
                s(&missing),
            ],
            "no-such-cifar",
        ),
        (
            vec!["quantize", s(&f32_path), "-o", s(&out)],
            "needs calibration images",
        ),
        (
            vec!["quantize", s(&q), "-o", s(&out), "--calib", s(&calib)],
            "already stored as int8",
        ),
        (
            vec!["quantize", s(&q), "-o", s(&out), "--weights-only"],
            "already stored as int8",
        ),
        (
            vec!["quantize", s(&q), "-o", s(&out), "--fp16"],
            "already stored as int8",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--calib-images",
                "many",
            ],
            "invalid value 'many'",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--weights-only",
                "--weight-bits",
                "9",
            ],
            "9 is not in 2..=8",
        ),
        (
            vec![
                "prune",
                s(&q),
                "-o",
                s(&out),
                "--sparsity",
                "0.5",
                "--data",
                s(&calib),
            ],
            "prune the float file first",
        ),
        (
            vec![
                "quantize",
                s(&f32_path),
                "-o",
                s(&out),
                "--weights-only",
                "--fp16",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "compare",
                s(&f32_path),
                s(&missing_model),
                "--data",
                s(&calib),
            ],
            "missing.onnx",
        ),
        (
            vec![
                "compare",
                s(&f32_path),
                s(&q),
                "--data",
                s(&calib),
                "--images",
                "0",
            ],
            "--images must be at least 1",
        ),
    ];
    for (args, want) in cases {
        let o = compress(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
        assert!(!err.contains("panicked"));
    }
    assert!(!out.exists(), "a refused command wrote its output");
}

/// The test model with `share` of each kernel's smallest weights zero,
/// but the first layer's and the classifier's (as `compress prune` leaves
/// them), stored sparse as `compress prune` writes it: variant `p80`.
fn pruned(dir: &Path, share: f32) -> PathBuf {
    let frozen = onnx::decode(squeeze1()).unwrap();
    let graph = frozen.layer_graph().unwrap();
    let mut weights = onnx::read_weights(&frozen.proto, &graph).unwrap();
    for spec in graph.params().unwrap() {
        let keep_dense = ["conv1.weight", "conv10.weight"].contains(&spec.name.as_str());
        if spec.role != ParamRole::Weight || keep_dense {
            continue;
        }
        let t = weights.get_mut(&spec.name).unwrap();
        let mut sorted: Vec<f32> = t.data.iter().map(|v| v.abs()).collect();
        sorted.sort_by(f32::total_cmp);
        let cut = sorted[(share * sorted.len() as f32) as usize];
        t.data
            .iter_mut()
            .filter(|v| v.abs() < cut)
            .for_each(|v| *v = 0.0);
    }
    let mut meta = frozen.meta.clone();
    meta.variant = "p80".into();
    meta.compression
        .push("prune: 80% of each kernel's weights zero".into());
    let mut proto = onnx::encode(&graph, &weights, &meta).unwrap();
    let kernels = compress::sparse_storage::kernels_of(&proto);
    let stored = compress::sparse_storage::store_sparse(&mut proto, &kernels);
    assert_eq!(stored.kernels.len(), 12, "{stored:?}");
    let path = dir.join("p80.onnx");
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

/// A node's name, or its first output's where stored files left the name
/// out (runtimes name it so).
fn node_name(n: &onnx::proto::NodeProto) -> &str {
    n.name.as_deref().unwrap_or_else(|| &n.output[0])
}

/// The name of the kernel layer `layer` computes with in `graph`: its
/// convolution's weight input, or what a cast or dequantization made it
/// from (stored files name parameters `t0`, `t1`, ...).
fn kernel_name(graph: &onnx::proto::GraphProto, layer: &str) -> String {
    let conv = graph
        .node
        .iter()
        .find(|n| node_name(n) == layer)
        .unwrap_or_else(|| panic!("no layer {layer}"));
    let weight = &conv.input[if conv.op_type() == "QLinearConv" {
        3
    } else {
        1
    }];
    let stored = graph
        .initializer
        .iter()
        .any(|t| t.name.as_ref() == Some(weight));
    match graph.node.iter().find(|n| n.output.contains(weight)) {
        Some(n) if !stored && matches!(n.op_type(), "Cast" | "DequantizeLinear") => {
            n.input[0].clone()
        }
        _ => weight.clone(),
    }
}

/// Each layer's kernel in `path`, densified: its type and values.
fn kernels(path: &Path) -> BTreeMap<String, (i32, Vec<f64>)> {
    let frozen = onnx::decode(&std::fs::read(path).unwrap()).unwrap();
    let dense = onnx::sparse::densify(&frozen.proto).unwrap();
    let graph = dense.graph.unwrap();
    let layers = graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type(), "Conv" | "QLinearConv"));
    layers
        .map(|n| node_name(n).to_string())
        .map(|layer| {
            let name = kernel_name(&graph, &layer);
            let t = graph
                .initializer
                .iter()
                .find(|t| t.name.as_ref() == Some(&name))
                .unwrap();
            let ty = onnx::proto::tensor_proto::DataType::try_from(t.data_type()).unwrap();
            let element = onnx::sparse::Element::of(ty).unwrap();
            let values = compress::codebook::values_of(element, t.raw_data.as_deref().unwrap());
            (layer, (t.data_type(), values))
        })
        .collect()
}

#[test]
fn pruned_files_quantize_with_their_zeros_stored_sparse() {
    let (dir, f32_path) = workdir();
    let d = dir.path();
    let p80 = pruned(d, 0.8);
    quantize(&f32_path, &d.join("int8.onnx"), &[]);
    quantize(&p80, &d.join("p80.int8.onnx"), &[]);
    let coded = quantize(&p80, &d.join("p80.int8.w4.onnx"), &["--weight-bits", "4"]);
    assert!(coded.contains("w4: fire2.squeeze.weight/values"), "{coded}");
    // Two-bit values would leave gaps of at most 3: they take a stream of
    // their own width.
    quantize(&p80, &d.join("p80.int8.w2.onnx"), &["--weight-bits", "2"]);
    // One kind of layer shares alone; a name no layer has is refused.
    let kind = &["--weight-bits", "4", "--share-only", "expand3x3"];
    let some = quantize(&p80, &d.join("p80.int8.w4-expand3x3.onnx"), kind);
    assert!(some.contains("w4: fire4.expand3x3.weight/values"), "{some}");
    assert!(!some.contains("squeeze.weight"), "{some}");
    let steps = Model::load(&d.join("p80.int8.w4-expand3x3.onnx")).unwrap();
    assert_eq!(steps.meta().variant, "p80.int8.w4-expand3x3");
    let nosuch = d.join("never.onnx");
    let o = compress(&[
        "quantize",
        s(&p80),
        "-o",
        s(&nosuch),
        "--fp16",
        "--weight-bits",
        "4",
        "--share-only",
        "expand5x5",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        (o.status.code(), err.lines().count()),
        (Some(2), 1),
        "{err}"
    );
    assert!(err.contains("--share-only expand5x5"), "{err}");
    assert!(!nosuch.exists());
    for (flag, name) in [
        ("--weights-only", "p80.int8-weights.onnx"),
        ("--fp16", "p80.fp16.onnx"),
    ] {
        ok(compress(&[
            "quantize",
            s(&p80),
            "-o",
            s(&d.join(name)),
            flag,
        ]));
    }
    let size = |name: &str| std::fs::metadata(d.join(name)).unwrap().len();
    // Dense int8 kernels take a byte a weight; a fifth of them at two
    // bytes (value and gap) take less than half; codes of 4 bits in place of
    // the values a tenth less again (the gaps and the rest stay).
    assert!(
        size("p80.int8.onnx") * 10 < size("int8.onnx") * 6,
        "{} vs {}",
        size("p80.int8.onnx"),
        size("int8.onnx")
    );
    assert!(
        size("p80.int8.w4.onnx") * 10 < size("p80.int8.onnx") * 9,
        "{} vs {}",
        size("p80.int8.w4.onnx"),
        size("p80.int8.onnx")
    );
    // Float16 values and their gaps: three bytes where float32 took five.
    assert!(size("p80.fp16.onnx") * 10 < size("p80.onnx") * 7);

    let float = kernels(&p80);
    let int8 = kernels(&d.join("p80.int8.onnx"));
    let w4 = kernels(&d.join("p80.int8.w4.onnx"));
    let (w8, f16) = (
        kernels(&d.join("p80.int8-weights.onnx")),
        kernels(&d.join("p80.fp16.onnx")),
    );
    for (name, (_, f)) in &float {
        let zeros = |v: &[f64]| v.iter().map(|x| *x == 0.0).collect::<Vec<_>>();
        for (file, other) in [
            ("p80.int8", int8.get(name)),
            ("p80.int8.w4", w4.get(name)),
            ("p80.int8-weights", w8.get(name)),
            ("p80.fp16", f16.get(name)),
        ] {
            if name == "conv10" && file.contains("int8") && file != "p80.int8-weights" {
                continue; // the classifier stays float in static int8
            }
            let (_, q) = other.unwrap_or_else(|| panic!("{file}: no kernel {name}"));
            let lost = zeros(f)
                .iter()
                .zip(zeros(q))
                .filter(|(f, q)| **f && !q)
                .count();
            assert_eq!(lost, 0, "{file}: {name} lost {lost} of its zeros");
        }
        if let Some((_, q)) = w4.get(name) {
            let mut distinct = q.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            assert!(
                distinct.len() <= 16,
                "{name}: {} values in 4 bits",
                distinct.len()
            );
        }
    }
    let proto = |name: &str| {
        onnx::decode(&std::fs::read(d.join(name)).unwrap())
            .unwrap()
            .proto
    };
    let holds =
        |name: &str, suffix: &str, ty: i32| {
            proto(name).graph.unwrap().initializer.iter().any(|t| {
                t.name.as_deref().is_some_and(|n| n.ends_with(suffix)) && t.data_type() == ty
            })
        };
    use onnx::proto::tensor_proto::DataType;
    assert!(holds("p80.int8.onnx", "/values", DataType::Int8 as i32));
    // Stored files name their parameters short (`t3/values`); the layers
    // keep their names on the nodes.
    for file in ["p80.int8.onnx", "p80.int8.w4.onnx", "p80.fp16.onnx"] {
        let graph = proto(file).graph.unwrap();
        let long = graph
            .initializer
            .iter()
            .filter_map(|t| t.name.as_deref())
            .find(|n| n.contains(".weight") || n.contains(".bias") || n.contains("_scale"));
        assert_eq!(long, None, "{file}");
        // A sparse kernel's coded parts are runs of codes: no dims stored.
        let dims = graph.initializer.iter().filter_map(|t| t.name.as_deref());
        assert_eq!(dims.filter(|n| n.ends_with("s/dims")).count(), 0, "{file}");
        assert!(graph.node.iter().any(|n| node_name(n) == "fire2.squeeze"));
    }
    assert!(holds("p80.fp16.onnx", "/values", DataType::Float16 as i32));
    assert!(holds(
        "p80.int8.w4.onnx",
        "/values/codebook",
        DataType::Int8 as i32
    ));
    assert!(holds(
        "p80.int8.w4.onnx",
        "codes/stream",
        DataType::Uint8 as i32
    ));
    assert!(holds(
        "p80.int8.w2.onnx",
        "gap_codes/stream",
        DataType::Uint8 as i32
    ));
    let w2 = Model::load(&d.join("p80.int8.w2.onnx")).unwrap();
    let gaps = w2.meta().compression.last().unwrap().clone();
    let width: u32 = gaps.rsplit("gaps as ").next().unwrap()[..1]
        .parse()
        .unwrap();
    assert!((3..=7).contains(&width), "{gaps}");
    for (name, (_, q)) in kernels(&d.join("p80.int8.w2.onnx")) {
        let (_, f) = &float[&name];
        let lost = f
            .iter()
            .zip(q.iter())
            .filter(|(f, q)| **f == 0.0 && **q != 0.0)
            .count();
        assert_eq!(lost, 0, "p80.int8.w2: {name} lost {lost} of its zeros");
    }
    // A kernel's per-channel scales are float16, widened by a Cast; its
    // bias int16 where every value fits.
    let graph = proto("p80.int8.onnx").graph.unwrap();
    let conv = graph
        .node
        .iter()
        .find(|n| n.name.as_deref() == Some("fire2.squeeze"))
        .unwrap();
    let cast_from = |value: &str| {
        let cast = graph
            .node
            .iter()
            .find(|n| n.output.first().map(String::as_str) == Some(value));
        let source = &cast.unwrap_or_else(|| panic!("{value} is not cast")).input[0];
        graph
            .initializer
            .iter()
            .find(|t| t.name.as_ref() == Some(source))
            .unwrap()
            .data_type()
    };
    assert_eq!(cast_from(&conv.input[4]), DataType::Float16 as i32);
    let biases = graph
        .node
        .iter()
        .filter(|n| n.op_type() == "QLinearConv")
        .map(|n| &n.input[8]);
    assert!(biases.into_iter().any(|b| {
        graph.node.iter().any(|n| n.output.contains(b)) && cast_from(b) == DataType::Int16 as i32
    }));
    // At 80% sparsity gaps of fewer bits than a byte make smaller files,
    // and the metadata says how wide they are.
    for name in ["p80.int8.onnx", "p80.int8.w4.onnx"] {
        assert!(
            holds(name, "/gaps/codebook", DataType::Uint8 as i32),
            "{name}"
        );
    }
    let steps = Model::load(&d.join("p80.int8.onnx"))
        .unwrap()
        .meta()
        .compression
        .clone();
    assert!(steps[1].ends_with("-bit gaps"), "{steps:?}");

    let pixels = sample_images();
    std::fs::write(d.join("pixels.bin"), &pixels).unwrap();
    let float_model = Model::load(&p80).unwrap();
    let mut expected = serde_json::Map::new();
    for (name, variant) in [
        ("p80.onnx", "p80"),
        ("p80.int8.onnx", "p80.int8"),
        ("p80.int8.w4.onnx", "p80.int8.w4"),
        ("p80.int8.w2.onnx", "p80.int8.w2"),
        ("p80.int8-weights.onnx", "p80.int8-weights"),
        ("p80.fp16.onnx", "p80.fp16"),
    ] {
        let m = Model::load(&d.join(name)).unwrap();
        assert_eq!(m.meta().variant, variant);
        assert!(
            m.meta().compression[0].starts_with("prune"),
            "{:?}",
            m.meta().compression
        );
        let (agree, n, _) = agreement(&float_model, &m, &pixels);
        // Two-bit values are not meant to keep the answers (onnxruntime
        // must still give the same ones).
        assert!(
            agree + 2 >= n || variant.ends_with("w2"),
            "{name}: {agree}/{n} agree with the pruned float file"
        );
        expected.insert(name.into(), probabilities(&m, &pixels));
    }
    // Static int8 of a pruned file computes on integers, as of a dense one.
    let int8 = Model::load(&d.join("p80.int8.w4.onnx")).unwrap();
    assert!(int8
        .plan_nodes()
        .iter()
        .any(|n| products(&n.op) > 0 && !n.is_float()));
    onnx_checker_and_onnxruntime_agree(d, &expected);

    // Hostile versions of the stored parts: one line naming the part, exit 2.
    let bad_in = |file: &str, edit: &dyn Fn(&mut onnx::proto::GraphProto), want: &str| {
        let mut proto = proto(file);
        edit(proto.graph.as_mut().unwrap());
        let path = d.join("bad.onnx");
        std::fs::write(&path, proto.encode_to_vec()).unwrap();
        let out = d.join("never.onnx");
        let o = compress(&["quantize", s(&path), "-o", s(&out), "--fp16"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{want}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "expected '{want}' in: {err}");
        assert!(!out.exists());
    };
    let bad = |edit: &dyn Fn(&mut onnx::proto::GraphProto), want: &str| {
        bad_in("p80.int8.w4.onnx", edit, want)
    };
    let set_i64s = |name: &'static str, values: Vec<i64>| {
        move |g: &mut onnx::proto::GraphProto| {
            let t = g
                .initializer
                .iter_mut()
                .find(|t| t.name.as_deref() == Some(name))
                .unwrap();
            t.raw_data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
        }
    };
    let count = |g: &onnx::proto::GraphProto, stream: &str| -> i64 {
        let shape = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(&format!("{stream}/shape")))
            .unwrap();
        i64::from_le_bytes(shape.raw_data.as_ref().unwrap()[..8].try_into().unwrap())
    };
    bad(
        &|g| {
            let n = count(g, "codes");
            set_i64s("codes/shape", vec![n, 9])(g);
            set_i64s("codes/bit_count", vec![9 * n])(g);
        },
        "9 bits a code is outside 2-8",
    );
    bad_in(
        "p80.int8.w2.onnx",
        &|g| {
            let n = count(g, "gap_codes");
            set_i64s("gap_codes/bit_count", vec![n])(g);
        },
        "'gap_codes/bit_count' is not",
    );
    // A float16 scale of zero, which the Cast would hand QLinearConv.
    bad(
        &|g| {
            let conv = g
                .node
                .iter()
                .find(|n| n.name.as_deref() == Some("fire2.squeeze"));
            let scale = conv.unwrap().input[4].clone() + "/16";
            let t = g
                .initializer
                .iter_mut()
                .find(|t| t.name.as_ref() == Some(&scale));
            let raw = t.unwrap().raw_data.as_mut().unwrap();
            raw[..2].copy_from_slice(&[0, 0]);
        },
        "scale 0 is not finite and positive",
    );
    bad(
        &|g| {
            let kernel = kernel_name(g, "fire2.squeeze");
            let start = format!("{kernel}/values/code_start");
            let first = g
                .initializer
                .iter()
                .find(|t| t.name.as_ref() == Some(&start))
                .unwrap();
            let at = i64::from_le_bytes(first.raw_data.as_ref().unwrap()[..].try_into().unwrap());
            set_i64s(format!("{kernel}/values/code_end").leak(), vec![at + 2])(g);
        },
        "does not suit 2 values",
    );
    // One gap fewer than values: the int8 block's gap codes end one early.
    bad(
        &|g| {
            let part = |p: &str| format!("sparse/i8/gaps/{p}");
            let last = |g: &onnx::proto::GraphProto, name: &str| {
                let t = g
                    .initializer
                    .iter()
                    .find(|t| t.name.as_deref() == Some(name));
                let raw = t.unwrap().raw_data.as_ref().unwrap();
                i64::from_le_bytes(raw[raw.len() - 8..].try_into().unwrap())
            };
            let end = last(g, &part("code_end"));
            set_i64s(part("code_end").leak(), vec![end - 1])(g);
        },
        "values but",
    );
}

/// `model`'s probabilities for `pixels`, one row per picture, as JSON.
fn probabilities(model: &Model, pixels: &[u8]) -> serde_json::Value {
    let p = model.run(pixels).unwrap();
    let rows: Vec<&[f32]> = (0..p.len()).map(|i| p.probabilities_of(i)).collect();
    serde_json::json!(rows)
}

/// Every file named in `expected` (with tract's probabilities) passes the
/// ONNX checker and gives the same answers in onnxruntime.
fn onnx_checker_and_onnxruntime_agree(
    d: &Path,
    expected: &serde_json::Map<String, serde_json::Value>,
) {
    std::fs::write(
        d.join("expected.json"),
        serde_json::to_vec(expected).unwrap(),
    )
    .unwrap();
    let report = common::conformance(d);
    let all = format!("{} passed, 0 failed", expected.len());
    assert!(report.contains(&all), "{report}");
}

/// Every zoo architecture quantizes, loads in tract and stays close to its
/// float version; what has no integer form is named and kept float; and
/// onnxruntime accepts the result.
#[test]
fn every_zoo_model_quantizes() {
    let dir = tempfile::tempdir().unwrap();
    let calib = cifar_images(cifar::Split::Train, 64);
    let pixels = sample_images();
    std::fs::write(dir.path().join("pixels.bin"), &pixels).unwrap();
    let mut expected = serde_json::Map::new();
    let float_parts: BTreeMap<&str, &[&str]> = [
        ("tuto", &["LRN has no integer form", "the classifier"][..]),
        ("alex4", &["the classifier"][..]),
        ("nin2", &["global average pooling"][..]),
        ("allconv", &["global average pooling"][..]),
        (
            "resnet9",
            &["residual adds stay float", "the classifier"][..],
        ),
        (
            "convnext-tiny",
            &[
                "LayerNorm has no integer form",
                "GELU has no integer form",
                "residual adds",
            ][..],
        ),
    ]
    .into_iter()
    .collect();
    for (arch, wanted) in float_parts {
        let graph = models::zoo::arch(arch).unwrap().graph();
        let mut weights = models::weights::seeded(&graph, 11).unwrap();
        // He-scaled kernels keep a deep ReLU network's logits apart.
        for spec in graph
            .params()
            .unwrap()
            .into_iter()
            .filter(|p| p.role == ParamRole::Weight)
        {
            weights
                .get_mut(&spec.name)
                .unwrap()
                .data
                .iter_mut()
                .for_each(|v| *v *= std::f32::consts::SQRT_2);
        }
        // As the trainer exports: batch norm folded into its convolution.
        let (graph, weights) = models::fold::fold_batchnorm(&graph, &weights).unwrap();
        let labels = (0..10).map(|i| format!("c{i}")).collect();
        let bytes = onnx::encode(&graph, &weights, &Metadata::new(&graph, labels))
            .unwrap()
            .encode_to_vec();
        let frozen = onnx::decode(&bytes).unwrap();
        let calibration = calibrate(&bytes, &graph, &calib.images, Method::MinMax).unwrap();
        let q = compress::quantize::quantize(&frozen, &calibration, Default::default()).unwrap();
        let why: Vec<&str> = q
            .report
            .float_layers
            .iter()
            .map(|(_, w)| w.as_str())
            .collect();
        for w in wanted {
            assert!(
                why.iter().any(|x| x.starts_with(w)),
                "{arch}: no float layer because '{w}': {:?}",
                q.report.float_layers
            );
        }
        assert!(!q.report.integer_layers.is_empty());
        let qbytes = q.proto.encode_to_vec();
        let (full, int8) = (
            Model::from_bytes(&bytes).unwrap(),
            Model::from_bytes(&qbytes).unwrap(),
        );
        let (p, r) = (full.run(&pixels).unwrap(), int8.run(&pixels).unwrap());
        let worst = common::max_abs_diff(&p.probabilities, &r.probabilities);
        println!(
            "{arch}: {} int8 layers, {} float ({}), {} boundaries, {} -> {} bytes, max |dp| {worst:.4}",
            q.report.integer_layers.len(),
            q.report.float_layers.len(),
            why.join("; "),
            q.report.boundaries.len(),
            bytes.len(),
            qbytes.len()
        );
        assert!(r.probabilities.iter().all(|v| v.is_finite()));
        assert!(worst < 0.1, "{arch}: int8 changed a probability by {worst}");
        // Each float part is entered and left once: never more boundaries
        // than two per float layer, plus the input.
        assert!(
            q.report.boundaries.len() <= 2 * q.report.float_layers.len() + 1,
            "{arch}: {:?}",
            q.report.boundaries
        );
        let file = format!("{arch}.int8.onnx");
        std::fs::write(dir.path().join(&file), &qbytes).unwrap();
        let rows: Vec<&[f32]> = (0..r.len()).map(|i| r.probabilities_of(i)).collect();
        expected.insert(file, serde_json::json!(rows));
    }
    onnx_checker_and_onnxruntime_agree(dir.path(), &expected);
}
