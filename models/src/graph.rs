//! The layer graph: the one definition of a network that training (tch),
//! export (ONNX), cost counting and compression all read.
//!
//! A graph is a list of nodes in topological order. Node 0 is always the
//! input: the standardised image after preprocessing. Every other node names
//! the earlier nodes it reads. Convolutions and pools use TensorFlow's SAME
//! padding, as the seed models do, so shapes follow from the input size.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Index of a node in [`Graph::nodes`]; also names the value it produces.
pub type NodeId = usize;

/// What the graph does to the raw `uint8 [N,height,width,3]` pixels before
/// node 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Side of the centre crop fed to the network; `None`, or a side no
    /// smaller than the picture, feeds the whole picture.
    pub crop: Option<usize>,
    /// Size of the raw pictures the model takes: squeezebox's own models
    /// take CIFAR's 32x32, an imported model the size it was exported at.
    #[serde(default = "raw_size")]
    pub height: usize,
    #[serde(default = "raw_size")]
    pub width: usize,
    #[serde(default, skip_serializing_if = "Normalise::is_per_image")]
    pub normalise: Normalise,
}

fn raw_size() -> usize {
    RAW_SIZE
}

impl Preprocess {
    /// The preprocessing of squeezebox's own models: 32x32 pictures,
    /// centre-cropped to `crop`, each standardised on its own.
    pub fn cifar(crop: usize) -> Preprocess {
        Preprocess {
            crop: Some(crop),
            height: RAW_SIZE,
            width: RAW_SIZE,
            normalise: Normalise::PerImage,
        }
    }

    /// Bytes of one raw picture: `height x width x 3`.
    pub fn image_bytes(&self) -> usize {
        self.height * self.width * RAW_CHANNELS
    }

    /// Height and width of the image node 0 holds.
    pub fn input_size(&self) -> (usize, usize) {
        match self.crop {
            Some(c) if c < self.height || c < self.width => (c, c),
            _ => (self.height, self.width),
        }
    }
}

/// How pixels become the network's input values.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalise {
    /// Each image shifted and scaled to mean 0, standard deviation 1, as
    /// TensorFlow's `per_image_standardization` (the seed models).
    #[default]
    PerImage,
    /// torchvision's convention: `(pixel / 255 - mean) / std` per channel.
    Channels { mean: [f32; 3], std: [f32; 3] },
}

impl Normalise {
    fn is_per_image(&self) -> bool {
        *self == Normalise::PerImage
    }
}

/// Side of the raw images squeezebox's own models take.
pub const RAW_SIZE: usize = 32;
/// Colour channels of the raw images.
pub const RAW_CHANNELS: usize = 3;

/// Explicit padding `[top, left, bottom, right]`, as exporters write it;
/// a layer without one pads as TensorFlow's SAME.
pub type Pads = [usize; 4];

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn yes() -> bool {
    true
}

fn is_yes(v: &bool) -> bool {
    *v
}

/// One layer. Layers with learned values name them through [`Graph::params`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The preprocessed image, `[3, crop, crop]`.
    Input,
    /// 2-D convolution with SAME padding. `groups == in_channels` makes it
    /// depthwise; then `out` is `in * depth multiplier`.
    /// The usual stride, groups and bias go unwritten: every file carries
    /// its layer graph.
    Conv {
        out: usize,
        kernel: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        stride: usize,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        groups: usize,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pads: Option<Pads>,
    },
    /// Fully connected layer on a flat vector.
    Dense {
        out: usize,
        bias: bool,
    },
    /// Batch normalisation over channels, with running statistics.
    BatchNorm {
        eps: f32,
    },
    /// Layer normalisation over the channels of each position (Keras-style
    /// LayerNormalization on NHWC data).
    LayerNorm {
        eps: f32,
    },
    /// A learned per-channel multiplier (LayerScale).
    ChannelScale,
    /// Multiplication by a fixed constant.
    Scale {
        factor: f32,
    },
    Relu,
    /// GELU, exact (erf) form.
    Gelu,
    /// Clamps to `[min, max]`: ReLU6 is `Clip { min: 0, max: 6 }`.
    Clip {
        min: f32,
        max: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    /// `clamp(alpha * x + beta, 0, 1)`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// Max pooling; padded positions never win.
    MaxPool {
        kernel: usize,
        stride: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pads: Option<Pads>,
    },
    /// Average pooling; with `count_include_pad` padded zeros count in the
    /// mean (PyTorch's default), without it only the image's values do.
    AvgPool {
        kernel: usize,
        stride: usize,
        pads: Option<Pads>,
        count_include_pad: bool,
    },
    GlobalAvgPool,
    /// Local response normalisation across channels, in ONNX's convention:
    /// `x / (bias + alpha / size * sum(x^2 over size channels))^beta`.
    Lrn {
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    },
    /// Flattens `[C,H,W]` to `[C*H*W]`.
    Flatten,
    /// Channel concatenation.
    Concat,
    /// Element-wise sum (residual connection).
    Add,
    /// Element-wise product of two maps; a `[C,1,1]` map scales each
    /// channel of the other (squeeze-and-excitation).
    Mul,
    /// Dropout: active in training only, absent from the exported graph.
    Dropout {
        p: f32,
    },
}

/// A node: a named layer applied to earlier nodes' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(flatten)]
    pub op: Op,
    pub inputs: Vec<NodeId>,
}

/// The shape of one image's activation (no batch axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    Map { c: usize, h: usize, w: usize },
    Flat(usize),
}

impl Shape {
    pub fn channels(self) -> usize {
        match self {
            Shape::Map { c, .. } => c,
            Shape::Flat(f) => f,
        }
    }

    pub fn numel(self) -> usize {
        match self {
            Shape::Map { c, h, w } => c * h * w,
            Shape::Flat(f) => f,
        }
    }

    /// Spatial positions: `h*w` for a map, 1 for a vector.
    pub fn positions(self) -> usize {
        self.numel() / self.channels()
    }
}

/// What role a learned tensor plays; compression and the optimiser treat
/// roles differently (no pruning or weight decay of biases and norms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamRole {
    /// Convolution or dense kernel: prunable, decayed.
    Weight,
    Bias,
    /// Normalisation gain or LayerScale.
    NormScale,
    /// Normalisation shift.
    NormShift,
    /// Batch-norm running statistics: buffers, not learned, not counted.
    RunningMean,
    RunningVar,
}

impl ParamRole {
    /// Learned by gradient descent (running statistics are not).
    pub fn is_learned(self) -> bool {
        !matches!(self, ParamRole::RunningMean | ParamRole::RunningVar)
    }
}

/// A learned tensor of a node: `"{node}.{suffix}"`, with its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub node: NodeId,
    pub role: ParamRole,
    pub shape: Vec<usize>,
}

/// SAME padding along one axis: (before, after, output size).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2, out)
}

/// A sliding window's padding `[top, left, bottom, right]` and output
/// height and width over an `h` x `w` map: `pads` where given, else SAME.
/// `None` where the window does not fit the padded map.
pub fn window(
    pads: Option<Pads>,
    (h, w): (usize, usize),
    kernel: usize,
    stride: usize,
) -> Option<(Pads, usize, usize)> {
    if kernel == 0 || stride == 0 || h == 0 || w == 0 {
        return None;
    }
    match pads {
        None => {
            let (t, b, oh) = same_padding(h, kernel, stride);
            let (l, r, ow) = same_padding(w, kernel, stride);
            Some(([t, l, b, r], oh, ow))
        }
        Some([t, l, b, r]) => {
            let out = |size: usize, before: usize, after: usize| {
                // A pad as wide as the window would make outputs of padding alone.
                if before >= kernel || after >= kernel {
                    return None;
                }
                let padded = size.checked_add(before)?.checked_add(after)?;
                (padded >= kernel).then(|| (padded - kernel) / stride + 1)
            };
            Some(([t, l, b, r], out(h, t, b)?, out(w, l, r)?))
        }
    }
}

/// A network: architecture name, preprocessing and layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub arch: String,
    pub preprocess: Preprocess,
    pub nodes: Vec<Node>,
    /// The node whose output is the logits.
    pub output: NodeId,
}

impl Graph {
    /// Number of classes the graph predicts.
    pub fn classes(&self) -> Result<usize, ModelError> {
        Ok(self.shapes()?[self.output].channels())
    }

    /// The shape of every node's output, checking that each layer fits its
    /// inputs.
    pub fn shapes(&self) -> Result<Vec<Shape>, ModelError> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.nodes.len());
        let mut names = std::collections::HashSet::new();
        for (id, node) in self.nodes.iter().enumerate() {
            if !names.insert(node.name.as_str()) {
                return Err(ModelError::Graph(format!(
                    "two nodes are named '{}'",
                    node.name
                )));
            }
            shapes.push(self.shape_of(id, &shapes)?);
        }
        if self.output >= shapes.len() {
            return Err(ModelError::Graph(format!(
                "output node {} does not exist",
                self.output
            )));
        }
        Ok(shapes)
    }

    /// The shape of node `id`'s output, given the shapes of the nodes
    /// before it; checks that the layer fits its inputs.
    pub fn shape_of(&self, id: NodeId, shapes: &[Shape]) -> Result<Shape, ModelError> {
        let node = &self.nodes[id];
        let bad = |why: String| ModelError::Graph(format!("node {} ({}): {why}", id, node.name));
        if node.inputs.iter().any(|&i| i >= id) {
            return Err(bad("reads a later node".into()));
        }
        let ins: Vec<Shape> = node.inputs.iter().map(|&i| shapes[i]).collect();
        let want_inputs = match node.op {
            Op::Input if id == 0 => 0,
            Op::Input => return Err(bad("only node 0 may be the input".into())),
            Op::Concat | Op::Add => ins.len().max(2),
            Op::Mul => 2,
            _ => 1,
        };
        if ins.len() != want_inputs {
            return Err(bad(format!(
                "expects {want_inputs} inputs, has {}",
                ins.len()
            )));
        }
        let map = |s: Shape| match s {
            Shape::Map { c, h, w } => Ok((c, h, w)),
            Shape::Flat(_) => Err(bad("needs a feature map, got a vector".into())),
        };
        let shape = match node.op {
            Op::Input => {
                let (h, w) = self.preprocess.input_size();
                let sides = 1..=crate::onnx::MAX_SIDE;
                if !sides.contains(&h) || !sides.contains(&w) {
                    return Err(bad(format!("a {h}x{w} input is not a picture")));
                }
                Shape::Map {
                    c: RAW_CHANNELS,
                    h,
                    w,
                }
            }
            Op::Conv {
                out,
                kernel,
                stride,
                groups,
                pads,
                ..
            } => {
                let (c, h, w) = map(ins[0])?;
                let fits = groups != 0 && c % groups == 0 && out % groups == 0;
                match window(pads, (h, w), kernel, stride) {
                    Some((_, oh, ow)) if fits => Shape::Map {
                        c: out,
                        h: oh,
                        w: ow,
                    },
                    _ => {
                        return Err(bad(format!(
                        "conv {c}->{out} k{kernel} s{stride} g{groups} does not fit a {h}x{w} map"
                    )))
                    }
                }
            }
            Op::MaxPool {
                kernel,
                stride,
                pads,
            }
            | Op::AvgPool {
                kernel,
                stride,
                pads,
                ..
            } => {
                let (c, h, w) = map(ins[0])?;
                let Some((_, oh, ow)) = window(pads, (h, w), kernel, stride) else {
                    return Err(bad(format!(
                        "pool k{kernel} s{stride} does not fit a {h}x{w} map"
                    )));
                };
                Shape::Map { c, h: oh, w: ow }
            }
            Op::Dense { out, .. } => match ins[0] {
                Shape::Flat(_) => Shape::Flat(out),
                Shape::Map { .. } => return Err(bad("dense needs a flat vector".into())),
            },
            Op::GlobalAvgPool => {
                let (c, _, _) = map(ins[0])?;
                Shape::Map { c, h: 1, w: 1 }
            }
            Op::Flatten => Shape::Flat(ins[0].numel()),
            Op::Lrn { .. } => {
                map(ins[0])?;
                ins[0]
            }
            Op::Concat => {
                let (_, h, w) = map(ins[0])?;
                let mut c = 0;
                for s in &ins {
                    let (ci, hi, wi) = map(*s)?;
                    if (hi, wi) != (h, w) {
                        return Err(bad("concatenated maps differ in size".into()));
                    }
                    c += ci;
                }
                Shape::Map { c, h, w }
            }
            Op::Add => {
                if ins.iter().any(|s| *s != ins[0]) {
                    return Err(bad(format!("added shapes differ: {ins:?}")));
                }
                ins[0]
            }
            Op::Mul => {
                let (c, ..) = map(ins[0])?;
                let scale = Shape::Map { c, h: 1, w: 1 };
                match (ins[0], ins[1]) {
                    (a, b) if a == b || b == scale => a,
                    (a, b)
                        if a == Shape::Map {
                            c: b.channels(),
                            h: 1,
                            w: 1,
                        } =>
                    {
                        map(b)?;
                        b
                    }
                    _ => return Err(bad(format!("multiplied shapes differ: {ins:?}"))),
                }
            }
            Op::BatchNorm { .. }
            | Op::LayerNorm { .. }
            | Op::ChannelScale
            | Op::Scale { .. }
            | Op::Relu
            | Op::Gelu
            | Op::Clip { .. }
            | Op::LeakyRelu { .. }
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Dropout { .. } => ins[0],
        };
        Ok(shape)
    }

    /// Every tensor the graph stores, in node order.
    pub fn params(&self) -> Result<Vec<ParamSpec>, ModelError> {
        let shapes = self.shapes()?;
        Ok((0..self.nodes.len())
            .flat_map(|id| self.params_of(id, &shapes))
            .collect())
    }

    /// The tensors node `id` stores, given every node's shape up to it (an
    /// importer building the graph node by node asks this of each one).
    pub fn params_of(&self, id: NodeId, shapes: &[Shape]) -> Vec<ParamSpec> {
        let node = &self.nodes[id];
        let in_c = node
            .inputs
            .first()
            .map(|&i| shapes[i].channels())
            .unwrap_or(0);
        let mut out = Vec::new();
        let mut add = |suffix: &str, role: ParamRole, shape: Vec<usize>| {
            out.push(ParamSpec {
                name: format!("{}.{suffix}", node.name),
                node: id,
                role,
                shape,
            })
        };
        match node.op {
            Op::Conv {
                out: o,
                kernel,
                groups,
                bias,
                ..
            } => {
                add(
                    "weight",
                    ParamRole::Weight,
                    vec![o, in_c / groups, kernel, kernel],
                );
                if bias {
                    add("bias", ParamRole::Bias, vec![o]);
                }
            }
            Op::Dense { out: o, bias } => {
                add("weight", ParamRole::Weight, vec![o, in_c]);
                if bias {
                    add("bias", ParamRole::Bias, vec![o]);
                }
            }
            Op::BatchNorm { .. } => {
                add("weight", ParamRole::NormScale, vec![in_c]);
                add("bias", ParamRole::NormShift, vec![in_c]);
                add("running_mean", ParamRole::RunningMean, vec![in_c]);
                add("running_var", ParamRole::RunningVar, vec![in_c]);
            }
            Op::LayerNorm { .. } => {
                add("weight", ParamRole::NormScale, vec![in_c]);
                add("bias", ParamRole::NormShift, vec![in_c]);
            }
            Op::ChannelScale => add("weight", ParamRole::NormScale, vec![in_c]),
            _ => {}
        }
        out
    }

    /// The nodes that read each node's output.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                users[i].push(id);
            }
        }
        users
    }

    /// The graph as trained with batch norm: one between each convolution
    /// (and, with `dense`, each dense layer) and the activation that is its
    /// only reader, with the layer's bias dropped as redundant.
    /// Nets without batch norm train slowly from scratch; export folds these
    /// back ([`crate::fold::fold_batchnorm`]), so the deployed file has this
    /// graph's layers and parameter count.
    pub fn with_batchnorm(&self, dense: bool) -> Graph {
        let users = self.consumers();
        let mut nodes: Vec<Node> = Vec::with_capacity(2 * self.nodes.len());
        // Where each old node's value now comes from.
        let mut new_id: Vec<NodeId> = Vec::with_capacity(self.nodes.len());
        for (id, node) in self.nodes.iter().enumerate() {
            let mut node = node.clone();
            node.inputs = node.inputs.iter().map(|&i| new_id[i]).collect();
            let activated =
                matches!(users[id][..], [u] if matches!(self.nodes[u].op, Op::Relu | Op::Gelu));
            let normed = activated
                && match &mut node.op {
                    Op::Conv { bias, .. } => {
                        *bias = false;
                        true
                    }
                    Op::Dense { bias, .. } if dense => {
                        *bias = false;
                        true
                    }
                    _ => false,
                };
            let name = node.name.clone();
            nodes.push(node);
            if normed {
                nodes.push(Node {
                    name: format!("{name}.bn"),
                    op: Op::BatchNorm { eps: 1e-5 },
                    inputs: vec![nodes.len() - 1],
                });
            }
            new_id.push(nodes.len() - 1);
        }
        Graph {
            nodes,
            output: new_id[self.output],
            ..self.clone()
        }
    }

    /// The graph as JSON, as stored in an exported model's metadata.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a graph always serialises")
    }

    pub fn from_json(text: &str) -> Result<Graph, ModelError> {
        let graph: Graph = serde_json::from_str(text)
            .map_err(|e| ModelError::Graph(format!("layer graph metadata: {e}")))?;
        graph.shapes()?;
        Ok(graph)
    }
}

/// Builds a graph layer by layer; the zoo definitions are written with it.
pub struct GraphBuilder {
    graph: Graph,
}

impl GraphBuilder {
    pub fn new(arch: &str, crop: usize) -> Self {
        let input = Node {
            name: "input".into(),
            op: Op::Input,
            inputs: vec![],
        };
        GraphBuilder {
            graph: Graph {
                arch: arch.into(),
                preprocess: Preprocess::cifar(crop),
                nodes: vec![input],
                output: 0,
            },
        }
    }

    /// The preprocessed input image.
    pub fn input(&self) -> NodeId {
        0
    }

    /// Adds a layer reading `inputs`; returns its id.
    pub fn add(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> NodeId {
        self.graph.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
        });
        self.graph.nodes.len() - 1
    }

    /// A parameter-free layer, named after its producer.
    pub fn then(&mut self, op: Op, input: NodeId) -> NodeId {
        let kind = serde_json::to_value(&op)
            .ok()
            .and_then(|v| v["op"].as_str().map(String::from));
        let name = format!(
            "{}.{}",
            self.graph.nodes[input].name,
            kind.unwrap_or_default()
        );
        self.add(name, op, &[input])
    }

    pub fn conv(
        &mut self,
        name: &str,
        x: NodeId,
        out: usize,
        kernel: usize,
        stride: usize,
    ) -> NodeId {
        self.add(
            name,
            Op::Conv {
                out,
                kernel,
                stride,
                groups: 1,
                bias: true,
                pads: None,
            },
            &[x],
        )
    }

    /// Convolution followed by ReLU, the seed models' basic layer.
    pub fn conv_relu(
        &mut self,
        name: &str,
        x: NodeId,
        out: usize,
        kernel: usize,
        stride: usize,
    ) -> NodeId {
        let c = self.conv(name, x, out, kernel, stride);
        self.then(Op::Relu, c)
    }

    pub fn dense(&mut self, name: &str, x: NodeId, out: usize) -> NodeId {
        self.add(name, Op::Dense { out, bias: true }, &[x])
    }

    pub fn max_pool(&mut self, x: NodeId, kernel: usize, stride: usize) -> NodeId {
        self.then(
            Op::MaxPool {
                kernel,
                stride,
                pads: None,
            },
            x,
        )
    }

    /// Finishes the graph with `logits` as its output, checking its shapes.
    pub fn finish(mut self, logits: NodeId) -> Result<Graph, ModelError> {
        self.graph.output = logits;
        self.graph.shapes()?;
        Ok(self.graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 24 -> 12 with a 3x3/2 pool pads one row at the end only.
        assert_eq!(same_padding(24, 3, 2), (0, 1, 12));
        assert_eq!(same_padding(32, 3, 1), (1, 1, 32));
        assert_eq!(same_padding(32, 4, 1), (1, 2, 32));
        assert_eq!(same_padding(8, 2, 2), (0, 0, 4));
        assert_eq!(same_padding(5, 5, 1), (2, 2, 5));
    }

    #[test]
    fn training_batchnorm_goes_before_each_activation_and_keeps_shapes() {
        let graph = crate::zoo::arch("alex4").unwrap().graph();
        let trained = graph.with_batchnorm(true);
        let norms: Vec<&str> = trained
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::BatchNorm { .. }))
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(norms, ["conv1.bn", "conv2.bn", "fc1.bn", "fc2.bn"]);
        assert_eq!(trained.classes().unwrap(), 10);
        let biases = trained.params().unwrap();
        assert!(!biases
            .iter()
            .any(|p| p.name == "conv1.bias" || p.name == "fc1.bias"));
        assert!(biases.iter().any(|p| p.name == "logits.bias"));
        let conv_only = graph.with_batchnorm(false);
        assert_eq!(conv_only.nodes.len(), graph.nodes.len() + 2);
        // A layer that already has batch norm gets no second one.
        let allconv = crate::zoo::arch("allconv").unwrap().graph();
        let norms = |g: &Graph| {
            g.nodes
                .iter()
                .filter(|n| matches!(n.op, Op::BatchNorm { .. }))
                .count()
        };
        assert_eq!(norms(&allconv.with_batchnorm(false)), 7);
    }

    #[test]
    fn explicit_pads_give_pytorchs_sizes_and_a_pad_as_wide_as_the_window_is_refused() {
        assert_eq!(window(Some([1; 4]), (32, 32), 3, 2), Some(([1; 4], 16, 16)));
        assert_eq!(window(Some([0; 4]), (7, 9), 2, 2), Some(([0; 4], 3, 4)));
        assert_eq!(window(None, (24, 24), 3, 2), Some(([0, 0, 1, 1], 12, 12)));
        assert_eq!(window(Some([3, 0, 0, 0]), (8, 8), 3, 1), None);
        assert_eq!(window(Some([0; 4]), (2, 2), 3, 1), None);
        assert_eq!(window(None, (8, 8), 3, 0), None);
    }

    #[test]
    fn a_per_channel_product_scales_a_map_and_files_without_new_fields_still_read() {
        let mut b = GraphBuilder::new("se", 32);
        let x = b.conv("a", b.input(), 8, 3, 1);
        let pooled = b.then(Op::GlobalAvgPool, x);
        let gate = b.then(
            Op::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            pooled,
        );
        let scaled = b.add("scaled", Op::Mul, &[x, gate]);
        let graph = b.finish(scaled).unwrap();
        assert_eq!(
            graph.shapes().unwrap()[scaled],
            Shape::Map { c: 8, h: 32, w: 32 }
        );
        let json = graph.to_json();
        assert!(
            !json.contains("pads") && !json.contains("normalise"),
            "{json}"
        );
        // A layer graph written before sizes and pads existed.
        assert!(
            json.contains(r#""crop":32,"height":32,"width":32"#),
            "{json}"
        );
        let old = json.replace(r#","height":32,"width":32"#, "");
        assert_eq!(Graph::from_json(&old).unwrap(), graph);
    }

    #[test]
    fn shapes_reject_mismatched_add() {
        let mut b = GraphBuilder::new("bad", 32);
        let x = b.input();
        let a = b.conv("a", x, 8, 3, 1);
        let c = b.conv("c", x, 4, 3, 1);
        let s = b.add("sum", Op::Add, &[a, c]);
        assert!(b.finish(s).is_err());
    }
}
