//! Layer-by-layer error between a float model and a compressed version of
//! it: the signal-to-quantization-noise ratio (SQNR) of every layer's
//! output, to find the layer where accuracy is lost.

use std::collections::{BTreeMap, HashSet};

use models::graph::Op;
use models::onnx::{FrozenModel, PROBABILITIES};
use runtime::probe::Probe;

use crate::calibrate::value_names;
use crate::quantize::{QParams, QUANTIZATION_KEY};
use crate::CompressError;

/// Images per probed batch.
const BATCH: usize = 50;

/// The error of one layer's output.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerError {
    /// The layer's value name (the float model's).
    pub value: String,
    /// Whether the compressed model holds this value as 8-bit integers.
    pub integer: bool,
    /// `10 log10(sum a^2 / sum (a - b)^2)`; infinite when equal.
    pub sqnr_db: f64,
}

/// Both models on the same images.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub images: usize,
    /// Layers in graph order.
    pub layers: Vec<LayerError>,
    /// Images whose top-1 class is the same in both models.
    pub top1_agree: usize,
    /// Largest difference of any class probability.
    pub max_probability_error: f32,
}

impl Comparison {
    /// The layer whose SQNR falls most below that of the layers before it
    /// (the first layer is the reference): where the error is made rather
    /// than inherited. With the drop in dB.
    pub fn worst_layer(&self) -> Option<(&LayerError, f64)> {
        let first = self.layers.first()?;
        let mut lowest_before = first.sqnr_db;
        let mut worst = (first, 0.0);
        for layer in &self.layers[1..] {
            let drop = lowest_before - layer.sqnr_db;
            if drop.is_finite() && drop > worst.1 {
                worst = (layer, drop);
            }
            lowest_before = lowest_before.min(layer.sqnr_db);
        }
        Some(worst)
    }
}

/// The names of the values `model`'s nodes compute.
fn node_outputs(model: &FrozenModel) -> HashSet<&str> {
    model
        .proto
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .flat_map(|n| &n.output)
        .map(String::as_str)
        .collect()
}

/// Runs `a` (float, whose layer graph names the layers) and `b` on `images`
/// and measures every layer output both models have.
pub fn compare(
    a_bytes: &[u8],
    a: &FrozenModel,
    b_bytes: &[u8],
    b: &FrozenModel,
    images: &[u8],
) -> Result<Comparison, CompressError> {
    let image_bytes = runtime::ImageSize::from(&a.contract).bytes();
    let count = images.len() / image_bytes;
    if count == 0 {
        return Err(CompressError::Refused(
            "comparing needs at least one image".into(),
        ));
    }
    let graph = a.layer_graph()?;
    let (in_a, in_b) = (node_outputs(a), node_outputs(b));
    let params = quantization_params(b)?;
    let mut layers: Vec<String> = Vec::new();
    for (id, name) in value_names(&graph).into_iter().enumerate() {
        let skip = matches!(graph.nodes[id].op, Op::Input | Op::Dropout { .. });
        if !skip
            && in_a.contains(name.as_str())
            && in_b.contains(name.as_str())
            && !layers.contains(&name)
        {
            layers.push(name);
        }
    }
    let mut probed = layers.clone();
    probed.push(PROBABILITIES.into());
    let fail = |e: runtime::RuntimeError| CompressError::Refused(e.to_string());
    let probe_a = Probe::from_bytes(a_bytes, &probed).map_err(fail)?;
    let probe_b = Probe::from_bytes(b_bytes, &probed).map_err(fail)?;
    let mut signal = vec![0f64; layers.len()];
    let mut noise = vec![0f64; layers.len()];
    let mut integer = vec![false; layers.len()];
    let (mut top1_agree, mut max_probability_error) = (0usize, 0f32);
    for batch in images.chunks(BATCH * image_bytes) {
        let (va, vb) = (
            probe_a.run(batch).map_err(fail)?,
            probe_b.run(batch).map_err(fail)?,
        );
        for (i, name) in layers.iter().enumerate() {
            let (x, y) = (&va[i], &vb[i]);
            if x.data.len() != y.data.len() {
                return Err(CompressError::Refused(format!(
                    "'{name}' differs in shape: {:?} and {:?}",
                    x.shape, y.shape
                )));
            }
            let dequantize: Option<QParams> = if y.integer {
                integer[i] = true;
                Some(*params.get(name).ok_or_else(|| {
                    CompressError::Refused(format!("'{name}' is 8-bit in the second model but its metadata has no scale for it"))
                })?)
            } else {
                None
            };
            for (&u, &v) in x.data.iter().zip(&y.data) {
                let v = match dequantize {
                    Some(p) => p.scale * (v - p.zero_point as f32),
                    None => v,
                };
                signal[i] += (u as f64).powi(2);
                noise[i] += (u as f64 - v as f64).powi(2);
            }
        }
        let (pa, pb) = (&va[layers.len()], &vb[layers.len()]);
        let classes = *pa.shape.last().unwrap_or(&1);
        for (ra, rb) in pa.data.chunks(classes).zip(pb.data.chunks(classes)) {
            top1_agree += (argmax(ra) == argmax(rb)) as usize;
            for (x, y) in ra.iter().zip(rb) {
                max_probability_error = max_probability_error.max((x - y).abs());
            }
        }
    }
    let layers = layers
        .into_iter()
        .enumerate()
        .map(|(i, value)| LayerError {
            value,
            integer: integer[i],
            sqnr_db: if noise[i] == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (signal[i] / noise[i]).log10()
            },
        })
        .collect();
    Ok(Comparison {
        images: count,
        layers,
        top1_agree,
        max_probability_error,
    })
}

/// The scale and zero point of every 8-bit value of a quantized model, from
/// its metadata; empty for other models.
pub fn quantization_params(
    model: &FrozenModel,
) -> Result<BTreeMap<String, QParams>, CompressError> {
    let Some(text) = model.meta.extra.get(QUANTIZATION_KEY) else {
        return Ok(BTreeMap::new());
    };
    let bad = |why: String| CompressError::Refused(format!("metadata '{QUANTIZATION_KEY}': {why}"));
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    if let Some(values) = json.get("values").and_then(|v| v.as_object()) {
        for (name, v) in values {
            // `[scale, zero point]`; files before it was short spelled an object.
            let (scale, zero) = match v.as_array().map(Vec::as_slice) {
                Some([s, z]) => (s, z),
                _ => (&v["scale"], &v["zero_point"]),
            };
            let scale = scale
                .as_f64()
                .ok_or_else(|| bad(format!("'{name}' has no scale")))?;
            let zero = zero
                .as_i64()
                .ok_or_else(|| bad(format!("'{name}' has no zero point")))?;
            out.insert(
                name.clone(),
                QParams {
                    scale: scale as f32,
                    zero_point: zero as i32,
                },
            );
        }
    }
    Ok(out)
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}
