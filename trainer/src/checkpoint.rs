//! Checkpoints: everything a killed run needs to go on as if it had not
//! stopped, in libtorch's named-tensor format, written atomically.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::history::EpochLog;
use crate::train::Recipe;
use crate::{first_line, TrainError};

/// Tensor name prefixes: the live parameters, the optimiser's momentum
/// buffers and the moving average.
pub const PARAM: &str = "param.";
pub const MOMENTUM: &str = "momentum.";
pub const EMA: &str = "ema.";
/// The [`State`], as JSON bytes in a `uint8` tensor.
const STATE: &str = "state";

/// Where a run stands, beside its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub recipe: Recipe,
    /// The layer graph as JSON: a checkpoint only fits the same network.
    pub graph: String,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimiser steps taken.
    pub step: u64,
    pub history: Vec<EpochLog>,
}

/// Writes `state` and `tensors` to a temporary file beside `path`, then
/// renames it over `path`, so a kill mid-write leaves the last checkpoint.
pub fn save(path: &Path, state: &State, tensors: &[(String, Tensor)]) -> Result<(), TrainError> {
    let json = serde_json::to_string(state).expect("the state serialises");
    let state_tensor = Tensor::from_slice(json.as_bytes());
    let mut named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    named.push((STATE, &state_tensor));
    let fail = |why: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        why,
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail("not a file name".into()))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = Tensor::save_multi(&named, &tmp)
        .map_err(|e| fail(format!("cannot write: {}", first_line(&e.to_string()))))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| fail(format!("cannot write: {e}"))));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a checkpoint, refusing one written under a different recipe or
/// for a different network.
pub fn load(
    path: &Path,
    recipe: &Recipe,
    graph: &str,
) -> Result<(State, HashMap<String, Tensor>), TrainError> {
    let fail = |why: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        why,
    };
    if !path.exists() {
        return Err(fail("not found, so there is nothing to resume".into()));
    }
    let mut tensors: HashMap<String, Tensor> = Tensor::load_multi(path)
        .map_err(|e| {
            fail(format!(
                "not a trainer checkpoint: {}",
                first_line(&e.to_string())
            ))
        })?
        .into_iter()
        .collect();
    let bytes = tensors
        .remove(STATE)
        .and_then(|t| Vec::<u8>::try_from(&t).ok())
        .ok_or_else(|| fail("not a trainer checkpoint: no state".into()))?;
    let state: State = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("not a trainer checkpoint: unreadable state: {e}")))?;
    // Compared as graphs, not text: fields added since the checkpoint was
    // written read back as their defaults.
    let same = |a: &str, b: &str| match (models::Graph::from_json(a), models::Graph::from_json(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if !same(&state.graph, graph) {
        // Training-time batch norm makes the same architecture another net.
        let describe = |json: &str| match models::Graph::from_json(json) {
            Ok(g) => format!("{} of {} layers", g.arch, g.nodes.len()),
            Err(_) => "?".into(),
        };
        return Err(fail(format!(
            "it is for a different network ({}, not {}: an architecture or --batch-norm differs)",
            describe(&state.graph),
            describe(graph)
        )));
    }
    if state.recipe != *recipe {
        return Err(fail(format!(
            "it was written by a different run: {}",
            differences(&state.recipe, recipe)
        )));
    }
    Ok((state, tensors))
}

/// The settings in which two recipes differ, e.g. `lr 0.1 (checkpoint) vs 0.2 (now)`.
fn differences(saved: &Recipe, now: &Recipe) -> String {
    let object = |r: &Recipe| match serde_json::to_value(r).expect("the recipe serialises") {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a recipe is a struct"),
    };
    let (saved, now) = (object(saved), object(now));
    let diffs: Vec<String> = saved
        .iter()
        .filter(|(key, value)| now.get(*key) != Some(*value))
        .map(|(key, value)| {
            format!(
                "{key} {value} (checkpoint) vs {} (now)",
                now.get(key).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect();
    diffs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_different_recipe_is_named_setting_by_setting() {
        let a = Recipe::default();
        let b = Recipe {
            epochs: 40,
            lr: 0.2,
            ..Recipe::default()
        };
        assert_eq!(
            differences(&a, &b),
            "epochs 30 (checkpoint) vs 40 (now), lr 0.1 (checkpoint) vs 0.2 (now)"
        );
    }

    #[test]
    fn state_round_trips_and_a_foreign_graph_is_refused() {
        let path =
            std::env::temp_dir().join(format!("trainer-ckpt-unit-{}.ckpt", std::process::id()));
        let state = State {
            recipe: Recipe::default(),
            graph: "{}".into(),
            epoch: 3,
            step: 42,
            history: vec![],
        };
        save(
            &path,
            &state,
            &[("param.x".into(), Tensor::from_slice(&[1.0f32, 2.0]))],
        )
        .unwrap();
        let (back, tensors) = load(&path, &Recipe::default(), "{}").unwrap();
        assert_eq!(back, state);
        assert_eq!(
            Vec::<f32>::try_from(&tensors["param.x"]).unwrap(),
            [1.0, 2.0]
        );
        let err = load(&path, &Recipe::default(), "[]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("different network"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
