//! Training-time batch norm for nets that deploy without it. Training puts
//! one after each convolution (and, if asked, dense layer) that feeds an
//! activation, and export folds it away ([`models::fold`]). Fine-tuning a
//! deployed file, as pruning does, puts them back: a net trained with batch
//! norm diverges when fine-tuned without it. They are set from the net's
//! own activations, so that fine-tuning starts from what the file computes.

use std::collections::HashMap;

use cifar::Dataset;
use clap::ValueEnum;
use models::{Graph, ModelError, NodeId, Op, ParamRole, Tensor as Values, Weights};
use tch::{Device, Kind, Tensor};

use crate::data::pixel_batches;
use crate::Net;

/// Where training puts batch norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchNorm {
    /// Nowhere: the deployed graph as it is.
    Off,
    /// After each convolution that feeds an activation.
    Conv,
    /// After each convolution and hidden dense layer that feeds an activation.
    All,
}

impl BatchNorm {
    /// `graph` as trained with these batch norms.
    pub fn training_graph(self, graph: &Graph) -> Graph {
        match self {
            BatchNorm::Off => graph.clone(),
            BatchNorm::Conv => graph.with_batchnorm(false),
            BatchNorm::All => graph.with_batchnorm(true),
        }
    }
}

/// Training images whose activations set the inserted norms.
const CALIBRATION_IMAGES: usize = 2048;
const CALIBRATION_BATCH: usize = 256;

/// The net of `how`'s training graph for the deployed `graph` and
/// `weights`. Each inserted norm takes its running statistics from the
/// activations of `data`'s first images, and a gain and shift that undo
/// them (the layer's bias joins the shift). So the net computes what the
/// deployed one does: exactly in evaluation, and up to the batch's deviation
/// from those statistics in training.
pub fn renormed(
    graph: &Graph,
    weights: &Weights,
    how: BatchNorm,
    data: &Dataset,
    device: Device,
) -> Result<Net, ModelError> {
    models::weights::check(graph, weights)?;
    let trained = how.training_graph(graph);
    // The inserted norms (their parameters are not in `weights`) and the
    // layer each follows.
    let mut inserted: HashMap<NodeId, NodeId> = HashMap::new();
    let mut start = Weights::new();
    for spec in trained.params()? {
        if let Some(value) = weights.get(&spec.name) {
            start.insert(spec.name, value.clone());
            continue;
        }
        let norm = &trained.nodes[spec.node];
        let Op::BatchNorm { eps } = norm.op else {
            return Err(ModelError::Weights(format!("missing '{}'", spec.name)));
        };
        inserted.insert(spec.node, norm.inputs[0]);
        let channels = spec.shape.iter().product();
        let bias = format!("{}.bias", trained.nodes[norm.inputs[0]].name);
        // Pass-through until calibrated: the layer's bias as shift.
        let data = match spec.role {
            ParamRole::NormShift => weights
                .get(&bias)
                .map_or_else(|| vec![0.0; channels], |b| b.data.clone()),
            ParamRole::RunningVar => vec![1.0 - eps; channels],
            ParamRole::NormScale => vec![1.0; channels],
            _ => vec![0.0; channels],
        };
        start.insert(spec.name, Values::new(spec.shape, data)?);
    }
    let mut net = Net::fresh(&trained, device)?;
    net.load_weights(&start)?;
    if inserted.is_empty() {
        return Ok(net);
    }

    // Per layer: the sum and the sum of squares of each channel, and how
    // many values went into them.
    let mut moments: HashMap<NodeId, (Tensor, Tensor, i64)> = HashMap::new();
    tch::no_grad(|| {
        let batches = CALIBRATION_IMAGES.div_ceil(CALIBRATION_BATCH);
        for (pixels, _) in pixel_batches(data, CALIBRATION_BATCH).take(batches) {
            let input = net.preprocess(&pixels.to_device(device));
            let _logits = net.forward_observed(&input, false, &mut |id, y| {
                if !inserted.values().any(|&layer| layer == id) {
                    return;
                }
                let y = y.to_kind(Kind::Double);
                let dims: Vec<i64> = (0..y.dim() as i64).filter(|&d| d != 1).collect();
                let sum = y.sum_dim_intlist(&dims[..], false, Kind::Double);
                let squares = (&y * &y).sum_dim_intlist(&dims[..], false, Kind::Double);
                let count = y.numel() as i64 / y.size()[1];
                let slot = moments
                    .entry(id)
                    .or_insert_with(|| (sum.zeros_like(), sum.zeros_like(), 0));
                slot.0 += sum;
                slot.1 += squares;
                slot.2 += count;
            });
        }
    });

    let mut set = net.weights()?;
    for (&norm, &layer) in &inserted {
        let Some((sum, squares, count)) = moments.get(&layer) else {
            continue;
        };
        let Op::BatchNorm { eps } = trained.nodes[norm].op else {
            unreachable!("inserted nodes are norms")
        };
        let values = |t: Tensor| {
            Vec::<f64>::try_from(t.to_device(Device::Cpu))
                .map_err(|e| ModelError::Weights(format!("calibrating batch norm: {e}")))
        };
        let mean = values(sum / *count as f64)?;
        let mean_square = values(squares / *count as f64)?;
        let name = &trained.nodes[norm].name;
        let shift = set[&format!("{name}.bias")].data.clone();
        let mut field = |leaf: &str, f: &dyn Fn(usize, f64) -> f64| {
            let tensor = set
                .get_mut(&format!("{name}.{leaf}"))
                .expect("a norm's parameter");
            for (c, v) in tensor.data.iter_mut().enumerate() {
                let var = (mean_square[c] - mean[c] * mean[c]).max(0.0);
                *v = f(c, var) as f32;
            }
        };
        field("running_mean", &|c, _| mean[c]);
        field("running_var", &|_, var| var);
        field("weight", &|_, var| (var + f64::from(eps)).sqrt());
        field("bias", &|c, _| mean[c] + f64::from(shift[c]));
    }
    net.load_weights(&set)?;
    Ok(net)
}
