//! Reading pruned kernels stored without their zeros (compress writes them:
//! `compress/src/sparse_storage.rs`): for kernel `K`, its non-zero values
//! `K/values` (f32), the gap before each as one byte `K/gaps`, its element
//! count `K/numel` and dims `K/shape` (int64). The runtime never decodes
//! them itself (the graph's nodes do), but the validation pass and
//! [`densify`], for the tools that read weights, both go through
//! [`stored_kernels`], so a hostile file is refused the same way everywhere.

use std::collections::BTreeSet;

use prost::Message;

use super::build::f32_tensor;
use super::proto::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};
use super::tensors::{find, float_values, ints};
use super::validate::max_values;
use crate::error::ModelError;

/// The one CumSum axis every kernel's decoding nodes share.
pub const AXIS: &str = "sparse/axis";
/// Largest gap one byte holds.
const MAX_GAP: usize = u8::MAX as usize;

/// A kernel as its non-zero values and the gaps between their positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaps {
    pub values: Vec<f32>,
    /// `gaps[0]` is the first position, then each the distance from the last.
    pub gaps: Vec<u8>,
}

impl Gaps {
    /// Encodes `dense`; fillers (value 0) bridge gaps longer than a byte.
    pub fn encode(dense: &[f32]) -> Gaps {
        let (mut values, mut gaps, mut last) = (Vec::new(), Vec::new(), 0usize);
        for (position, &v) in dense.iter().enumerate() {
            if v == 0.0 {
                continue;
            }
            let mut gap = position - last;
            while gap > MAX_GAP {
                values.push(0.0);
                gaps.push(u8::MAX);
                gap -= MAX_GAP;
            }
            values.push(v);
            gaps.push(gap as u8);
            last = position;
        }
        Gaps { values, gaps }
    }

    /// The dense tensor of `numel` values, as the decoding nodes compute it;
    /// an error where the parts disagree or a position falls past the end.
    pub fn decode(&self, numel: usize) -> Result<Vec<f32>, String> {
        if self.values.len() != self.gaps.len() {
            return Err(format!(
                "{} values but {} gaps",
                self.values.len(),
                self.gaps.len()
            ));
        }
        let mut dense = vec![0.0; numel];
        let mut position = 0usize;
        for (&v, &gap) in self.values.iter().zip(&self.gaps) {
            position += gap as usize;
            *dense.get_mut(position).ok_or_else(|| {
                format!("the gaps reach position {position}, past its {numel} values")
            })? = v;
        }
        Ok(dense)
    }

    /// Bytes of the stored data.
    pub fn bytes(&self) -> usize {
        self.values.len() * 4 + self.gaps.len()
    }
}

/// One kernel stored as values and gaps, its parts checked against each
/// other.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKernel {
    /// The dense kernel's name; its parts are `name/values` and so on.
    pub name: String,
    pub gaps: Gaps,
    pub shape: Vec<usize>,
}

impl StoredKernel {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every kernel `graph` stores as values and gaps (found by its `K/gaps`
/// initializer), each checked: the four parts are present with their dtypes
/// and ranks, values and gaps agree in length, `numel` is the product of the
/// shape and at most `max_numel`, and the last position falls inside it.
/// Initializers' byte lengths must already have been checked.
pub fn stored_kernels(
    graph: &GraphProto,
    max_numel: usize,
) -> Result<Vec<StoredKernel>, ModelError> {
    graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref()?.strip_suffix("/gaps"))
        .map(|name| {
            read_kernel(graph, name, max_numel).map_err(|why| ModelError::Tensor {
                name: format!("{name}/gaps"),
                why: format!("sparse kernel '{name}': {why}"),
            })
        })
        .collect()
}

fn read_kernel(graph: &GraphProto, name: &str, max_numel: usize) -> Result<StoredKernel, String> {
    let part = |p: &str, ty: DataType, rank: usize| -> Result<&TensorProto, String> {
        let t = find(graph, &format!("{name}/{p}"))
            .ok_or_else(|| format!("its part '{name}/{p}' is missing"))?;
        if t.data_type != Some(ty as i32) || t.dims.len() != rank {
            return Err(format!(
                "'{name}/{p}' must be {} of rank {rank}",
                ty.as_str_name().to_lowercase()
            ));
        }
        Ok(t)
    };
    let values = float_values(part("values", DataType::Float, 1)?);
    let gaps = ints(part("gaps", DataType::Uint8, 1)?);
    let numel = ints(part("numel", DataType::Int64, 1)?);
    let shape = ints(part("shape", DataType::Int64, 1)?);
    if values.len() != gaps.len() {
        return Err(format!("{} values but {} gaps", values.len(), gaps.len()));
    }
    let [numel] = numel[..] else {
        return Err(format!(
            "'{name}/numel' holds {} values, not 1",
            numel.len()
        ));
    };
    let within = |n: i64| n > 0 && n as u64 <= max_numel as u64;
    if !within(numel) {
        return Err(format!(
            "numel {numel} is not between 1 and {max_numel}, this file's budget"
        ));
    }
    let product = shape
        .iter()
        .try_fold(1i64, |p, &d| if d > 0 { p.checked_mul(d) } else { None });
    if product != Some(numel) {
        return Err(format!(
            "numel {numel} is not the product of shape {shape:?}"
        ));
    }
    let last: i64 = gaps.iter().sum();
    if last >= numel {
        return Err(format!(
            "the gaps reach position {last}, past its {numel} values"
        ));
    }
    Ok(StoredKernel {
        name: name.to_string(),
        gaps: Gaps {
            values,
            gaps: gaps.iter().map(|&g| g as u8).collect(),
        },
        shape: shape.iter().map(|&d| d as usize).collect(),
    })
}

/// The inverse of compress's `store_sparse`: every kernel stored as values and gaps
/// back as a dense initializer, its decoding nodes gone. For tools that
/// read a model's weights; a kernel whose parts disagree is an error.
pub fn densify(proto: &ModelProto) -> Result<ModelProto, ModelError> {
    let max = max_values(proto.encoded_len()) as usize;
    let mut proto = proto.clone();
    let graph = proto.graph.as_mut().expect("decoded models have a graph");
    let mut dense = Vec::new();
    for kernel in stored_kernels(graph, max)? {
        let values = kernel
            .gaps
            .decode(kernel.numel())
            .map_err(|why| ModelError::Tensor {
                name: format!("{}/gaps", kernel.name),
                why,
            })?;
        dense.push((kernel.name, f32_tensor("", &kernel.shape, &values)));
    }
    let parts = ["values", "gaps", "numel", "shape"];
    let decoded: BTreeSet<String> = dense
        .iter()
        .flat_map(|(name, _)| parts.iter().map(move |p| format!("{name}/{p}")))
        .chain(std::iter::once(AXIS.to_string()))
        .collect();
    graph
        .initializer
        .retain(|t| !decoded.contains(t.name.as_deref().unwrap_or_default()));
    let names: BTreeSet<&str> = dense.iter().map(|(n, _)| n.as_str()).collect();
    let decodes = |n: &NodeProto| {
        n.name
            .as_deref()
            .and_then(|n| n.rsplit_once('/'))
            .is_some_and(|(k, _)| names.contains(k))
    };
    graph.node.retain(|n| !decodes(n));
    for (name, t) in dense {
        graph.initializer.push(TensorProto {
            name: Some(name),
            ..t
        });
    }
    Ok(proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_round_trip_with_fillers_for_long_runs_of_zeros() {
        let mut dense = vec![0.0f32; 1000];
        dense[0] = 1.0;
        dense[3] = -2.0;
        dense[900] = 3.0;
        let g = Gaps::encode(&dense);
        // 897 zeros between 3 and 900: three fillers of 255.
        assert_eq!(g.gaps, vec![0, 3, 255, 255, 255, 132]);
        assert_eq!(g.values, vec![1.0, -2.0, 0.0, 0.0, 0.0, 3.0]);
        assert_eq!(g.decode(1000).unwrap(), dense);
        assert_eq!(
            Gaps::encode(&[0.0, 0.0, 5.0]).decode(3).unwrap(),
            vec![0.0, 0.0, 5.0]
        );
    }

    #[test]
    fn gaps_that_run_past_the_end_are_an_error() {
        let g = Gaps {
            values: vec![1.0, 2.0],
            gaps: vec![2, 1],
        };
        assert!(g.decode(4).is_ok());
        let err = g.decode(3).unwrap_err();
        assert!(err.contains("position 3"), "{err}");
        let unequal = Gaps {
            values: vec![1.0],
            gaps: vec![0, 0],
        };
        assert!(unequal.decode(4).is_err());
    }
}
