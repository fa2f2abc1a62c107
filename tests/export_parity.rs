//! Every zoo model, exported by the trainer, runs in tract (through the
//! runtime) with the same logits as the libtorch forward pass.

use models::Graph;
use squeezebox::{random_net_of, test_images, test_metadata};

const IMAGES: usize = 16;

#[test]
fn exported_zoo_models_match_libtorch_in_tract() {
    let graphs = models::zoo::ZOO.iter().map(|arch| arch.graph());
    exported_models_match_libtorch_in_tract("plain", graphs.collect());
}

/// Training-time batch norm after convolutions and dense layers folds into
/// them at export, so the file computes what the eval-mode net does.
#[test]
fn nets_trained_with_batchnorm_export_what_libtorch_computes() {
    let graphs = ["squeeze1", "tuto", "alex4"].iter().map(|name| {
        models::zoo::arch(name)
            .unwrap()
            .graph()
            .with_batchnorm(true)
    });
    exported_models_match_libtorch_in_tract("bn", graphs.collect());
}

/// The layers imported models bring (explicit and uneven pads, stride 2,
/// depthwise, average pooling with and without padded zeros counted, the
/// activations, a squeeze-and-excitation gate, per-channel normalisation)
/// run in tract as in libtorch.
#[test]
fn imported_layer_kinds_match_libtorch_in_tract() {
    use models::graph::{Normalise, Preprocess};
    use models::{GraphBuilder, Op};
    let mut b = GraphBuilder::new("imported-kinds", 32);
    let conv = |out, kernel, stride, groups, pads| Op::Conv {
        out,
        kernel,
        stride,
        groups,
        bias: true,
        pads,
    };
    let x = b.add("stem", conv(8, 3, 2, 1, Some([1, 0, 2, 1])), &[b.input()]);
    let x = b.then(Op::HardSwish, x);
    let x = b.add("dw", conv(8, 3, 1, 8, Some([1, 1, 1, 1])), &[x]);
    let x = b.then(Op::Clip { min: 0.0, max: 6.0 }, x);
    let gate = b.then(Op::GlobalAvgPool, x);
    let gate = b.add("se", conv(8, 1, 1, 1, Some([0; 4])), &[gate]);
    let gate = b.then(
        Op::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        gate,
    );
    let x = b.add("gated", Op::Mul, &[x, gate]);
    let x = b.then(Op::LeakyRelu { alpha: 0.1 }, x);
    let pool = |count_include_pad, pads| Op::AvgPool {
        kernel: 3,
        stride: 2,
        pads: Some(pads),
        count_include_pad,
    };
    let x = b.add("avg_in", pool(true, [1, 1, 1, 1]), &[x]);
    let x = b.add("avg_out", pool(false, [0, 1, 1, 0]), &[x]);
    let x = b.then(Op::Sigmoid, x);
    let x = b.add(
        "max",
        Op::MaxPool {
            kernel: 2,
            stride: 1,
            pads: Some([0, 0, 1, 1]),
        },
        &[x],
    );
    let x = b.then(Op::Flatten, x);
    let logits = b.dense("logits", x, 10);
    let mut graph = b.finish(logits).unwrap();
    graph.preprocess = Preprocess {
        crop: None,
        normalise: Normalise::Channels {
            mean: [0.49, 0.48, 0.45],
            std: [0.25, 0.24, 0.26],
        },
        ..graph.preprocess
    };
    exported_models_match_libtorch_in_tract("imported", vec![graph]);
}

fn exported_models_match_libtorch_in_tract(tag: &str, graphs: Vec<Graph>) {
    let (pixels, labels) = test_images(IMAGES);
    let dir = std::env::temp_dir().join(format!("sb-parity-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = tch::Tensor::from_slice(&pixels).view([IMAGES as i64, 32, 32, 3]);
    for (i, graph) in graphs.iter().enumerate() {
        let arch = &graph.arch;
        let (_vs, net) = random_net_of(graph, 100 + i as i64);
        let expected =
            Vec::<f32>::try_from(tch::no_grad(|| net.forward_pixels(&batch)).flatten(0, -1))
                .unwrap();

        let path = dir.join(format!("{arch}.onnx"));
        trainer::export::export_onnx(&path, &net, &test_metadata(&net, labels.clone())).unwrap();
        let model = runtime::Model::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let got = model.run(&pixels).unwrap();

        assert_eq!(got.logits.len(), expected.len(), "{arch}");
        let worst = got
            .logits
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let scale = expected.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-4,
            "{arch}: logits differ by {worst} (largest logit {scale})"
        );
        // The comparison means something only if the logits are not flat.
        assert!(scale > 1e-3, "{arch}: degenerate logits");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
