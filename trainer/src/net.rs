//! A libtorch module interpreted from a [`models::Graph`], so that what is
//! trained is exactly what is exported: the same layers, the same SAME
//! padding, the same preprocessing.

use models::graph::{window, Normalise, Pads, Preprocess};
use models::{
    Graph, ModelError, NodeId, Op, ParamRole, ParamSpec, Shape, Tensor as Values, Weights,
};
use tch::{nn, Device, Kind, Tensor};

/// A graph bound to its parameters in a [`nn::VarStore`].
pub struct Net {
    graph: Graph,
    shapes: Vec<Shape>,
    /// [`Graph::params`], kept so that the optimiser and checkpoints can
    /// see each tensor's name and role.
    specs: Vec<ParamSpec>,
    /// The parameters of each node, in [`Graph::params`] order.
    params: Vec<Vec<Tensor>>,
}

impl Net {
    /// Creates the graph's parameters under `root`, freshly initialised:
    /// Kaiming-uniform kernels, zero biases, unit gains, and LayerScale at
    /// 1e-6 as in ConvNeXt.
    pub fn new(root: &nn::Path, graph: &Graph) -> Result<Net, ModelError> {
        let shapes = graph.shapes()?;
        let specs = graph.params()?;
        let mut params: Vec<Vec<Tensor>> = graph.nodes.iter().map(|_| Vec::new()).collect();
        for spec in &specs {
            let dims: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
            let (path, leaf) = match spec.name.rsplit_once('.') {
                Some((prefix, leaf)) => {
                    (prefix.split('.').fold(root.clone(), |p, s| p.sub(s)), leaf)
                }
                None => (root.clone(), spec.name.as_str()),
            };
            let tensor = match spec.role {
                ParamRole::Weight => path.var(leaf, &dims, nn::init::DEFAULT_KAIMING_UNIFORM),
                ParamRole::Bias | ParamRole::NormShift => path.zeros(leaf, &dims),
                ParamRole::NormScale if graph.nodes[spec.node].op == Op::ChannelScale => {
                    path.var(leaf, &dims, nn::Init::Const(1e-6))
                }
                ParamRole::NormScale => path.ones(leaf, &dims),
                ParamRole::RunningMean => path.zeros_no_train(leaf, &dims),
                ParamRole::RunningVar => path.ones_no_train(leaf, &dims),
            };
            params[spec.node].push(tensor);
        }
        Ok(Net {
            graph: graph.clone(),
            shapes,
            specs,
            params,
        })
    }

    /// Fresh parameters on `device`, in a store of their own.
    pub fn fresh(graph: &Graph, device: Device) -> Result<Net, ModelError> {
        // The net holds its own handles to the tensors; the store can go.
        Net::new(&nn::VarStore::new(device).root(), graph)
    }

    /// Fresh parameters drawn after seeding torch's RNG with `seed`, so that
    /// a training run starts from the same point each time.
    pub fn seeded(graph: &Graph, device: Device, seed: u64) -> Result<Net, ModelError> {
        tch::manual_seed(seed as i64);
        Net::fresh(graph, device)
    }

    /// Every parameter tensor (running statistics included) with its spec,
    /// in [`Graph::params`] order. The tensors share storage with the net.
    pub fn params(&self) -> impl Iterator<Item = (&ParamSpec, &Tensor)> {
        self.specs.iter().zip(self.params.iter().flatten())
    }

    /// Overwrites every parameter with `other`'s (same graph, any device).
    pub fn copy_from(&self, other: &Net) {
        tch::no_grad(|| {
            for ((_, dst), (_, src)) in self.params().zip(other.params()) {
                dst.shallow_clone().copy_(src);
            }
        });
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Logits for standardised `[N,3,crop,crop]` images. `train` enables
    /// dropout and batch statistics.
    pub fn forward_t(&self, input: &Tensor, train: bool) -> Tensor {
        self.forward_observed(input, train, &mut |_, _| {})
    }

    /// [`Net::forward_t`], showing `observe` every node's output as it is
    /// computed: what calibrating a layer needs to see of a net's insides.
    pub fn forward_observed(
        &self,
        input: &Tensor,
        train: bool,
        observe: &mut dyn FnMut(NodeId, &Tensor),
    ) -> Tensor {
        let mut values: Vec<Option<Tensor>> = Vec::with_capacity(self.graph.nodes.len());
        let users = self.graph.consumers();
        for (id, node) in self.graph.nodes.iter().enumerate() {
            let x = |i: usize| values[node.inputs[i]].as_ref().expect("inputs come first");
            let p = &self.params[id];
            let y = match node.op {
                Op::Input => input.shallow_clone(),
                Op::Conv {
                    kernel,
                    stride,
                    groups,
                    pads,
                    ..
                } => {
                    let (input, padding) =
                        self.pad(x(0), node.inputs[0], pads, kernel, stride, 0.0);
                    let s = stride as i64;
                    input.conv2d(&p[0], p.get(1), [s, s], padding, [1, 1], groups as i64)
                }
                Op::Dense { .. } => x(0).linear(&p[0], p.get(1)),
                Op::BatchNorm { eps } => Tensor::batch_norm(
                    x(0),
                    Some(&p[0]),
                    Some(&p[1]),
                    Some(&p[2]),
                    Some(&p[3]),
                    train,
                    0.1,
                    eps as f64,
                    false,
                ),
                Op::LayerNorm { eps } => {
                    let centred = x(0) - x(0).mean_dim(1, true, Kind::Float);
                    let var = (&centred * &centred).mean_dim(1, true, Kind::Float);
                    let shape = self.channel_view(node.inputs[0]);
                    centred / (var + eps as f64).sqrt() * p[0].view(&shape[..])
                        + p[1].view(&shape[..])
                }
                Op::ChannelScale => x(0) * p[0].view(&self.channel_view(node.inputs[0])[..]),
                Op::Scale { factor } => x(0) * factor as f64,
                Op::Relu => x(0).relu(),
                Op::Gelu => x(0).gelu("none"),
                Op::MaxPool {
                    kernel,
                    stride,
                    pads,
                } => {
                    let (input, padding) = self.pad(
                        x(0),
                        node.inputs[0],
                        pads,
                        kernel,
                        stride,
                        f64::NEG_INFINITY,
                    );
                    let (k, s) = (kernel as i64, stride as i64);
                    input.max_pool2d([k, k], [s, s], padding, [1, 1], false)
                }
                Op::AvgPool {
                    kernel,
                    stride,
                    pads,
                    count_include_pad,
                } => {
                    let (k, s) = (kernel as i64, stride as i64);
                    let mean = |t: &Tensor| {
                        let (padded, padding) =
                            self.pad(t, node.inputs[0], pads, kernel, stride, 0.0);
                        padded.avg_pool2d([k, k], [s, s], padding, false, true, None)
                    };
                    let sums = mean(x(0));
                    if count_include_pad {
                        sums
                    } else {
                        // Each window's share of image values, padding left out.
                        let size = x(0).size();
                        let ones =
                            Tensor::ones([1, 1, size[2], size[3]], (Kind::Float, x(0).device()));
                        sums / mean(&ones)
                    }
                }
                Op::Clip { min, max } => x(0).clamp(min as f64, max as f64),
                Op::LeakyRelu { alpha } => x(0).relu() - (-x(0)).relu() * alpha as f64,
                Op::Sigmoid => x(0).sigmoid(),
                Op::HardSigmoid { alpha, beta } => {
                    (x(0) * alpha as f64 + beta as f64).clamp(0.0, 1.0)
                }
                Op::HardSwish => x(0).hardswish(),
                Op::Mul => x(0) * x(1),
                Op::GlobalAvgPool => x(0).mean_dim(&[2i64, 3][..], true, Kind::Float),
                Op::Lrn {
                    size,
                    alpha,
                    beta,
                    bias,
                } => lrn(x(0), size, alpha, beta, bias),
                Op::Flatten => x(0).flatten(1, -1),
                Op::Concat => Tensor::cat(
                    &node
                        .inputs
                        .iter()
                        .map(|&i| values[i].as_ref().unwrap())
                        .collect::<Vec<_>>(),
                    1,
                ),
                Op::Add => node.inputs[1..]
                    .iter()
                    .fold(x(0).shallow_clone(), |acc, &i| {
                        acc + values[i].as_ref().unwrap()
                    }),
                Op::Dropout { p } => x(0).dropout(p as f64, train),
            };
            observe(id, &y);
            values.push(Some(y));
            // Free what no later node reads, to keep training memory low.
            for &i in &node.inputs {
                if users[i].iter().all(|&u| u <= id) && i != self.graph.output {
                    values[i] = None;
                }
            }
        }
        values[self.graph.output]
            .take()
            .expect("the output is computed")
    }

    /// Logits for raw `uint8 [N,height,width,3]` pixels of the model's
    /// size: the exported graph's preprocessing (centre crop,
    /// normalisation), then the net.
    pub fn forward_pixels(&self, pixels: &Tensor) -> Tensor {
        self.forward_t(&self.preprocess(pixels), false)
    }

    /// The exported graph's preprocessing of raw `uint8 [N,height,width,3]`
    /// pixels: centre crop, then normalisation.
    pub fn preprocess(&self, pixels: &Tensor) -> Tensor {
        let Preprocess { height, width, .. } = self.graph.preprocess;
        let (rows, cols) = self.graph.preprocess.input_size();
        let x = pixels
            .to_kind(Kind::Float)
            .permute([0, 3, 1, 2])
            .narrow(2, (height - rows) as i64 / 2, rows as i64)
            .narrow(3, (width - cols) as i64 / 2, cols as i64);
        normalise(&x, self.graph.preprocess.normalise)
    }

    /// The current parameter values, by name.
    pub fn weights(&self) -> Result<Weights, ModelError> {
        let mut out = Weights::new();
        for (spec, tensor) in self.params() {
            let data = Vec::<f32>::try_from(tensor.detach().to_kind(Kind::Float).flatten(0, -1))
                .map_err(|e| ModelError::Weights(format!("reading '{}': {e}", spec.name)))?;
            out.insert(spec.name.clone(), Values::new(spec.shape.clone(), data)?);
        }
        Ok(out)
    }

    /// Overwrites the parameters with `weights` (which must fit the graph).
    pub fn load_weights(&mut self, weights: &Weights) -> Result<(), ModelError> {
        models::weights::check(&self.graph, weights)?;
        tch::no_grad(|| {
            for (spec, tensor) in self.specs.iter().zip(self.params.iter_mut().flatten()) {
                let v = &weights[&spec.name];
                let shape: Vec<i64> = v.shape.iter().map(|&d| d as i64).collect();
                tensor.copy_(
                    &Tensor::from_slice(&v.data)
                        .view(&shape[..])
                        .to_device(tensor.device()),
                );
            }
        });
        Ok(())
    }

    /// A window op's padding over node `input`: `pads`, or else SAME.
    fn pads(&self, input: NodeId, pads: Option<Pads>, kernel: usize, stride: usize) -> Pads {
        let Shape::Map { h, w, .. } = self.shapes[input] else {
            unreachable!("shapes checked")
        };
        window(pads, (h, w), kernel, stride)
            .expect("shapes checked")
            .0
    }

    /// Pads `x` for a window op. libtorch pads only evenly and only with
    /// zeros, so asymmetric padding, or max-pool's `-inf`, is explicit.
    fn pad(
        &self,
        x: &Tensor,
        input: NodeId,
        pads: Option<Pads>,
        kernel: usize,
        stride: usize,
        fill: f64,
    ) -> (Tensor, [i64; 2]) {
        let [top, left, bottom, right] = self.pads(input, pads, kernel, stride);
        if top == bottom && left == right && fill == 0.0 {
            return (x.shallow_clone(), [top as i64, left as i64]);
        }
        let pads = [left as i64, right as i64, top as i64, bottom as i64];
        (x.pad(pads, "constant", fill), [0, 0])
    }

    /// View shape that broadcasts a per-channel vector over a node's output.
    fn channel_view(&self, node: NodeId) -> Vec<i64> {
        match self.shapes[node] {
            Shape::Map { c, .. } => vec![c as i64, 1, 1],
            Shape::Flat(f) => vec![f as i64],
        }
    }
}

/// The graph's normalisation of float `[N,3,H,W]` pixels on the 0-255 scale.
pub fn normalise(x: &Tensor, how: Normalise) -> Tensor {
    match how {
        Normalise::PerImage => standardise(x),
        Normalise::Channels { mean, std } => {
            let channel = |v: [f32; 3]| {
                Tensor::from_slice(&v)
                    .view([1, 3, 1, 1])
                    .to_device(x.device())
            };
            (x / 255.0 - channel(mean)) / channel(std)
        }
    }
}

/// TensorFlow's `per_image_standardization` on float `[N,C,H,W]`: zero
/// mean, unit variance, the deviation floored at `1/sqrt(C*H*W)`.
pub fn standardise(x: &Tensor) -> Tensor {
    let numel: i64 = x.size()[1..].iter().product();
    let centred = x - x.mean_dim(&[1i64, 2, 3][..], true, Kind::Float);
    let std = (&centred * &centred)
        .mean_dim(&[1i64, 2, 3][..], true, Kind::Float)
        .sqrt();
    centred / std.clamp_min(1.0 / (numel as f64).sqrt())
}

/// ONNX LRN: `x / (bias + alpha/size * sum of squares over size channels)^beta`.
fn lrn(x: &Tensor, size: usize, alpha: f32, beta: f32, bias: f32) -> Tensor {
    let size = size as i64;
    let squares = (x * x).unsqueeze(1);
    let padded = squares.constant_pad_nd([0, 0, 0, 0, (size - 1) / 2, size / 2]);
    let mean = padded
        .avg_pool3d([size, 1, 1], [1, 1, 1], [0, 0, 0], false, true, None::<i64>)
        .squeeze_dim(1);
    x / (mean * alpha as f64 + bias as f64).pow_tensor_scalar(beta as f64)
}
