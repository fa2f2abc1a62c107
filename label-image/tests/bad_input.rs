//! Bad input is one line on stderr naming the file and the problem, and exit
//! code 2; never a panic.

mod common;

use std::path::Path;

use common::mutants::{edit, initializer, set_i64s};
use common::{label_image, random_model, sample, torch_export};
use models::onnx::proto::{
    tensor_proto::DataType, tensor_shape_proto::dimension::Value as Dim, type_proto,
};

/// Runs with `args` and checks the rejection; gives the error line.
fn rejected(args: &[&str]) -> String {
    let run = label_image(args);
    assert_eq!(
        run.code,
        Some(2),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    run.stderr
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_has(err: &str, parts: &[&str]) {
    assert!(
        parts.iter().all(|p| err.contains(p)),
        "{parts:?} not all in: {err}"
    );
}

#[test]
fn unusable_model_files() {
    let fixture = random_model("squeeze1");
    let cat = sample("cat.png");
    let dir = fixture.dir.path();

    let missing = dir.join("missing.onnx");
    assert_has(
        &rejected(&["--model", path(&missing), path(&cat)]),
        &["missing.onnx", "cannot read"],
    );

    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert_has(
        &rejected(&["--model", path(&empty), path(&cat)]),
        &["empty.onnx", "empty"],
    );

    let bytes = std::fs::read(&fixture.path).unwrap();
    let truncated = dir.join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_has(
        &rejected(&["--model", path(&truncated), path(&cat)]),
        &["truncated.onnx", "truncated"],
    );

    let nchw = fixture.edited("float-nchw.onnx", |proto| {
        let input = &mut proto.graph.as_mut().unwrap().input[0];
        let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut()
        else {
            panic!("the input is a tensor");
        };
        t.elem_type = Some(DataType::Float as i32);
        for (d, n) in t.shape.as_mut().unwrap().dim.iter_mut().zip([1, 3, 32, 32]) {
            d.value = Some(Dim::DimValue(n));
        }
    });
    let err = rejected(&["--model", path(&nchw), path(&cat)]);
    assert_has(
        &err,
        &["float-nchw.onnx", "float [1,3,32,32]", "uint8 [N,H,W,3]"],
    );

    // An ONNX op that tract knows but squeezebox never writes.
    let elu = fixture.edited("elu.onnx", |proto| {
        let graph = proto.graph.as_mut().unwrap();
        let relu = (graph.node.iter_mut())
            .find(|n| n.op_type.as_deref() == Some("Relu"))
            .unwrap();
        relu.op_type = Some("Elu".into());
    });
    assert_has(
        &rejected(&["--model", path(&elu), path(&cat)]),
        &["elu.onnx", "the ONNX op Elu", "does not read"],
    );
}

/// Shipped files made hostile in the ways that crashed label-image before
/// the validation pass: each is refused in one line naming the file and
/// the tensor. `runtime/tests/hostile.rs` tries hundreds more in process.
#[test]
fn hostile_model_files() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let read = |name: &str| std::fs::read(models.join(name)).unwrap();
    let (pruned, int8) = (read("squeeze1.p75.onnx"), read("squeeze1.int8.onnx"));
    let kernel = "fire2.squeeze.weight";
    // The int8 file names its parameters short: the input's scale is what
    // its first QuantizeLinear reads.
    let input_scale = {
        let proto = models::onnx::decode(&int8).unwrap().proto;
        let nodes = proto.graph.iter().flat_map(|g| &g.node);
        let mut quantize = nodes.filter(|n| n.op_type() == "QuantizeLinear");
        quantize.next().unwrap().input[1].clone()
    };
    let cases = [
        (
            "numel-bomb.onnx",
            edit(&pruned, |p| {
                set_i64s(initializer(p, &format!("{kernel}/numel")), 1 << 40)
            }),
            "numel 1099511627776",
        ),
        (
            "gaps-past-the-end.onnx",
            edit(&pruned, |p| {
                // A gap of 255 each: stored a byte each, or as codes into a
                // codebook of gaps.
                let stored = format!("{kernel}/gaps");
                let coded = p
                    .graph
                    .iter()
                    .flat_map(|g| &g.initializer)
                    .all(|t| t.name != Some(stored.clone()));
                let gaps = initializer(
                    p,
                    &if coded {
                        format!("{stored}/codebook")
                    } else {
                        stored
                    },
                );
                gaps.raw_data.as_mut().unwrap().fill(u8::MAX);
            }),
            "past its",
        ),
        (
            "dims-bomb.onnx",
            edit(&pruned, |p| {
                initializer(p, "conv1.weight").dims[0] = 1 << 30
            }),
            "conv1.weight",
        ),
        (
            "nan-scale.onnx",
            edit(&int8, |p| {
                initializer(p, &input_scale).raw_data = Some(f32::NAN.to_le_bytes().to_vec())
            }),
            input_scale.as_str(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cat = sample("cat.png");
    for (name, bytes, says) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        assert_has(
            &rejected(&["--model", path(&file), path(&cat)]),
            &[name, says],
        );
    }
}

/// Another tool's classifier (export_nets.py's ResNet, opset 13), and
/// `--mean`/`--std`, each wrong in one way.
#[test]
fn unusable_foreign_files_and_normalisations() {
    let dir = tempfile::tempdir().unwrap();
    let resnet = torch_export(dir.path(), "resnet", "13");
    let bytes = std::fs::read(&resnet).unwrap();
    let write = |name: &str, change: &dyn Fn(&mut models::onnx::proto::ModelProto)| {
        let file = dir.path().join(name);
        std::fs::write(&file, edit(&bytes, change)).unwrap();
        file
    };
    let set_dim = |proto: &mut models::onnx::proto::ModelProto, axis: usize, value: Dim| {
        let input = &mut proto.graph.as_mut().unwrap().input[0];
        if let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().unwrap().value.as_mut()
        {
            t.shape.as_mut().unwrap().dim[axis].value = Some(value);
        }
    };
    let two_inputs = write("two-inputs.onnx", &|p| {
        let graph = p.graph.as_mut().unwrap();
        let mut extra = graph.input[0].clone();
        extra.name = Some("extra".into());
        graph.input.push(extra);
    });
    let grey = write("grey.onnx", &|p| set_dim(p, 1, Dim::DimValue(1)));
    let symbolic = write("symbolic.onnx", &|p| {
        set_dim(p, 2, Dim::DimParam("height".into()))
    });
    let unknown_op = write("unknown-op.onnx", &|p| {
        let node = &mut p.graph.as_mut().unwrap().node[0];
        node.op_type = Some("NoSuchOp".into());
    });
    let labels = dir.path().join("nine.txt");
    std::fs::write(&labels, "a\nb\nc\nd\ne\nf\ng\nh\ni\n").unwrap();
    let cat = sample("cat.png");
    let (mean, std) = ("0.5,0.5,0.5", "0.25,0.25,0.25");
    let foreign = |model: &Path, mean: &str, std: &str| {
        rejected(&[
            "--model",
            path(model),
            "--mean",
            mean,
            "--std",
            std,
            path(&cat),
        ])
    };
    assert_has(
        &foreign(&two_inputs, mean, std),
        &["two-inputs.onnx", "2 inputs"],
    );
    assert_has(
        &foreign(&grey, mean, std),
        &["grey.onnx", "float [?,1,32,32]", "[N,3,H,W]"],
    );
    assert_has(
        &foreign(&symbolic, mean, std),
        &["symbolic.onnx", "symbolic height or width"],
    );
    assert_has(
        &foreign(&unknown_op, mean, std),
        &["unknown-op.onnx", "the ONNX op NoSuchOp", "does not read"],
    );
    assert_has(
        &foreign(&resnet, "0.5,0.5", std),
        &["resnet.onnx", "2 mean values"],
    );
    assert_has(
        &foreign(&resnet, mean, "0.2,0.2,0.2,0.2"),
        &["resnet.onnx", "4 std values"],
    );
    assert_has(
        &foreign(&resnet, mean, "0.2,0,0.2"),
        &["resnet.onnx", "std 0", "above 0"],
    );
    assert_has(
        &foreign(&resnet, mean, "0.2,-0.1,0.2"),
        &["std -0.1", "above 0"],
    );
    assert_has(
        &rejected(&[
            "--model",
            path(&resnet),
            "--mean",
            mean,
            "--std",
            std,
            "--labels",
            path(&labels),
            path(&cat),
        ]),
        &["nine.txt", "9 labels", "10 classes"],
    );
    // Without --mean and --std it is not a squeezebox file; with them, a
    // squeezebox file would be normalised twice.
    assert_has(
        &rejected(&["--model", path(&resnet), path(&cat)]),
        &[
            "resnet.onnx",
            "not a squeezebox model",
            "give --mean and --std",
        ],
    );
    let squeeze1 = random_model("squeeze1");
    assert_has(
        &foreign(&squeeze1.path, mean, std),
        &["squeeze1.onnx", "drop --mean and --std"],
    );
}

#[test]
fn unusable_pictures_and_directories() {
    let fixture = random_model("squeeze1");
    let model = path(&fixture.path);
    let dir = fixture.dir.path();

    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a picture").unwrap();
    assert_has(
        &rejected(&["--model", model, path(&text)]),
        &["notes.txt", "not an image"],
    );

    let gone = dir.join("no-such-dir");
    assert_has(
        &rejected(&["--model", model, path(&gone)]),
        &["no-such-dir", "cannot read"],
    );

    let bare = dir.join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::write(bare.join("notes.txt"), "not a picture").unwrap();
    assert_has(
        &rejected(&["--model", model, path(&bare)]),
        &["bare", "no PNG, JPEG or BMP images among its 1 entries"],
    );

    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "cat\ndog\n").unwrap();
    let cat = sample("cat.png");
    assert_has(
        &rejected(&["--model", model, "--labels", path(&labels), path(&cat)]),
        &["labels.txt", "2 labels", "10 classes"],
    );
    let huge = dir.join("huge-labels.txt");
    std::fs::write(&huge, "cat\n".repeat(1 << 19)).unwrap();
    assert_has(
        &rejected(&["--model", model, "--labels", path(&huge), path(&cat)]),
        &["huge-labels.txt", "over 1048576 bytes"],
    );
    let binary = dir.join("binary-labels.txt");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    assert_has(
        &rejected(&["--model", model, "--labels", path(&binary), path(&cat)]),
        &["binary-labels.txt", "not UTF-8"],
    );

    let not_cifar = dir.join("bare");
    assert_has(
        &rejected(&["--model", model, "--eval", path(&not_cifar)]),
        &["bare", "no CIFAR-10 data"],
    );
}

#[test]
fn counts_must_be_at_least_one() {
    let fixture = random_model("squeeze1");
    let cat = sample("cat.png");
    for flag in ["--runs", "--top-k", "--threads"] {
        let err = rejected(&["--model", path(&fixture.path), flag, "0", path(&cat)]);
        assert_has(&err, &[flag, "must be at least 1"]);
    }
    assert_has(
        &rejected(&["--model", path(&fixture.path), "--runs", "many", path(&cat)]),
        &["--runs", "not a whole number"],
    );
}
