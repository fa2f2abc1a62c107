//! Every exported zoo model passes the ONNX checker and gives the same
//! answers in onnxruntime as in squeezebox's runtime (tests/conformance.py,
//! run with the Python of `.venv`, or `$SQUEEZEBOX_PYTHON`).

use std::process::Command;

use squeezebox::{python, random_net, repo_root, test_images, test_metadata};

const IMAGES: usize = 8;

#[test]
fn zoo_models_conform_to_onnx_and_match_onnxruntime() {
    let (pixels, labels) = test_images(IMAGES);
    let dir = std::env::temp_dir().join(format!("sb-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pixels.bin"), &pixels).unwrap();
    let mut expected = serde_json::Map::new();
    for (i, arch) in models::zoo::ZOO.iter().enumerate() {
        let (_vs, net) = random_net(arch.name, 200 + i as i64);
        let file = format!("{}.onnx", arch.name);
        trainer::export::export_onnx(&dir.join(&file), &net, &test_metadata(&net, labels.clone()))
            .unwrap();
        let got = runtime::Model::load(&dir.join(&file))
            .unwrap()
            .run(&pixels)
            .unwrap();
        let rows: Vec<&[f32]> = (0..IMAGES).map(|i| got.probabilities_of(i)).collect();
        expected.insert(file, serde_json::json!(rows));
    }
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_vec(&expected).unwrap(),
    )
    .unwrap();

    let output = Command::new(python())
        .arg(repo_root().join("tests/conformance.py"))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (run scripts/setup.sh): {e}",
                python().display()
            )
        });
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "conformance failed:\n{report}");
    assert!(report.contains(&format!("{} passed, 0 failed", models::zoo::ZOO.len())));
    std::fs::remove_dir_all(&dir).unwrap();
}
