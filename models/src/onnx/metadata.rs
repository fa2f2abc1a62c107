//! What a model file says about itself, stored in ONNX `metadata_props`.

use std::collections::BTreeMap;

use crate::error::ModelError;
use crate::graph::Graph;
use crate::onnx::proto::StringStringEntryProto;

/// The metadata keys squeezebox reads and writes.
pub mod keys {
    pub const ARCH: &str = "arch";
    /// JSON array of class names, in label order.
    pub const LABELS: &str = "labels";
    pub const VARIANT: &str = "variant";
    pub const DATASET: &str = "dataset";
    pub const TRAINING_STEPS: &str = "training_steps";
    /// Top-1 accuracy on the full test batch, as a fraction.
    pub const TEST_ACCURACY: &str = "test_accuracy";
    /// JSON array of the compression steps applied so far, oldest first.
    pub const COMPRESSION: &str = "compression";
    /// The command line that produced the file.
    pub const COMMAND: &str = "command";
    /// The squeezebox layer graph as JSON, for tools that edit the model.
    pub const LAYER_GRAPH: &str = "layer_graph";
}

/// Provenance and labels of a model file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    pub arch: String,
    pub labels: Vec<String>,
    /// What the file is: `f32`, `int8`, `p75`, ...
    pub variant: String,
    pub dataset: Option<String>,
    pub training_steps: Option<u64>,
    pub test_accuracy: Option<f64>,
    pub compression: Vec<String>,
    pub command: Option<String>,
    /// Keys squeezebox does not interpret itself (a later stage's details).
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for a freshly built model of `graph`.
    pub fn new(graph: &Graph, labels: Vec<String>) -> Metadata {
        Metadata {
            arch: graph.arch.clone(),
            labels,
            variant: "f32".into(),
            ..Default::default()
        }
    }

    /// The `metadata_props` entries, with the layer graph appended.
    pub fn to_props(&self, graph: &Graph) -> Vec<StringStringEntryProto> {
        let mut map = self.extra.clone();
        let mut set = |k: &str, v: String| {
            map.insert(k.to_string(), v);
        };
        set(keys::ARCH, self.arch.clone());
        set(
            keys::LABELS,
            serde_json::to_string(&self.labels).expect("strings serialise"),
        );
        set(keys::VARIANT, self.variant.clone());
        set(
            keys::COMPRESSION,
            serde_json::to_string(&self.compression).expect("strings serialise"),
        );
        set(keys::LAYER_GRAPH, graph.to_json());
        if let Some(d) = &self.dataset {
            set(keys::DATASET, d.clone());
        }
        if let Some(s) = self.training_steps {
            set(keys::TRAINING_STEPS, s.to_string());
        }
        if let Some(a) = self.test_accuracy {
            set(keys::TEST_ACCURACY, format!("{a:.4}"));
        }
        if let Some(c) = &self.command {
            set(keys::COMMAND, c.clone());
        }
        map.into_iter()
            .map(|(key, value)| StringStringEntryProto {
                key: Some(key),
                value: Some(value),
            })
            .collect()
    }

    /// Reads the metadata back; `arch` and `labels` are required.
    pub fn from_props(props: &[StringStringEntryProto]) -> Result<Metadata, ModelError> {
        let mut map: BTreeMap<String, String> = props
            .iter()
            .map(|p| {
                (
                    p.key.clone().unwrap_or_default(),
                    p.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        let bad = |k: &str, why: String| ModelError::Contract(format!("metadata '{k}': {why}"));
        let mut take = |k: &str| map.remove(k);
        let arch = take(keys::ARCH).ok_or_else(|| bad(keys::ARCH, "missing".into()))?;
        let labels_json = take(keys::LABELS).ok_or_else(|| bad(keys::LABELS, "missing".into()))?;
        let labels: Vec<String> = serde_json::from_str(&labels_json)
            .map_err(|e| bad(keys::LABELS, format!("not a JSON list: {e}")))?;
        let compression = match take(keys::COMPRESSION) {
            Some(j) => {
                serde_json::from_str(&j).map_err(|e| bad(keys::COMPRESSION, e.to_string()))?
            }
            None => Vec::new(),
        };
        let training_steps = match take(keys::TRAINING_STEPS) {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| bad(keys::TRAINING_STEPS, format!("'{s}' is not a count")))?,
            ),
            None => None,
        };
        let test_accuracy = match take(keys::TEST_ACCURACY) {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| bad(keys::TEST_ACCURACY, format!("'{s}' is not a number")))?,
            ),
            None => None,
        };
        let variant = take(keys::VARIANT).unwrap_or_else(|| "f32".into());
        let dataset = take(keys::DATASET);
        let command = take(keys::COMMAND);
        map.remove(keys::LAYER_GRAPH);
        Ok(Metadata {
            arch,
            labels,
            variant,
            dataset,
            training_steps,
            test_accuracy,
            compression,
            command,
            extra: map,
        })
    }
}
