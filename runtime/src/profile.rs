//! Where a run's time goes: the time of each node's evaluation, summed by op
//! type, to show which kind of layer to make cheaper.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tract_onnx::prelude::TractError;
use tract_onnx::tract_core::plan::eval;

use crate::{Model, RuntimeError};

/// The time spent in one type of op over the profiled runs.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// tract's name for the op type, as optimised (`OptMatMul`, `Im2col`...).
    pub op: String,
    /// How many nodes of this type the plan has.
    pub nodes: usize,
    /// Total over all runs.
    pub total: Duration,
    /// Fraction of the time spent in all ops.
    pub share: f64,
}

/// Runs `pixels` through `model` `runs` times, timing every node; op types
/// come back most expensive first. Time between nodes (tract's bookkeeping)
/// is not counted, so shares are of the time inside ops.
pub fn profile(model: &Model, pixels: &[u8], runs: usize) -> Result<Vec<OpTime>, RuntimeError> {
    if runs == 0 {
        return Err(RuntimeError::Input(
            "at least one profiled run is needed".into(),
        ));
    }
    let fail = |e: TractError| RuntimeError::Model(format!("inference failed: {e}"));
    let mut by_op: HashMap<String, (usize, Duration)> = HashMap::new();
    let batch = model.image_size().images(pixels)?;
    let mut state = model.plan(batch)?.spawn().map_err(fail)?;
    for _ in 0..runs {
        state
            .run_plan_with_eval(model.input(pixels)?, |ctx, op_state, node, inputs| {
                let start = Instant::now();
                let outputs = eval(ctx, op_state, node, inputs);
                let entry = by_op.entry(node.op.name().to_string()).or_default();
                entry.0 += 1;
                entry.1 += start.elapsed();
                outputs
            })
            .map_err(fail)?;
    }
    let total: Duration = by_op.values().map(|(_, t)| *t).sum();
    let mut ops: Vec<OpTime> = by_op
        .into_iter()
        .map(|(op, (evals, time))| OpTime {
            op,
            nodes: evals / runs,
            total: time,
            share: if total.is_zero() {
                0.0
            } else {
                time.as_secs_f64() / total.as_secs_f64()
            },
        })
        .collect();
    ops.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.op.cmp(&b.op)));
    Ok(ops)
}
