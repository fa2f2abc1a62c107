//! The seven seed architectures, each defined once (see
//! `shared/reference/seed-models.md` for the figures they reproduce).

use crate::error::ModelError;
use crate::graph::{Graph, GraphBuilder, NodeId, Op};

/// An architecture of the zoo.
pub struct Arch {
    pub name: &'static str,
    pub summary: &'static str,
    build: fn() -> Result<Graph, ModelError>,
}

impl Arch {
    pub fn graph(&self) -> Graph {
        (self.build)().expect("zoo definitions are valid graphs")
    }
}

/// Every architecture, in the order the study introduced them.
pub const ZOO: &[Arch] = &[
    Arch {
        name: "tuto",
        summary: "TensorFlow tutorial CNN: 2 conv + LRN, 3 dense",
        build: tuto,
    },
    Arch {
        name: "alex4",
        summary: "AlexNet-style: 2 conv, 3 dense, no LRN",
        build: alex4,
    },
    Arch {
        name: "nin2",
        summary: "Network-in-network: 3 mlpconv blocks, global pool",
        build: nin2,
    },
    Arch {
        name: "squeeze1",
        summary: "SqueezeNet: 4 fire modules, global pool",
        build: squeeze1,
    },
    Arch {
        name: "allconv",
        summary: "All-convolutional Strided-CNN-C",
        build: allconv,
    },
    Arch {
        name: "resnet9",
        summary: "ResNet9 after cifar10-fast",
        build: resnet9,
    },
    Arch {
        name: "convnext-tiny",
        summary: "Tiny ConvNeXt-style net, 0.17M params",
        build: convnext_tiny,
    },
];

/// The zoo's names, for error messages and `--help`.
pub fn names() -> Vec<&'static str> {
    ZOO.iter().map(|a| a.name).collect()
}

/// Looks an architecture up by name.
pub fn arch(name: &str) -> Result<&'static Arch, ModelError> {
    ZOO.iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ModelError::UnknownArch {
            name: name.into(),
            known: names().join(", "),
        })
}

/// The TensorFlow tutorial's LRN (depth_radius 4, alpha 0.001/9), in ONNX terms.
const TUTO_LRN: Op = Op::Lrn {
    size: 9,
    alpha: 0.001,
    beta: 0.75,
    bias: 1.0,
};

/// The study's pooling: 3x3, stride 2, SAME (24 -> 12 -> 6).
fn pool(b: &mut GraphBuilder, x: NodeId) -> NodeId {
    b.max_pool(x, 3, 2)
}

/// Flatten, then the study's FC384-FC192-FC10 classifier.
fn dense_head(b: &mut GraphBuilder, x: NodeId) -> NodeId {
    let x = b.then(Op::Flatten, x);
    let x = b.dense("fc1", x, 384);
    let x = b.then(Op::Relu, x);
    let x = b.dense("fc2", x, 192);
    let x = b.then(Op::Relu, x);
    b.dense("logits", x, 10)
}

/// Global average pooling to a flat vector of logits.
fn global_pool_head(b: &mut GraphBuilder, x: NodeId) -> NodeId {
    let x = b.then(Op::GlobalAvgPool, x);
    b.then(Op::Flatten, x)
}

fn tuto() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("tuto", 24);
    let x = b.conv_relu("conv1", b.input(), 64, 5, 1);
    let x = pool(&mut b, x);
    let x = b.then(TUTO_LRN, x);
    let x = b.conv_relu("conv2", x, 64, 5, 1);
    let x = b.then(TUTO_LRN, x);
    let x = pool(&mut b, x);
    let logits = dense_head(&mut b, x);
    b.finish(logits)
}

fn alex4() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("alex4", 24);
    let x = b.conv_relu("conv1", b.input(), 96, 5, 1);
    let x = pool(&mut b, x);
    let x = b.conv_relu("conv2", x, 96, 3, 1);
    let x = pool(&mut b, x);
    let logits = dense_head(&mut b, x);
    b.finish(logits)
}

fn nin2() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("nin2", 24);
    let mut x = b.input();
    let blocks: [(usize, [usize; 3]); 3] = [
        (5, [192, 160, 96]),
        (5, [192, 192, 192]),
        (3, [192, 192, 10]),
    ];
    for (i, (kernel, widths)) in blocks.into_iter().enumerate() {
        let n = i + 1;
        x = b.conv_relu(&format!("block{n}.conv"), x, widths[0], kernel, 1);
        x = b.conv_relu(&format!("block{n}.mlp1"), x, widths[1], 1, 1);
        x = b.conv_relu(&format!("block{n}.mlp2"), x, widths[2], 1, 1);
        if n < 3 {
            x = pool(&mut b, x);
            x = b.then(Op::Dropout { p: 0.5 }, x);
        }
    }
    let logits = global_pool_head(&mut b, x);
    b.finish(logits)
}

/// A fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated.
fn fire(b: &mut GraphBuilder, name: &str, x: NodeId, squeeze: usize, expand: usize) -> NodeId {
    let s = b.conv_relu(&format!("{name}.squeeze"), x, squeeze, 1, 1);
    let e1 = b.conv_relu(&format!("{name}.expand1x1"), s, expand, 1, 1);
    let e3 = b.conv_relu(&format!("{name}.expand3x3"), s, expand, 3, 1);
    b.add(format!("{name}.concat"), Op::Concat, &[e1, e3])
}

fn squeeze1() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("squeeze1", 24);
    let x = b.conv_relu("conv1", b.input(), 64, 3, 1);
    let x = pool(&mut b, x);
    let x = fire(&mut b, "fire2", x, 32, 64);
    let x = fire(&mut b, "fire3", x, 32, 64);
    let x = pool(&mut b, x);
    let x = fire(&mut b, "fire4", x, 32, 128);
    let x = fire(&mut b, "fire5", x, 32, 128);
    let x = b.conv_relu("conv10", x, 10, 1, 1);
    let logits = global_pool_head(&mut b, x);
    b.finish(logits)
}

fn allconv() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("allconv", 32);
    let x = b.conv("conv1", b.input(), 96, 3, 1);
    let x = b.add("conv1.bn", Op::BatchNorm { eps: 1e-3 }, &[x]);
    let x = b.then(Op::Relu, x);
    let x = b.conv_relu("conv2", x, 96, 3, 2);
    let x = b.then(Op::Dropout { p: 0.5 }, x);
    let x = b.conv_relu("conv3", x, 192, 3, 1);
    let x = b.conv_relu("conv4", x, 192, 3, 2);
    let x = b.then(Op::Dropout { p: 0.5 }, x);
    let x = b.conv_relu("conv5", x, 192, 3, 1);
    let x = b.conv_relu("conv6", x, 192, 1, 1);
    let x = b.conv_relu("conv7", x, 10, 1, 1);
    let logits = global_pool_head(&mut b, x);
    b.finish(logits)
}

/// ResNet9's unit: bias-free 3x3 convolution, batch norm, ReLU.
fn conv_bn(b: &mut GraphBuilder, name: &str, x: NodeId, out: usize) -> NodeId {
    let x = b.add(
        name,
        Op::Conv {
            out,
            kernel: 3,
            stride: 1,
            groups: 1,
            bias: false,
            pads: None,
        },
        &[x],
    );
    let x = b.add(format!("{name}.bn"), Op::BatchNorm { eps: 1e-5 }, &[x]);
    b.then(Op::Relu, x)
}

/// Two conv-bn units added back to their input.
fn residual(b: &mut GraphBuilder, name: &str, x: NodeId, width: usize) -> NodeId {
    let y = conv_bn(b, &format!("{name}.conv1"), x, width);
    let y = conv_bn(b, &format!("{name}.conv2"), y, width);
    b.add(format!("{name}.add"), Op::Add, &[x, y])
}

fn resnet9() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("resnet9", 32);
    let input = b.input();
    let x = conv_bn(&mut b, "prep", input, 64);
    let x = conv_bn(&mut b, "layer1", x, 128);
    let x = b.max_pool(x, 2, 2);
    let x = residual(&mut b, "res1", x, 128);
    let x = conv_bn(&mut b, "layer2", x, 256);
    let x = b.max_pool(x, 2, 2);
    let x = conv_bn(&mut b, "layer3", x, 512);
    let x = b.max_pool(x, 2, 2);
    let x = residual(&mut b, "res3", x, 512);
    let x = b.max_pool(x, 4, 4);
    let x = b.then(Op::Flatten, x);
    let x = b.add(
        "fc",
        Op::Dense {
            out: 10,
            bias: false,
        },
        &[x],
    );
    let logits = b.then(Op::Scale { factor: 0.125 }, x);
    b.finish(logits)
}

/// Keras LayerNormalization's default epsilon, as in the seed.
const KERAS_LN_EPS: f32 = 1e-3;

/// Inverted bottleneck: depthwise 3x3 with depth multiplier `factor`,
/// LayerNorm, GELU, dropout, 1x1 back to `width`, LayerScale, residual add.
fn bottleneck(b: &mut GraphBuilder, name: &str, x: NodeId, width: usize, factor: usize) -> NodeId {
    let dw = Op::Conv {
        out: width * factor,
        kernel: 3,
        stride: 1,
        groups: width,
        bias: true,
        pads: None,
    };
    let y = b.add(format!("{name}.dwconv"), dw, &[x]);
    let y = b.add(
        format!("{name}.norm"),
        Op::LayerNorm { eps: KERAS_LN_EPS },
        &[y],
    );
    let y = b.then(Op::Gelu, y);
    let y = b.then(Op::Dropout { p: 0.5 }, y);
    let y = b.conv(&format!("{name}.pwconv"), y, width, 1, 1);
    let y = b.add(format!("{name}.layerscale"), Op::ChannelScale, &[y]);
    b.add(format!("{name}.add"), Op::Add, &[x, y])
}

fn convnext_tiny() -> Result<Graph, ModelError> {
    let mut b = GraphBuilder::new("convnext-tiny", 32);
    let mut x = b.conv("stem", b.input(), 32, 4, 1);
    // (width, depth multiplier, bottlenecks, width after the downscale)
    let stages = [(32, 2, 2, 64), (64, 4, 4, 128), (128, 2, 2, 128)];
    for (s, (width, factor, depth, next)) in stages.into_iter().enumerate() {
        for i in 0..depth {
            x = bottleneck(
                &mut b,
                &format!("stage{}.block{}", s + 1, i + 1),
                x,
                width,
                factor,
            );
        }
        // Downscale: mix channels with a 1x1 while widening, then pool.
        // The last stage keeps its width, so its downscale is the pool alone.
        if next != width {
            x = b.conv(&format!("stage{}.downscale", s + 1), x, next, 1, 1);
        }
        x = b.max_pool(x, 2, 2);
    }
    let x = b.then(Op::GlobalAvgPool, x);
    let x = b.add("head.norm", Op::LayerNorm { eps: KERAS_LN_EPS }, &[x]);
    let x = b.then(Op::Relu, x);
    let x = b.then(Op::Flatten, x);
    let logits = b.dense("head.fc", x, 10);
    b.finish(logits)
}
