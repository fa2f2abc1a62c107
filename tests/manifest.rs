//! The shipped models against models/manifest.json: every file is listed,
//! its bytes are the ones the report measured, its metadata agrees, and it
//! labels the sample pictures through the runtime.

use runtime::preprocess::load_image;
use serde_json::Value;
use sha2::{Digest, Sha256};
use squeezebox::{repo_root, shared_dir, shipped_models};

#[test]
fn every_shipped_file_matches_the_manifest_and_labels_the_samples() {
    let path = repo_root().join("models/manifest.json");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entries = manifest["models"].as_array().unwrap();
    let mut listed: Vec<&str> = entries
        .iter()
        .map(|e| e["file"].as_str().unwrap())
        .collect();
    listed.sort();
    let shipped: Vec<String> = shipped_models()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, shipped, "models/*.onnx and the manifest differ");

    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let bytes = std::fs::read(repo_root().join("models").join(file)).unwrap();
        assert_eq!(
            format!("{:x}", Sha256::digest(&bytes)),
            entry["sha256"].as_str().unwrap(),
            "{file} changed since the manifest was written: rerun the report (README)"
        );
        assert_eq!(entry["bytes"], bytes.len());
        let model = runtime::Model::from_bytes(&bytes).unwrap();
        assert_eq!(entry["arch"], model.meta().arch.as_str(), "{file}");
        assert_eq!(entry["variant"], model.meta().variant.as_str(), "{file}");
        let commands = entry["command"].as_array().unwrap();
        // The first command trains: the trainer binary (a long run may use a
        // copy of it, as `trainer.pinned`, so that builds leave it alone).
        let trains = |c: &str| {
            c.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| {
                    w[0].rsplit('/').next().unwrap_or("").starts_with("trainer") && w[1] == "train"
                })
        };
        assert!(
            commands.first().and_then(Value::as_str).is_some_and(trains),
            "{file}: {commands:?}"
        );
        let accuracy = entry["test_accuracy"].as_f64().unwrap();
        assert!(accuracy > 0.5 && accuracy <= 1.0, "{file}: {accuracy}");
        assert_eq!(
            entry["test_images"], 10_000,
            "{file}: not the whole test batch"
        );

        // One sample picture per class, named after it: a trained model
        // gets most of them (alex4.p75, 82% on the test batch, gets 6), a
        // broken one about one.
        let labels = model.labels();
        let mut pixels = Vec::new();
        for label in labels {
            let picture = shared_dir().join("images").join(format!("{label}.png"));
            pixels.extend(load_image(&picture).unwrap());
        }
        let predictions = model.run(&pixels).unwrap();
        let right = (0..labels.len())
            .filter(|&i| predictions.top_k(i, 1)[0].0 == i)
            .count();
        assert!(
            right >= 6,
            "{file}: {right}/{} sample pictures right",
            labels.len()
        );
    }
}
