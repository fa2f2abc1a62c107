//! Batch norms put back into a deployed net for fine-tuning: the net starts
//! from what the file computes, and folding them gives the file back.

use tch::{Device, Tensor};
use trainer::batch_norm::{renormed, BatchNorm};
use trainer::data::{Data, Limits};
use trainer::Net;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cifar10");

/// A deployed net of `arch` with seeded kernels and non-zero biases, and
/// its weights.
fn deployed(arch: &str) -> (Net, models::Weights) {
    let graph = models::zoo::arch(arch).unwrap().graph();
    let mut net = Net::seeded(&graph, Device::Cpu, 3).unwrap();
    let mut weights = net.weights().unwrap();
    for (name, tensor) in weights.iter_mut() {
        if name.ends_with(".bias") {
            for (i, v) in tensor.data.iter_mut().enumerate() {
                *v = 0.05 * ((i % 7) as f32 - 3.0);
            }
        }
    }
    net.load_weights(&weights).unwrap();
    (net, weights)
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn put_back_norms_compute_what_the_deployed_net_does_and_fold_back_to_it() {
    tch::set_num_threads(1);
    let limits = Limits {
        train: Some(64),
        val: Some(16),
        test: Some(16),
    };
    let data = Data::load(DATA.as_ref(), &limits).unwrap();
    let (pixels, _) = trainer::data::pixel_batches(&data.train, 64)
        .next()
        .unwrap();
    for (arch, how, norms) in [
        ("squeeze1", BatchNorm::Conv, 14),
        ("tuto", BatchNorm::All, 4),
    ] {
        let (net, weights) = deployed(arch);
        let renormed = renormed(net.graph(), &weights, how, &data.train, Device::Cpu).unwrap();
        let inserted = renormed.graph().nodes.len() - net.graph().nodes.len();
        assert_eq!(inserted, norms, "{arch}");

        let input = net.preprocess(&pixels);
        let expected = tch::no_grad(|| net.forward_t(&input, false));
        let scale = expected.abs().max().double_value(&[]);
        // Evaluation uses the running statistics: the deployed function.
        let eval = tch::no_grad(|| renormed.forward_t(&input, false));
        assert!(max_difference(&eval, &expected) <= 1e-4 * scale, "{arch}");
        let (graph, folded) =
            models::fold::fold_batchnorm(renormed.graph(), &renormed.weights().unwrap()).unwrap();
        assert_eq!(&graph, net.graph(), "{arch}");
        let put_back = renormed.weights().unwrap();
        for (name, value) in &weights {
            // A folded bias is the shift less the mean: f32 cancellation
            // leaves an error in proportion to the layer's mean activation.
            let layer = name.trim_end_matches(".bias");
            let mean = put_back
                .get(&format!("{layer}.bn.running_mean"))
                .filter(|_| name.ends_with(".bias"))
                .map_or(0.0, |m| m.data.iter().fold(0.0f32, |a, v| a.max(v.abs())));
            for (a, b) in value.data.iter().zip(&folded[name].data) {
                let tolerance = 1e-5 * (a.abs() + mean + 1e-3);
                assert!(
                    (a - b).abs() <= tolerance,
                    "{arch} {name}: {a} against {b}, mean {mean}"
                );
            }
        }
        // Training on the images the statistics came from normalises by the
        // same statistics, so it computes the same function too. (It also moves
        // the running statistics, so it comes last.)
        let train = tch::no_grad(|| renormed.forward_t(&input, true));
        let gap = max_difference(&train, &expected) / scale;
        assert!(gap <= 1e-3, "{arch}: {gap}");
    }
}
