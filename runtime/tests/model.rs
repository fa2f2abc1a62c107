//! Loading, cost, threads and profiling of a random-weight model.

mod common;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};

use models::onnx::keys;
use runtime::preprocess::load_image;
use runtime::profile::profile;
use runtime::timing::measure;
use runtime::{Model, IMAGE_BYTES};
use tract_onnx::prelude::*;

/// Four sample pictures as one batch.
fn batch() -> Vec<u8> {
    ["cat.png", "dog.png", "ship.png", "truck.png"]
        .iter()
        .flat_map(|n| load_image(&common::sample(n)).unwrap())
        .collect()
}

#[test]
fn cost_comes_from_the_layer_graph() {
    let fixture = common::random_model("squeeze1");
    let model = Model::load(&fixture.path).unwrap();
    let cost = models::cost(&fixture.graph).unwrap();
    assert_eq!(model.macs(), Some(cost.macs));
    assert_eq!(model.params(), Some(cost.params));
    assert!(model.initializer_values() >= cost.params);
    assert_eq!(model.threads().get(), 1);
}

#[test]
fn a_file_without_a_layer_graph_runs_with_unknown_cost() {
    let fixture = common::random_model("squeeze1");
    let bare = fixture.edited("bare.onnx", |p| {
        p.metadata_props
            .retain(|e| e.key.as_deref() != Some(keys::LAYER_GRAPH))
    });
    let model = Model::load(&bare).unwrap();
    assert_eq!((model.macs(), model.params()), (None, None));
    assert_eq!(
        model.initializer_values(),
        Model::load(&fixture.path).unwrap().initializer_values()
    );
    assert_eq!(model.run(&batch()).unwrap().len(), 4);
}

#[test]
fn a_batch_gives_each_image_the_answer_it_gets_alone() {
    // Batch 1 and batch 4 run different plans, each optimised for its size.
    let fixture = common::random_model("squeeze1");
    let model = Model::load(&fixture.path).unwrap();
    let pixels = batch();
    let together = model.run(&pixels).unwrap();
    for (i, image) in pixels.chunks(runtime::IMAGE_BYTES).enumerate() {
        let alone = model.run(image).unwrap();
        for (a, b) in alone
            .probabilities_of(0)
            .iter()
            .zip(together.probabilities_of(i))
        {
            assert!(
                (a - b).abs() <= 1e-5,
                "image {i}: {a} alone, {b} in the batch"
            );
        }
    }
    assert!(model.run(&[]).is_err());
    assert!(model.run(&pixels[..100]).is_err());
}

#[test]
fn several_threads_share_a_batch_and_give_the_same_answers() {
    let fixture = common::random_model("squeeze1");
    let one = Model::load(&fixture.path).unwrap();
    let two = Model::load_with_threads(&fixture.path, NonZeroUsize::new(2).unwrap()).unwrap();
    assert_eq!(two.threads().get(), 2);
    // An odd count, so the second thread's share is the smaller one.
    let pixels: Vec<u8> = batch()
        .into_iter()
        .chain(batch())
        .take(7 * IMAGE_BYTES)
        .collect();
    let a = one.run(&pixels).unwrap();
    let seen_second_thread = AtomicBool::new(false);
    let running = AtomicBool::new(true);
    let b = std::thread::scope(|scope| {
        // The runtime names its threads, and Linux lists them in /proc.
        scope.spawn(|| {
            while running.load(Ordering::Relaxed) {
                let names = std::fs::read_dir("/proc/self/task")
                    .unwrap()
                    .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok());
                if names.into_iter().any(|n| n.trim() == "runtime-1") {
                    seen_second_thread.store(true, Ordering::Relaxed);
                }
            }
        });
        let runs: Vec<_> = (0..50).map(|_| two.run(&pixels).unwrap()).collect();
        running.store(false, Ordering::Relaxed);
        runs.into_iter().next().unwrap()
    });
    assert_eq!(b.len(), 7);
    let worst = a
        .probabilities
        .iter()
        .zip(&b.probabilities)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "probabilities differ by {worst}");
    assert!(
        seen_second_thread.load(Ordering::Relaxed),
        "no thread runtime-1 ran"
    );
}

#[test]
fn latency_runs_the_model_and_needs_a_timed_run() {
    let fixture = common::random_model("squeeze1");
    let model = Model::load(&fixture.path).unwrap();
    let pixels = load_image(&common::sample("cat.png")).unwrap();
    let stats = measure(&model, &pixels, 1, 5).unwrap();
    assert_eq!(stats.runs, 5);
    assert!(stats.min <= stats.median && stats.median <= stats.p95 && stats.p95 <= stats.max);
    assert!(!stats.min.is_zero());
    assert!(measure(&model, &pixels, 0, 0).is_err());
    assert!(measure(&model, &pixels[..100], 0, 1)
        .unwrap_err()
        .to_string()
        .contains("100 bytes"));
}

#[test]
fn profile_lists_op_types_most_expensive_first() {
    let fixture = common::random_model("squeeze1");
    let model = Model::load(&fixture.path).unwrap();
    let ops = profile(&model, &batch(), 3).unwrap();
    assert!(ops.len() > 2, "{ops:?}");
    assert!(ops.windows(2).all(|w| w[0].total >= w[1].total), "{ops:?}");
    let shares: f64 = ops.iter().map(|o| o.share).sum();
    assert!((shares - 1.0).abs() < 1e-6, "{shares}");
    assert!(ops.iter().all(|o| o.nodes >= 1 && !o.op.is_empty()));
    assert!(profile(&model, &batch(), 0).is_err());
}

/// Whether the runtime's own convolutions run on this machine: f32 (AVX2
/// and FMA) and int8 (AVX2).
#[cfg(target_arch = "x86_64")]
fn own_convs() -> (bool, bool) {
    let f32 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let int8 = is_x86_feature_detected!("avx2");
    (f32, int8)
}

#[cfg(not(target_arch = "x86_64"))]
fn own_convs() -> (bool, bool) {
    (false, false)
}

/// The logits of tract's own optimised plan of the file at `path`, with
/// none of squeezebox's ops.
fn tracts_logits(path: &std::path::Path, pixels: &[u8]) -> Vec<f32> {
    let n = pixels.len() / IMAGE_BYTES;
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, u8::fact([n, 32, 32, 3]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap();
    let input = Tensor::from_shape(&[n, 32, 32, 3], pixels).unwrap();
    let outputs = plan.run(tvec!(input.into())).unwrap();
    let logits = outputs[0].to_plain_array_view::<f32>().unwrap();
    logits.iter().copied().collect()
}

/// The op types of `model`'s plan for one image.
fn op_types(model: &Model, pixels: &[u8]) -> Vec<String> {
    let ops = profile(model, &pixels[..IMAGE_BYTES], 1).unwrap();
    ops.into_iter().map(|o| o.op).collect()
}

/// The runtime swaps tract's LRN, max pools and (on x86-64 with AVX2 and
/// FMA) convolutions for its own ops; tract's untouched plan of the same
/// file must give the same logits.
#[test]
fn squeezebox_ops_replace_tracts_and_give_its_answers() {
    let pixels = batch();
    let (conv, _) = own_convs();
    for (arch, mut swapped) in [
        ("tuto", vec!["PlaneStandardise", "PlaneLrn", "PlaneMaxPool"]),
        ("alex4", vec!["PlaneStandardise", "PlaneMaxPool"]),
        (
            "squeeze1",
            vec!["PlaneStandardise", "PlaneMaxPool", "PlaneMean"],
        ),
    ] {
        swapped.push("PlaneSoftmax");
        if conv {
            swapped.push("PlaneConv");
            if arch == "squeeze1" {
                swapped.push("PlaneConvConcat");
            }
        }
        let fixture = common::random_model(arch);
        let model = Model::load(&fixture.path).unwrap();
        let ours = model.run(&pixels).unwrap().logits;
        let expected = tracts_logits(&fixture.path, &pixels);
        assert_eq!(ours.len(), expected.len());
        for (a, b) in ours.iter().zip(&expected) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{arch}: {a} vs {b}"
            );
        }
        let ops = op_types(&model, &pixels);
        for op in swapped {
            assert!(ops.iter().any(|o| o == op), "{arch} lacks {op}: {ops:?}");
        }
        // squeeze1 is all convolutions: none is left to tract's products,
        // and its fire modules' expands write into one tensor.
        if conv && arch == "squeeze1" {
            let tracts = |o: &String| o.contains("MatMul") || o == "Concat" || o == "TypedConcat";
            assert!(!ops.iter().any(tracts), "{ops:?}");
        }
        for op in ["Lrn", "MaxPool", "OptMaxPool", "Softmax", "Reduce<Sum>"] {
            assert!(
                !ops.iter().any(|o| o == op),
                "{arch} still has {op}: {ops:?}"
            );
        }
    }
}

/// The runtime standardises each picture in one op, where the file spells
/// it in ten; tract's ops give the same logits, also at the edges: flat
/// pictures (the deviation's floor), black and white halves, a cropped
/// input (squeeze1) and a whole one (allconv).
#[test]
fn fused_standardisation_gives_tracts_answers_at_the_edges() {
    let mut pixels = batch()[..IMAGE_BYTES].to_vec();
    pixels.extend([0u8; IMAGE_BYTES]);
    pixels.extend([200u8; IMAGE_BYTES]);
    pixels.extend((0..IMAGE_BYTES).map(|i| if i < IMAGE_BYTES / 2 { 0u8 } else { 255 }));
    for arch in ["squeeze1", "allconv"] {
        let fixture = common::random_model(arch);
        assert_fused_preprocessing(&fixture.path, &pixels, "Sqrt");
    }
}

/// An imported model's per-channel normalisation (torchvision's mean and
/// std, spelt Cast, Transpose, Mul and Add), cropped (squeeze1) or whole
/// (allconv), is one op too, and gives tract's logits.
#[test]
fn fused_channel_normalisation_gives_tracts_answers() {
    use models::graph::Normalise;
    let mut pixels = batch()[..2 * IMAGE_BYTES].to_vec();
    pixels.extend((0..IMAGE_BYTES).map(|i| if i < IMAGE_BYTES / 2 { 0u8 } else { 255 }));
    for arch in ["squeeze1", "allconv"] {
        let mut fixture = common::random_model(arch);
        fixture.graph.preprocess.normalise = Normalise::Channels {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        };
        let path = fixture.dir.path().join(format!("{arch}.channels.onnx"));
        common::export(&path, &fixture.graph);
        assert_fused_preprocessing(&path, &pixels, "MoveAxis");
    }
}

/// The model at `path` gives tract's logits on `pixels`, its preprocessing
/// is one `PlaneStandardise`, and no op of type `gone` is left of the
/// chain it replaced.
fn assert_fused_preprocessing(path: &std::path::Path, pixels: &[u8], gone: &str) {
    let model = Model::load(path).unwrap();
    let ours = model.run(pixels).unwrap().logits;
    let expected = tracts_logits(path, pixels);
    let name = path.display();
    for (a, b) in ours.iter().zip(&expected) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{name}: {a} vs {b}"
        );
    }
    let ops = op_types(&model, pixels);
    assert!(
        ops.iter().any(|o| o == "PlaneStandardise"),
        "{name}: {ops:?}"
    );
    assert!(!ops.iter().any(|o| o == gone), "{name}: {ops:?}");
}

/// The runtime quantizes the shipped int8 squeeze1's input itself and, on a
/// CPU with AVX2, does every convolution. Its requantization rounds in float where
/// tract's rounds in fixed point, so an activation may be one step off;
/// the labels must be tract's and the logits within a few steps of its.
#[test]
fn int8_convolutions_are_squeezeboxs_and_give_tracts_labels() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/squeeze1.int8.onnx");
    let pixels = batch();
    let model = Model::load(&path).unwrap();
    let ours = model.run(&pixels).unwrap().logits;
    let expected = tracts_logits(&path, &pixels);
    let top = |logits: &[f32]| -> Vec<usize> {
        (logits.chunks_exact(10))
            .map(|l| (0..10).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap())
            .collect()
    };
    assert_eq!(top(&ours), top(&expected));
    let spread = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (a, b) in ours.iter().zip(&expected) {
        assert!((a - b).abs() <= 0.005 * spread, "{a} vs {b}");
    }
    let ops = op_types(&model, &pixels);
    assert!(ops.iter().any(|o| o == "PlaneQuantize"), "{ops:?}");
    // Every convolution is squeezebox's, and each fire module's expands
    // write into one tensor.
    if own_convs().1 {
        assert!(ops.iter().any(|o| o == "PlaneQConv"), "{ops:?}");
        assert!(ops.iter().any(|o| o == "PlaneQConvConcat"), "{ops:?}");
        let tracts = |o: &String| {
            o.contains("MatMul") || o.contains("Im2Col") || o == "Concat" || o == "TypedConcat"
        };
        assert!(!ops.iter().any(tracts), "{ops:?}");
    }
}

/// The shipped pruned squeeze1s run their mostly-zero convolutions on the
/// sparse kernels, chosen at load from each kernel's zeros (on a CPU with
/// AVX2 and FMA), and give tract's logits: squeeze1.p90 sparse in most
/// layers, the dense squeeze1 in none.
#[test]
fn pruned_convolutions_run_sparse_and_give_tracts_answers() {
    let pixels = batch();
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    for (file, at_least) in [("squeeze1.p90.onnx", 6), ("squeeze1.onnx", 0)] {
        let path = models.join(file);
        let model = Model::load(&path).unwrap();
        let ours = model.run(&pixels).unwrap().logits;
        for (a, b) in ours.iter().zip(&tracts_logits(&path, &pixels)) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{file}: {a} vs {b}"
            );
        }
        let notes: Vec<String> = (model.plan_nodes().into_iter())
            .filter(|n| n.op.starts_with("PlaneConv"))
            .flat_map(|n| n.info)
            .collect();
        let sparse = notes.iter().filter(|n| n.starts_with("sparse")).count();
        if own_convs().0 {
            assert!(sparse >= at_least, "{file}: {notes:?}");
        }
        if at_least == 0 {
            assert_eq!(sparse, 0, "{file}: {notes:?}");
        }
    }
}
