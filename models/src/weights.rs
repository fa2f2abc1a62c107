//! Named tensors: the learned values of a graph, independent of the
//! framework that trained them.

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::graph::Graph;

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
            return Err(ModelError::Weights(format!("shape {shape:?} holds {numel} values, got {}", data.len())));
        }
        Ok(Tensor { shape, data })
    }

    pub fn filled(shape: Vec<usize>, value: f32) -> Tensor {
        let numel = shape.iter().product();
        Tensor { shape, data: vec![value; numel] }
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
    if let Some(extra) = weights.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
        return Err(ModelError::Weights(format!("tensor '{extra}' belongs to no layer")));
    }
    Ok(())
}
