//! Generates the ONNX protobuf types from the vendored `onnx.proto` with a
//! pure-Rust protobuf compiler, so building needs no `protoc`.
fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["proto/onnx.proto"], ["proto"]).expect("parse onnx.proto");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("generate ONNX types");
}
