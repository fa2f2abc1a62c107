//! Export writes a self-describing file; the reader checks the contract and
//! gives the same weights back.

use models::onnx::{self, proto::tensor_proto::DataType, Metadata};
use models::{fold::fold_batchnorm, zoo, Graph, Tensor, Weights};
use prost::Message;

fn weights_for(graph: &Graph) -> Weights {
    models::weights::seeded(graph, 7).unwrap()
}

fn labels() -> Vec<String> {
    (0..10).map(|i| format!("class{i}")).collect()
}

#[test]
fn every_zoo_model_exports_and_reads_back() {
    for arch in zoo::ZOO {
        let graph = arch.graph();
        let weights = weights_for(&graph);
        let mut meta = Metadata::new(&graph, labels());
        meta.training_steps = Some(12);
        meta.test_accuracy = Some(0.875);
        let bytes = onnx::encode(&graph, &weights, &meta)
            .unwrap()
            .encode_to_vec();
        let model = onnx::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", arch.name));
        assert_eq!(model.contract.classes, 10);
        assert_eq!(model.meta, meta, "{}", arch.name);
        let graph_back = model.layer_graph().unwrap();
        assert_eq!(graph_back, graph);
        assert_eq!(
            onnx::read_weights(&model.proto, &graph_back).unwrap(),
            weights,
            "{}",
            arch.name
        );
        assert_eq!(model.proto.opset_import[0].version, Some(onnx::OPSET));
        // Runtimes turn initializers into nodes: every name must be unique.
        let g = model.proto.graph.as_ref().unwrap();
        let mut names: Vec<_> = g.node.iter().map(|n| n.name.clone().unwrap()).collect();
        names.extend(g.initializer.iter().map(|t| t.name.clone().unwrap()));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            count,
            "{}: duplicate node or initializer names",
            arch.name
        );
    }
}

#[test]
fn folding_removes_batchnorm_that_follows_a_convolution() {
    let graph = zoo::arch("resnet9").unwrap().graph();
    let (folded, weights) = fold_batchnorm(&graph, &weights_for(&graph)).unwrap();
    assert!(folded
        .nodes
        .iter()
        .all(|n| !matches!(n.op, models::Op::BatchNorm { .. })));
    assert!(weights.contains_key("prep.bias") && !weights.contains_key("prep.bn.weight"));
    assert_eq!(
        folded.shapes().unwrap()[folded.output],
        graph.shapes().unwrap()[graph.output]
    );
    // The residual adds still read the right layers.
    models::weights::check(&folded, &weights).unwrap();
}

#[test]
fn reader_rejects_files_that_are_not_squeezebox_models() {
    let graph = zoo::arch("squeeze1").unwrap().graph();
    let bytes = onnx::encode(
        &graph,
        &weights_for(&graph),
        &Metadata::new(&graph, labels()),
    )
    .unwrap()
    .encode_to_vec();

    let err = |b: &[u8]| onnx::decode(b).expect_err("must be rejected").to_string();
    assert!(err(&[]).contains("empty"));
    assert!(err(&bytes[..bytes.len() / 2]).contains("truncated"));
    assert!(err(b"\x89PNG\r\n\x1a\n not a model").contains("not an ONNX model"));

    // A model with a float NCHW input: a different contract.
    let mut other = onnx::decode(&bytes).unwrap().proto;
    let input = &mut other.graph.as_mut().unwrap().input[0];
    if let Some(onnx::proto::type_proto::Value::TensorType(t)) =
        input.r#type.as_mut().unwrap().value.as_mut()
    {
        t.elem_type = Some(DataType::Float as i32);
    }
    let msg = err(&other.encode_to_vec());
    assert!(
        msg.contains("float") && msg.contains("uint8 [N,H,W,3]"),
        "{msg}"
    );

    // Labels that do not match the classes.
    let mut meta = Metadata::new(&graph, labels());
    meta.labels.pop();
    let bytes = onnx::encode(&graph, &weights_for(&graph), &meta)
        .unwrap()
        .encode_to_vec();
    assert!(err(&bytes).contains("9 labels"));
}

#[test]
fn export_rejects_weights_that_do_not_fit_the_graph() {
    let graph = zoo::arch("tuto").unwrap().graph();
    let mut weights = weights_for(&graph);
    weights.insert(
        "conv1.weight".into(),
        Tensor::filled(vec![64, 3, 3, 3], 0.0),
    );
    let err = onnx::encode(&graph, &weights, &Metadata::new(&graph, labels()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("conv1.weight") && err.contains("[64, 3, 5, 5]"),
        "{err}"
    );
}

#[test]
fn export_is_atomic_and_leaves_no_temporary_file() {
    let dir = std::env::temp_dir().join(format!("sb-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.onnx");
    let graph = zoo::arch("squeeze1").unwrap().graph();
    onnx::export(
        &path,
        &graph,
        &weights_for(&graph),
        &Metadata::new(&graph, labels()),
    )
    .unwrap();
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m.onnx")]);
    let missing = dir.join("no/such/dir/m.onnx");
    let err = onnx::export(
        &missing,
        &graph,
        &weights_for(&graph),
        &Metadata::new(&graph, labels()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no/such/dir/m.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
