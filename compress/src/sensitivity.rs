//! `compress sensitivity`: how much accuracy each layer loses when it alone
//! is pruned by magnitude, without fine-tuning. Layers that lose little can
//! be pruned hard; the others are the ones to `--exclude`.

use models::onnx::sparse::densify;
use models::onnx::{read_weights, FrozenModel};
use models::ParamRole;
use plot::{Chart, Corner, Mark, Point, Series};
use serde::Serialize;
use tch::Device;
use trainer::train::evaluate;
use trainer::Net;

use crate::prune::magnitude::{masks, Scope};
use crate::CompressError;

/// One kernel's accuracy at each sparsity.
#[derive(Debug, Clone, Serialize)]
pub struct LayerCurve {
    pub kernel: String,
    pub weights: usize,
    /// Validation accuracy with this kernel alone pruned, one per sparsity.
    pub accuracy: Vec<f64>,
}

/// The sensitivity of every kernel of a model.
#[derive(Debug, Clone, Serialize)]
pub struct Sensitivity {
    pub arch: String,
    pub images: usize,
    /// Validation accuracy of the model as it is.
    pub baseline: f64,
    pub sparsities: Vec<f64>,
    pub layers: Vec<LayerCurve>,
}

/// Prunes each kernel of `model` alone to each of `sparsities` and measures
/// the accuracy on `val`. A model stored sparse is read densified.
pub fn sensitivity(
    model: &FrozenModel,
    val: &cifar::Dataset,
    sparsities: &[f64],
    device: Device,
) -> Result<Sensitivity, CompressError> {
    let graph = model.layer_graph()?;
    let weights = read_weights(&densify(&model.proto)?, &graph)?;
    let mut net = Net::fresh(&graph, device)?;
    net.load_weights(&weights)?;
    let baseline = evaluate(&net, val, device).accuracy;
    let mut layers = Vec::new();
    for spec in graph
        .params()?
        .into_iter()
        .filter(|p| p.role == ParamRole::Weight)
    {
        let original = &weights[&spec.name];
        let mut accuracy = Vec::with_capacity(sparsities.len());
        for &sparsity in sparsities {
            let keep = masks(&[&original.data], sparsity, Scope::Layer).remove(0);
            let mut pruned = weights.clone();
            let kernel = pruned.get_mut(&spec.name).expect("a kernel of the graph");
            kernel
                .data
                .iter_mut()
                .zip(&keep)
                .filter(|(_, k)| !**k)
                .for_each(|(v, _)| *v = 0.0);
            net.load_weights(&pruned)?;
            accuracy.push(evaluate(&net, val, device).accuracy);
        }
        layers.push(LayerCurve {
            kernel: spec.name,
            weights: original.data.len(),
            accuracy,
        });
    }
    Ok(Sensitivity {
        arch: graph.arch,
        images: val.len(),
        baseline,
        sparsities: sparsities.to_vec(),
        layers,
    })
}

impl Sensitivity {
    /// Accuracy against sparsity, one curve per kernel, each starting from
    /// the unpruned model's accuracy.
    pub fn chart(&self) -> Chart {
        let series = self
            .layers
            .iter()
            .map(|layer| Series {
                name: layer.kernel.clone(),
                mark: Mark::Line,
                points: std::iter::once(Point::new(0.0, 100.0 * self.baseline))
                    .chain(
                        self.sparsities
                            .iter()
                            .zip(&layer.accuracy)
                            .map(|(s, a)| Point::new(100.0 * s, 100.0 * a)),
                    )
                    .collect(),
            })
            .collect();
        Chart {
            title: format!(
                "{}: one layer pruned at a time, no fine-tuning ({} validation images)",
                self.arch, self.images
            ),
            x_label: "sparsity of the pruned layer %".into(),
            y_label: "validation accuracy %".into(),
            log_x: false,
            // The curves fall towards the lower right.
            legend: Corner::LowerLeft,
            series,
        }
    }
}
