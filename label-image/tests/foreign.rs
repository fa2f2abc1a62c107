//! Other tools' classifiers, as `torch.onnx.export` writes them
//! (tests/python/export_nets.py), run with --mean, --std and --labels: the
//! same top-1 and probabilities as onnxruntime on the original file, given
//! the same preprocessed pixels. And squeezebox files of another size than
//! 32x32, whose pictures are resized to it.

mod common;

use common::{accepted, onnxruntime_probabilities, sample, squeezebox_64x48, torch_export};
use runtime::preprocess::load_image;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn list(values: [f32; 3]) -> String {
    values.map(|v| v.to_string()).join(",")
}

/// The ResNet (ending in logits) and the MobileNet (ending in Softmax).
#[test]
fn torch_exports_agree_with_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    let names: Vec<String> = (0..10).map(|i| format!("kind {i}")).collect();
    std::fs::write(&labels, names.join("\n")).unwrap();
    // CIFAR-sized pictures: resizing to the model's 32x32 leaves them be.
    let pictures = [sample("cat.png"), sample("ship.png"), sample("frog.png")];
    let pixels: Vec<u8> = pictures
        .iter()
        .flat_map(|p| load_image(p).unwrap())
        .collect();
    for net in ["resnet", "mobilenet"] {
        let model = torch_export(dir.path(), net);
        let mut args = vec![
            "--model".into(),
            model.display().to_string(),
            "--mean".into(),
            list(MEAN),
            "--std".into(),
            list(STD),
            "--labels".into(),
            labels.display().to_string(),
            "--json".into(),
            "--top-k".into(),
            "10".into(),
            "--runs".into(),
            "1".into(),
            "--warmup".into(),
            "0".into(),
        ];
        args.extend(pictures.iter().map(|p| p.display().to_string()));
        let report: serde_json::Value = serde_json::from_str(&accepted(&args)).unwrap();
        assert_eq!(report["model"]["mean"][1].as_f64().unwrap() as f32, MEAN[1]);
        let want = onnxruntime_probabilities(&model, &pixels, (32, 32), Some((MEAN, STD)));
        for (image, want) in report["images"].as_array().unwrap().iter().zip(&want) {
            let top = image["top"].as_array().unwrap();
            assert_eq!(top.len(), 10);
            for guess in top {
                let label = guess["label"].as_str().unwrap();
                let class = names.iter().position(|n| n == label).unwrap();
                let got = guess["probability"].as_f64().unwrap() as f32;
                assert!(
                    (got - want[class]).abs() < 1e-4,
                    "{net}, {}: {label} {got} vs onnxruntime's {}",
                    image["file"],
                    want[class]
                );
            }
            let best = (0..10)
                .max_by(|&a, &b| want[a].total_cmp(&want[b]))
                .unwrap();
            assert_eq!(top[0]["label"], names[best], "{net}: top-1");
        }
    }
}

#[test]
fn squeezebox_files_of_another_size_take_pictures_resized_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = squeezebox_64x48(dir.path());
    let cat = sample("cat-256.jpg");
    let out = accepted(&[
        "--model",
        path.to_str().unwrap(),
        cat.to_str().unwrap(),
        "--runs",
        "1",
        "--warmup",
        "0",
    ]);
    assert!(out.contains("input       64x48 RGB\n"), "{out}");
    assert!(out.contains("  class"), "{out}");
}
