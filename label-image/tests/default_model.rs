//! Without `--model`, label-image uses the squeeze1 compiled into it: the
//! shipped, trained file, so its labels can be checked.

mod common;

use common::{accepted, sample, CIFAR_LABELS};
use serde_json::Value;

#[test]
fn labels_the_sample_pictures_with_the_embedded_squeeze1() {
    let classes = CIFAR_LABELS;
    let mut args = vec!["--json", "--runs", "1", "--warmup", "0"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(
        classes
            .iter()
            .map(|c| sample(&format!("{c}.png")).display().to_string()),
    );
    let report: Value = serde_json::from_str(&accepted(&args)).unwrap();

    let model = &report["model"];
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/squeeze1.onnx");
    assert_eq!(model["arch"], "squeeze1");
    assert_eq!(model["bytes"], std::fs::metadata(shipped).unwrap().len());
    assert!(model["test_accuracy"].as_f64().unwrap() > 0.8, "{model}");

    // One picture per class, each named after its class: a trained model
    // gets nearly all of them; a random one gets about one.
    let right = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(classes)
        .filter(|(image, class)| image["top"][0]["label"] == *class)
        .count();
    assert!(right >= 8, "{right}/10 right:\n{report:#}");
}
