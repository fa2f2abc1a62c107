//! label-image on a random-weight squeeze1 and the sample pictures. The
//! weights are random, so these check the plumbing, not the labels.

mod common;

use common::{accepted, label_image, random_model, sample, CIFAR_LABELS};
use runtime::Model;
use serde_json::Value;

/// `n` as the report writes counts: 1,234,567.
fn grouped(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().rev().collect();
    let groups: Vec<String> = digits
        .chunks(3)
        .map(|g| g.iter().rev().collect())
        .rev()
        .collect();
    groups.join(",")
}

/// Few runs: these tests check the report, not the speed.
const QUICK: [&str; 4] = ["--runs", "3", "--warmup", "1"];

fn args<'a>(model: &'a std::path::Path, rest: &[&'a str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--model".into(), model.into()];
    args.extend(QUICK.iter().chain(rest).map(Into::into));
    args
}

#[test]
fn labels_a_picture_then_reports_size_and_speed() {
    let fixture = random_model("squeeze1");
    let cat = sample("cat.png");
    let out = accepted(&args(&fixture.path, &[cat.to_str().unwrap()]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("cat.png"), "{out}");
    let guesses: Vec<&str> = lines[1..6]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert!(guesses.iter().all(|g| CIFAR_LABELS.contains(g)), "{out}");
    let cost = models::cost(&fixture.graph).unwrap();
    for expected in [
        format!(
            "squeeze1.onnx: {} bytes, ",
            grouped(std::fs::metadata(&fixture.path).unwrap().len() as usize)
        ),
        "gzipped".into(),
        "squeeze1, variant f32, no test accuracy recorded".into(),
        format!(
            "{} params, {} MACs per image",
            grouped(cost.params),
            grouped(cost.macs)
        ),
        "load ".into(),
        "first run ".into(),
        "batch 1     min ".into(),
        "(3 runs after 1 warm-up)".into(),
        "GMAC/s".into(),
    ] {
        assert!(out.contains(&expected), "no '{expected}' in:\n{out}");
    }
    assert!(
        !out.contains("time per op type") && !out.contains("accuracy  "),
        "{out}"
    );
}

#[test]
fn json_has_the_report_fields_and_k_labels_per_picture() {
    let fixture = random_model("squeeze1");
    let (cat, dog) = (sample("cat.png"), sample("dog.png"));
    let out = accepted(&args(
        &fixture.path,
        &[
            "--json",
            "--top-k",
            "3",
            cat.to_str().unwrap(),
            dog.to_str().unwrap(),
        ],
    ));
    let report: Value = serde_json::from_str(&out).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(images[1]["file"].as_str().unwrap().ends_with("dog.png"));
    for image in images {
        let p: Vec<f64> = image["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), 3);
        assert!(
            p.windows(2).all(|w| w[0] >= w[1]) && p.iter().sum::<f64>() <= 1.0 + 1e-5,
            "{p:?}"
        );
    }
    let model = &report["model"];
    assert_eq!(
        model["bytes"],
        std::fs::metadata(&fixture.path).unwrap().len()
    );
    assert!(model["gzip_bytes"].as_u64().unwrap() > 0);
    assert_eq!(model["arch"], "squeeze1");
    assert_eq!(model["macs"], models::cost(&fixture.graph).unwrap().macs);
    assert_eq!(model["threads"], 1);
    assert!(model["load_ms"].as_f64().unwrap() > 0.0);
    let latency = &report["latency"];
    assert_eq!(latency["runs"], 3);
    assert!(latency["batch1"]["median_ms"].as_f64().unwrap() > 0.0);
    assert!(latency["batch1_gmac_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(latency["batch"]["size"], 2);
    assert!(report["profile"].is_null() && report["eval"].is_null());
}

#[test]
fn a_directory_is_one_batch_of_its_pictures_in_name_order() {
    let fixture = random_model("squeeze1");
    let dir = fixture.dir.path().join("pictures");
    std::fs::create_dir(&dir).unwrap();
    for name in ["ship.png", "cat-256.jpg", "dog.png"] {
        std::fs::copy(sample(name), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not a picture").unwrap();
    let run = label_image(&args(&fixture.path, &[dir.to_str().unwrap()]));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let files: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(dir.to_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 3, "{}", run.stdout);
    assert!(
        files[0].ends_with("cat-256.jpg") && files[2].ends_with("ship.png"),
        "{files:?}"
    );
    assert!(
        run.stdout.contains("batch 3 ") && run.stdout.contains("per image"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("skipping") && run.stderr.contains("notes.txt"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_labels_file_names_the_classes() {
    let fixture = random_model("squeeze1");
    let labels = fixture.dir.path().join("labels.txt");
    std::fs::write(
        &labels,
        (0..10).map(|i| format!("thing {i}\n")).collect::<String>(),
    )
    .unwrap();
    let cat = sample("cat.png");
    let out = accepted(&args(
        &fixture.path,
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--top-k",
            "10",
            cat.to_str().unwrap(),
        ],
    ));
    let named = out.lines().filter(|l| l.contains("  thing ")).count();
    assert_eq!(named, 10, "{out}");
}

#[test]
fn profile_shows_time_per_op_type() {
    let fixture = random_model("squeeze1");
    let cat = sample("cat.png");
    let out = accepted(&args(
        &fixture.path,
        &["--profile", "--threads", "2", cat.to_str().unwrap()],
    ));
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("time per op type"))
        .skip(1)
        .collect();
    assert!(
        table.len() > 2 && table.iter().all(|l| l.contains("% ") && l.contains(" ms ")),
        "{out}"
    );
    assert!(out.contains("threads     2"), "{out}");
}

#[test]
fn eval_gives_the_accuracy_of_the_file_itself() {
    let fixture = random_model("squeeze1");
    let data = common::cifar_dir();
    let out = accepted(&args(
        &fixture.path,
        &["--json", "--eval", data.to_str().unwrap(), "--limit", "200"],
    ));
    let eval = &serde_json::from_str::<Value>(&out).unwrap()["eval"];
    assert_eq!(eval["images"], 200);
    // The same count straight through the runtime.
    let test = cifar::open(&data)
        .unwrap()
        .load(cifar::Split::Test, Some(200))
        .unwrap();
    let predictions = Model::load(&fixture.path)
        .unwrap()
        .run(&test.images)
        .unwrap();
    let correct = (0..200)
        .filter(|&i| predictions.top_k(i, 1)[0].0 == test.labels[i] as usize)
        .count();
    assert_eq!(eval["correct"], correct);
    assert!((eval["top1"].as_f64().unwrap() - correct as f64 / 200.0).abs() < 1e-9);

    let text = accepted(&args(
        &fixture.path,
        &["--eval", data.to_str().unwrap(), "--limit", "200"],
    ));
    assert!(
        text.contains(&format!("% top-1 ({correct} of 200 CIFAR-10 test images")),
        "{text}"
    );
}
