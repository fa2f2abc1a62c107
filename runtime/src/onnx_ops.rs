//! The ONNX ops the runtime reads: those that squeezebox's exporter and
//! compressor write. tract-onnx's own registry holds every ONNX op it
//! knows, and each one registered links its code (tract-core's ops for
//! every type, FFTs included) into every binary; registering these alone
//! keeps label-image small enough for a board. A squeezebox file with any
//! other op fails to load, and the error names the op, on every build, so
//! that a file that runs here runs on a board. Other tools' files
//! ([`crate::foreign`]) are read with tract-onnx's whole registry where
//! the `all-ops` feature is on (label-image's default; the ARM release
//! builds leave it off and read these ops alone).

use tract_onnx::model::OnnxOpRegister;
use tract_onnx::ops::{array, cast, cumsum, math, nn, quant};
use tract_onnx::pb::{GraphProto, NodeProto};
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::activations::Clip;
use tract_onnx::tract_hir::ops::binary::Nary;
use tract_onnx::tract_hir::ops::expandable::expand;
use tract_onnx::tract_hir::ops::{self as hir};
use tract_onnx::Onnx;

/// tract's ONNX reader, with the ops of the files squeezebox writes.
pub(crate) fn reader() -> Onnx {
    let mut onnx = Onnx::default();
    register(&mut onnx.op_register);
    onnx
}

/// tract's ONNX reader for other tools' files, and its name in errors:
/// every op tract-onnx knows.
#[cfg(feature = "all-ops")]
pub(crate) fn foreign_reader() -> (Onnx, &'static str) {
    (tract_onnx::onnx(), "tract-onnx")
}

/// tract's ONNX reader for other tools' files, and its name in errors:
/// the ops of squeezebox's files, in a build without `all-ops`.
#[cfg(not(feature = "all-ops"))]
pub(crate) fn foreign_reader() -> (Onnx, &'static str) {
    (
        reader(),
        "this build (squeezebox's ops only, as on ARM boards)",
    )
}

/// Fails on the first node of `graph` whose op `onnx` does not read,
/// naming it and the `reader`, where tract would fail later and less
/// clearly.
pub(crate) fn check_ops(onnx: &Onnx, graph: &GraphProto, reader: &str) -> TractResult<()> {
    let unread = |node: &&NodeProto| !onnx.op_register.0.contains_key(&node.op_type);
    match graph.node.iter().find(unread) {
        Some(node) => bail!(
            "node '{}' uses the ONNX op {}, which {reader} does not read",
            node.name,
            node.op_type
        ),
        None => Ok(()),
    }
}

/// Registers, in `reg`, the ops of the files squeezebox writes, as
/// tract-onnx builds them.
fn register(reg: &mut OnnxOpRegister) {
    // Tensors: the preprocessing, the classifier's flatten, sparse
    // storage's rebuilding of pruned weights and the unpacking of shared
    // weights' codes.
    reg.insert("BitShift", |_, node| {
        let right = node.get_attr_opt::<&str>("direction")?.unwrap_or("LEFT") == "RIGHT";
        let op = if right {
            hir::math::ShiftRight.into_hir()
        } else {
            hir::math::ShiftLeft.into_hir()
        };
        Ok((op, vec![]))
    });
    reg.insert("Cast", cast::cast);
    reg.insert("Gather", array::gather);
    reg.insert("Concat", array::concat);
    reg.insert("ConstantOfShape", array::constant_of_shape);
    reg.insert("CumSum", cumsum::cumsum);
    reg.insert("Flatten", array::flatten);
    reg.insert("Identity", |_, _| {
        Ok((Box::<hir::identity::Identity>::default(), vec![]))
    });
    reg.insert("Reshape", |_, node| {
        let allowzero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) != 0;
        Ok((expand(hir::array::Reshape::new(allowzero)), vec![]))
    });
    reg.insert("ScatterElements", array::scatter_elements);
    reg.insert("Slice", array::slice::slice);
    reg.insert("Split", array::split::split);
    reg.insert("Transpose", array::transpose);
    // Arithmetic: the standardisation, residual sums, GELU.
    reg.insert("Add", |_, _| Ok((hir::math::Add.into_hir(), vec![])));
    reg.insert("Sub", |_, _| Ok((hir::math::Sub.into_hir(), vec![])));
    reg.insert("Mul", |_, _| Ok((hir::math::Mul.into_hir(), vec![])));
    reg.insert("Div", |_, _| Ok((hir::math::Div.into_hir(), vec![])));
    reg.insert("Sum", |_, _| {
        Ok((Box::new(Nary(Box::new(hir::math::Add), false)), vec![]))
    });
    reg.insert("Max", |_, _| {
        Ok((Box::new(Nary(Box::new(hir::math::Max), false)), vec![]))
    });
    reg.insert("Min", |_, _| {
        Ok((Box::new(Nary(Box::new(hir::math::Min), false)), vec![]))
    });
    reg.insert("Sqrt", |_, _| Ok((hir::math::sqrt().into_hir(), vec![])));
    reg.insert("Erf", |_, _| Ok((hir::math::erf().into_hir(), vec![])));
    reg.insert("Gemm", math::gemm::gemm);
    // Layers.
    reg.insert("BatchNormalization", nn::batch_normalization);
    reg.insert("Conv", nn::conv);
    reg.insert("GlobalAveragePool", |_, _| {
        Ok((expand(hir::nn::GlobalAvgPool), vec![]))
    });
    reg.insert("LRN", nn::lrn::lrn);
    reg.insert("MaxPool", nn::max_pool::max_pool);
    reg.insert("ReduceMean", |c, node| {
        nn::reduce::reduce(c, node, hir::nn::Reducer::Mean)
    });
    reg.insert("ReduceSum", |c, node| {
        nn::reduce::reduce(c, node, hir::nn::Reducer::Sum)
    });
    // Imported models' activations and pooling (`compress import`).
    reg.insert("AveragePool", nn::average_pool);
    reg.insert("HardSigmoid", nn::hard_sigmoid);
    reg.insert("LeakyRelu", nn::leaky_relu);
    reg.insert("Sigmoid", |_, _| {
        Ok((hir::nn::sigmoid().into_hir(), vec![]))
    });
    reg.insert("Relu", |_, _| {
        Ok((expand(Clip::new(Some(0.0), None)), vec![]))
    });
    reg.insert("Softmax", nn::layer_soft_max);
    // Quantization.
    reg.insert("QuantizeLinear", quant::quantize_linear);
    reg.insert("DequantizeLinear", quant::dequantize_linear);
    reg.insert("QLinearConv", nn::conv_qlinear);
}
