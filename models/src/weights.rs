//! Named tensors: the learned values of a graph, independent of the
//! framework that trained them.

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::graph::{Graph, ParamRole};

/// A dense f32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, ModelError> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(ModelError::Weights(format!(
                "shape {shape:?} holds {numel} values, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    pub fn filled(shape: Vec<usize>, value: f32) -> Tensor {
        let numel = shape.iter().product();
        Tensor {
            shape,
            data: vec![value; numel],
        }
    }
}

/// Parameter name to tensor, ordered by name.
pub type Weights = BTreeMap<String, Tensor>;

/// Checks that `weights` holds exactly the graph's parameters, with the
/// right shapes.
pub fn check(graph: &Graph, weights: &Weights) -> Result<(), ModelError> {
    let specs = graph.params()?;
    for spec in &specs {
        let t = weights
            .get(&spec.name)
            .ok_or_else(|| ModelError::Weights(format!("missing tensor '{}'", spec.name)))?;
        if t.shape != spec.shape {
            return Err(ModelError::Weights(format!(
                "'{}' has shape {:?}, the graph needs {:?}",
                spec.name, t.shape, spec.shape
            )));
        }
    }
    if let Some(extra) = weights
        .keys()
        .find(|k| !specs.iter().any(|s| &s.name == *k))
    {
        return Err(ModelError::Weights(format!(
            "tensor '{extra}' belongs to no layer"
        )));
    }
    Ok(())
}

/// A deterministic stream of values in [-1, 1) for `seed`, the same on every
/// machine: a linear congruential generator, enough for test data and no
/// dependency.
pub fn uniform(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(2).wrapping_add(1);
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// Deterministic pseudo-random weights for `graph`: fan-in scaled kernels
/// and off-default norms and biases, so that every value matters. For
/// exercising the pipeline (export, runtimes, compression) without training.
pub fn seeded(graph: &Graph, seed: u64) -> Result<Weights, ModelError> {
    let mut uniform = uniform(seed);
    graph
        .params()?
        .into_iter()
        .map(|p| {
            let numel: usize = p.shape.iter().product();
            let fan_in = (numel / p.shape[0]).max(1) as f32;
            let data = (0..numel)
                .map(|_| match p.role {
                    ParamRole::Weight => uniform() * (3.0 / fan_in).sqrt(),
                    ParamRole::NormScale => 1.0 + 0.2 * uniform(),
                    ParamRole::RunningVar => 1.0 + 0.5 * uniform(),
                    ParamRole::Bias | ParamRole::NormShift | ParamRole::RunningMean => {
                        0.1 * uniform()
                    }
                })
                .collect();
            Ok((
                p.name,
                Tensor {
                    shape: p.shape,
                    data,
                },
            ))
        })
        .collect()
}
