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
