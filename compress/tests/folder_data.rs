//! `compress prune` and `sensitivity` on a folder of labelled pictures
//! (torchvision's ImageFolder layout) for an imported model of another size
//! than CIFAR-10's: the pictures are read at the model's 40x48, split as the
//! folder says, and bad folders are refused in one line.

use std::path::{Path, PathBuf};
use std::process::Output;

use runtime::Model;

mod common;

use common::{compress, export, repo, s};

const HEIGHT: usize = 40;
const WIDTH: usize = 48;

fn cifar() -> PathBuf {
    repo().join("../shared/cifar10")
}

/// A tiny ResNet-style torch export at 40x48, imported with CIFAR-10's
/// class names as its labels.
fn imported_model(dir: &Path) -> PathBuf {
    let original = dir.join("wide.onnx");
    export("resnet", &original, &["--size", "40", "48"]);
    let labels = dir.join("labels.txt");
    let classes = cifar::open(cifar()).unwrap().classes().join("\n");
    std::fs::write(&labels, classes).unwrap();
    let imported = dir.join("wide.sb.onnx");
    let o = compress(&[
        "import",
        s(&original),
        "-o",
        s(&imported),
        "--mean",
        "0.49,0.48,0.45",
        "--std",
        "0.25,0.24,0.26",
        "--labels",
        s(&labels),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    imported
}

/// CIFAR-10 training pictures `range` as 32x32 PNGs in class folders under
/// `root`, named by class and by number (`root/cat/0007.png`).
fn picture_folder(root: &Path, range: std::ops::Range<usize>) {
    let data = cifar::open(cifar())
        .unwrap()
        .load(cifar::Split::Train, Some(range.end))
        .unwrap();
    for i in range {
        let class = root.join(&data.classes[data.labels[i] as usize]);
        std::fs::create_dir_all(&class).unwrap();
        image::RgbImage::from_raw(32, 32, data.image(i).to_vec())
            .unwrap()
            .save(class.join(format!("{i:04}.png")))
            .unwrap();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Prunes to 50% with a few fine-tuning steps on a pool of class folders
/// (every 10th picture held out), then measures sensitivity on a folder in
/// ImageNet's train/ and val/ layout.
#[test]
fn an_imported_model_prunes_and_measures_on_a_folder_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = imported_model(d);
    let pool = d.join("pool");
    picture_folder(&pool, 0..300);
    let pruned = d.join("wide.p50.onnx");
    let o = compress(&[
        "prune",
        s(&model),
        "-o",
        s(&pruned),
        "--sparsity",
        "0.5",
        "--data",
        s(&pool),
        "--steps",
        "2",
        "--frequency",
        "3",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "8",
        "--batch",
        "32",
        "--threads",
        "2",
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("every 10th picture of each class by name (26 of 300) held out"),
        "{err}"
    );
    assert!(out.contains("sparsity 50.0%"), "{out}");
    assert!(out.contains("points, 26 images)"), "{out}");
    let p = Model::load(&pruned).unwrap();
    assert_eq!((p.height(), p.width()), (HEIGHT, WIDTH));
    p.run(&vec![128; 2 * HEIGHT * WIDTH * 3]).unwrap();

    let split = d.join("split");
    picture_folder(&split.join("train"), 0..40);
    picture_folder(&split.join("val"), 40..100);
    let o = compress(&[
        "sensitivity",
        s(&pruned),
        "--data",
        s(&split),
        "--sparsities",
        "0.5",
        "--threads",
        "2",
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(err.contains("no test/"), "{err}");
    assert!(out.contains("on 60 images"), "{out}");
}

/// Each bad folder gets one line naming it and the problem, exit 2, and no
/// file.
#[test]
fn bad_folders_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = imported_model(d);
    let out = d.join("out.onnx");

    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let strangers = d.join("strangers");
    picture_folder(&strangers, 0..100);
    std::fs::rename(strangers.join("frog"), strangers.join("zebra")).unwrap();
    let corrupt = d.join("corrupt");
    picture_folder(&corrupt, 0..300);
    let png = std::fs::read(corrupt.join("cat/0010.png")).unwrap();
    std::fs::write(corrupt.join("cat/0000.png"), &png[..png.len() / 2]).unwrap();
    // 95 training pictures, 5 held out; too few in any class to hold out.
    let (few, tiny) = (d.join("few"), d.join("tiny"));
    picture_folder(&few, 0..100);
    picture_folder(&tiny, 0..40);

    let cases: [(&Path, &str, &str); 6] = [
        (&empty, "empty", "no pictures"),
        (
            &strangers,
            "strangers",
            "'zebra' is none of the model's 10 labels",
        ),
        (&corrupt, "corrupt/cat/0000.png", "not a readable image"),
        (
            &few,
            "few",
            "95 training pictures, fewer than one batch of 128",
        ),
        (&tiny, "tiny", "none can be held out"),
        (&cifar(), "cifar10", "the model takes 40x48"),
    ];
    for (data, names, why) in cases {
        for command in ["prune", "sensitivity"] {
            let mut args = vec![command, s(&model), "--data", s(data)];
            if command == "prune" {
                args.extend(["-o", s(&out), "--sparsity", "0.5"]);
            }
            let o = compress(&args);
            let err = stderr(&o);
            // Sensitivity reads no training pictures, so a few are enough.
            if command == "sensitivity" && (why.contains("batch") || why.contains("readable")) {
                assert!(o.status.success(), "{command} on {names}: {err}");
                continue;
            }
            assert_eq!(o.status.code(), Some(2), "{command} on {names}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(names) && err.contains(why), "{command}: {err}");
            assert!(!out.exists());
        }
    }
}
