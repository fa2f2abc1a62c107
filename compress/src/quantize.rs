//! Static int8 quantization: a calibrated model whose convolutions run on
//! integer kernels from the first convolution to the classifier.
//!
//! What the emitted graph does:
//! - the float preprocessing, then one `QuantizeLinear`;
//! - each convolution (and dense layer, as a 1x1 convolution) is a
//!   `QLinearConv` with symmetric int8 weights, one scale per output
//!   channel, an int32 bias, and a following ReLU folded into its output
//!   range (zero point at the bottom of the range);
//! - max-pooling, flattening and channel concatenation work directly on the
//!   8-bit tensors. Their inputs and outputs share one scale: a fire
//!   module's two expand branches are calibrated jointly (the range of the
//!   concatenation), so the concatenation is a plain `Concat`;
//! - what has no integer form here (global average pooling, LRN, LayerNorm,
//!   GELU, residual adds, the final classifier) computes in float, entered
//!   through one `DequantizeLinear` and left through one `QuantizeLinear`.
//!   The [`Report`] lists each such boundary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use half::f16;

use models::graph::{Graph, NodeId, Op};
use models::onnx::build::{
    f32_tensor, i32_tensor, i64_tensor, i8_tensor, int_attr, ints_attr, node, tensor,
};
use models::onnx::proto::{
    tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto,
};
use models::onnx::{read_weights, FrozenModel, Metadata, LOGITS};
use serde_json::json;

use crate::calibrate::{value_names, Calibration, Range};
use crate::code_stream::unnamed;
use crate::onnx_util::quantize_per_channel;
use crate::sparse_storage::{kernels_of, store_sparse_noted};
use crate::stages::{for_storage, then};
use crate::CompressError;

/// The metadata key holding the quantization parameters (JSON).
pub const QUANTIZATION_KEY: &str = "quantization";

/// The 8-bit type activations are stored in. Both hold the same 256 steps;
/// int8 is the default because tract's integer kernels take int8 (uint8
/// inputs cost an extra offsetting pass before every convolution), and
/// onnxruntime's x86 kernels compute int8 x int8 exactly where uint8 x int8
/// may saturate on CPUs without VNNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activations {
    /// uint8; after a ReLU the zero point is 0.
    U8,
    /// int8; after a ReLU the zero point is -128.
    I8,
}

impl Activations {
    fn data_type(self) -> DataType {
        match self {
            Activations::U8 => DataType::Uint8,
            Activations::I8 => DataType::Int8,
        }
    }

    fn offset(self) -> i32 {
        match self {
            Activations::U8 => 0,
            Activations::I8 => -128,
        }
    }
}

impl fmt::Display for Activations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activations::U8 => "uint8",
            Activations::I8 => "int8",
        })
    }
}

/// Settings of a static quantization.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub activations: Activations,
    /// One weight scale per output channel (else one per layer).
    pub per_channel: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            activations: Activations::I8,
            per_channel: true,
        }
    }
}

/// Scale and zero point of an 8-bit value: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// Parameters covering `range` (widened to include 0, which must be
    /// exact: convolutions pad with it).
    pub fn for_range(range: Range, activations: Activations) -> QParams {
        let lo = range.lo.min(0.0);
        let hi = range.hi.max(0.0);
        let scale = (hi - lo) / 255.0;
        let scale = if scale.is_normal() { scale } else { 1.0 };
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as i32;
        QParams {
            scale,
            zero_point: zero + activations.offset(),
        }
    }
}

/// A place where the quantized graph leaves or enters the integer domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// `QuantizeLinear` or `DequantizeLinear`.
    pub op: &'static str,
    /// The value converted.
    pub value: String,
    /// The layer that needs the conversion, and why.
    pub reason: String,
}

/// What the quantization did, for the command's output.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Layers computed on integers (convolutions and dense layers).
    pub integer_layers: Vec<String>,
    /// Layers kept in float, with why.
    pub float_layers: Vec<(String, String)>,
    pub boundaries: Vec<Boundary>,
}

/// A quantized model and what was done.
pub struct Quantized {
    pub proto: ModelProto,
    pub meta: Metadata,
    pub report: Report,
}

/// How a layer is computed in the quantized graph.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Float,
    /// A convolution or dense layer on integers; `relu` is the ReLU folded
    /// into its output.
    IntConv {
        relu: Option<NodeId>,
    },
    /// Max-pool, flatten, concat or dropout on 8-bit values.
    IntPass,
    /// A ReLU folded into the convolution before it.
    Folded,
}

/// Quantizes `model` with the activation ranges of `calib`.
pub fn quantize(
    model: &FrozenModel,
    calib: &Calibration,
    options: Options,
) -> Result<Quantized, CompressError> {
    let model = &for_storage(model, "int8")?;
    let graph = model.layer_graph()?;
    let weights = read_weights(&model.proto, &graph)?;
    let source = model
        .proto
        .graph
        .as_ref()
        .expect("decoded models have a graph");
    let names = value_names(&graph);
    let users = graph.consumers();
    let n = graph.nodes.len();

    // 1. Which layers run on integers.
    let mut role = vec![Role::Float; n];
    let mut int = vec![false; n];
    let mut report = Report::default();
    for (id, node) in graph.nodes.iter().enumerate() {
        let input_int = node.inputs.first().is_some_and(|&i| int[i]);
        match node.op {
            Op::Conv { .. } | Op::Dense { .. } if feeds_logits(&graph, &users, id) => {
                report.float_layers.push((
                    node.name.clone(),
                    "the classifier: logits stay float".into(),
                ));
            }
            Op::Conv { .. } | Op::Dense { .. } => {
                let relu = match users[id][..] {
                    [r] if graph.nodes[r].op == Op::Relu => Some(r),
                    _ => None,
                };
                role[id] = Role::IntConv { relu };
                int[id] = true;
                if let Some(r) = relu {
                    role[r] = Role::Folded;
                    int[r] = true;
                }
                report.integer_layers.push(node.name.clone());
            }
            _ if role[id] == Role::Folded => {}
            Op::MaxPool { .. } | Op::Flatten | Op::Dropout { .. } if input_int => {
                role[id] = Role::IntPass;
                int[id] = true;
            }
            Op::Concat if node.inputs.iter().all(|&i| int[i]) => {
                role[id] = Role::IntPass;
                int[id] = true;
            }
            Op::Input => {}
            ref op => {
                let any_int = node.inputs.iter().any(|&i| int[i]);
                let why = match op {
                    Op::GlobalAvgPool => "global average pooling has no integer op in ONNX",
                    Op::Lrn { .. } => "LRN has no integer form",
                    Op::LayerNorm { .. } => "LayerNorm has no integer form",
                    Op::Gelu => "GELU has no integer form",
                    Op::Add => "residual adds stay float",
                    Op::BatchNorm { .. } => "a batch norm not folded into a convolution",
                    Op::ChannelScale | Op::Scale { .. } => "scaling stays float",
                    Op::Relu if any_int => "its input is also read without the ReLU",
                    Op::Concat if any_int => "some inputs are float",
                    // Shape and pooling ops on float input just stay float.
                    _ => continue,
                };
                report.float_layers.push((node.name.clone(), why.into()));
            }
        }
    }

    // 2. Which 8-bit values must share parameters: a pool's or flatten's
    // output and its input, a concatenation and all its inputs.
    let value_node = |id: NodeId| -> NodeId {
        match role[id] {
            Role::IntConv { relu: Some(r) } => r,
            _ => id,
        }
    };
    let mut groups = UnionFind::new(n);
    for (id, node) in graph.nodes.iter().enumerate() {
        if role[id] == Role::IntPass {
            for &i in &node.inputs {
                groups.union(value_node(i), id);
            }
        }
    }
    let range_of = |id: NodeId| -> Result<Range, CompressError> {
        calib.ranges.get(&names[id]).copied().ok_or_else(|| {
            CompressError::Refused(format!("the calibration has no range for '{}'", names[id]))
        })
    };
    // A value that leaves the integer domain keeps its observed extremes
    // whatever the method: clipping the classifier's largest values would
    // clip the decision itself.
    let mut leaves = vec![false; n];
    leaves[graph.output] = true;
    for (id, node) in graph.nodes.iter().enumerate() {
        if role[id] == Role::Float {
            for &i in &node.inputs {
                leaves[i] = true;
            }
        }
    }
    let mut clip_free: HashSet<NodeId> = HashSet::new();
    for id in 0..n {
        if int[id] && leaves[id] {
            clip_free.insert(groups.find(value_node(id)));
        }
    }
    let mut group_range: HashMap<NodeId, Range> = HashMap::new();
    for id in 0..n {
        if int[id] && !matches!(role[id], Role::IntConv { relu: Some(_) }) {
            let r = if clip_free.contains(&groups.find(id)) {
                calib
                    .extremes
                    .get(&names[id])
                    .copied()
                    .map_or_else(|| range_of(id), Ok)?
            } else {
                range_of(id)?
            };
            let g = group_range.entry(groups.find(id)).or_insert(r);
            g.lo = g.lo.min(r.lo);
            g.hi = g.hi.max(r.hi);
        }
    }

    // 3. Emit the graph.
    let mut b = Builder {
        source,
        graph: &graph,
        names: &names,
        int: &int,
        role: &role,
        activations: options.activations,
        nodes: Vec::new(),
        initializers: Vec::new(),
        copied: HashSet::new(),
        converted: HashMap::new(),
        params: BTreeMap::new(),
        report: &mut report,
    };
    let params_of = |id: NodeId| -> QParams {
        QParams::for_range(
            group_range[&groups.find(value_node(id))],
            options.activations,
        )
    };
    for (id, node) in graph.nodes.iter().enumerate() {
        match role[id] {
            Role::Folded => {}
            Role::Float if id == 0 => {
                for pre in source
                    .node
                    .iter()
                    .filter(|p| p.name.as_deref().unwrap_or("").starts_with("pre."))
                {
                    b.copy_node(pre.clone());
                }
            }
            Role::Float => b.copy_layer(id, false)?,
            Role::IntPass => {
                let p = params_of(id);
                b.params.insert(b.out_name(id), p);
                b.copy_layer(id, true)?;
            }
            Role::IntConv { relu } => {
                let input = node.inputs[0];
                let x_params = if int[input] {
                    params_of(input)
                } else {
                    QParams::for_range(range_of(input)?, options.activations)
                };
                let x = b.as_int(input, x_params, &node.name)?;
                let y_params = params_of(id);
                let out = b.out_name(relu.unwrap_or(id));
                b.params.insert(out.clone(), y_params);
                b.qlinear_conv(id, &weights, &x, x_params, &out, options.per_channel)?;
            }
        }
    }
    // The logits leave the integer domain if they are still in it.
    let logits = if int[graph.output] {
        b.as_float(graph.output, "the model's output")?
    } else {
        b.out_name(graph.output)
    };
    debug_assert_eq!(logits, LOGITS);
    for softmax in source
        .node
        .iter()
        .filter(|p| p.name.as_deref() == Some("softmax"))
    {
        b.nodes.push(softmax.clone());
    }

    // `[scale, zero point]`, the scale as short as an f32 prints: small
    // files carry this for every 8-bit value.
    let values: serde_json::Map<String, serde_json::Value> = b
        .params
        .iter()
        .map(|(k, p)| {
            let scale: f64 = p.scale.to_string().parse().expect("an f32 prints a number");
            (k.clone(), json!([scale, p.zero_point]))
        })
        .collect();
    let (nodes, initializers) = (b.nodes, b.initializers);
    let mut proto = model.proto.clone();
    proto.graph = Some(GraphProto {
        node: nodes,
        initializer: initializers,
        value_info: vec![],
        ..source.clone()
    });

    let mut meta = model.meta.clone();
    meta.variant = then(&meta.variant, "int8");
    // The float model's figure; this file's is measured with `label-image --eval`.
    meta.test_accuracy = None;
    let float_names: Vec<&str> = report
        .float_layers
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    meta.compression.push(format!(
        "int8: static quantization, {} calibration on {} images; {} layers on int8 kernels \
         (weights symmetric int8 {}, activations {}), {} float layers ({}) behind {} quantize/dequantize boundaries; \
         activation scales in '{QUANTIZATION_KEY}'",
        calib.method,
        calib.images,
        report.integer_layers.len(),
        if options.per_channel { "per output channel" } else { "per layer" },
        options.activations,
        report.float_layers.len(),
        float_names.join(", "),
        report.boundaries.len(),
    ));
    let details = json!({
        "method": calib.method.to_string(),
        "calibration_images": calib.images,
        "weights": if options.per_channel { "int8 symmetric per output channel" } else { "int8 symmetric per layer" },
        "activations": options.activations.to_string(),
        "values": values,
        "float_layers": report.float_layers.iter().map(|(l, why)| json!({"layer": l, "why": why})).collect::<Vec<_>>(),
    });
    meta.extra
        .insert(QUANTIZATION_KEY.into(), details.to_string());
    let kernels = kernels_of(&proto);
    store_sparse_noted(&mut proto, &kernels, &mut meta, &graph);
    Ok(Quantized {
        proto,
        meta,
        report,
    })
}

/// Whether `id` computes the logits: its value reaches the output through
/// nothing but flattening, dropout and constant scaling.
fn feeds_logits(graph: &Graph, users: &[Vec<NodeId>], id: NodeId) -> bool {
    let mut at = id;
    loop {
        if at == graph.output {
            return true;
        }
        match users[at][..] {
            [next]
                if matches!(
                    graph.nodes[next].op,
                    Op::Flatten | Op::Dropout { .. } | Op::Scale { .. }
                ) =>
            {
                at = next
            }
            _ => return false,
        }
    }
}

/// The zero point of every int8 kernel.
const WEIGHT_ZERO: &str = "weight_zero_point";

/// Bytes a `Cast` node and its value's second name cost, about: a
/// narrower vector must save more.
const CAST_BYTES: usize = 32;

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind((0..n).collect())
    }

    fn find(&self, mut i: usize) -> usize {
        while self.0[i] != i {
            i = self.0[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.0[ra.max(rb)] = ra.min(rb);
    }
}

struct Builder<'a> {
    source: &'a GraphProto,
    graph: &'a Graph,
    /// Each layer's value name in the float model.
    names: &'a [String],
    int: &'a [bool],
    role: &'a [Role],
    activations: Activations,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Initializers already taken from the source.
    copied: HashSet<String>,
    /// Converted values: name in one domain -> name in the other.
    converted: HashMap<String, String>,
    /// The parameters of every 8-bit value, by name.
    params: BTreeMap<String, QParams>,
    report: &'a mut Report,
}

impl Builder<'_> {
    /// The name of layer `id`'s output in the new graph, in its own domain.
    fn out_name(&self, id: NodeId) -> String {
        let node = &self.graph.nodes[id];
        match (node.op.clone(), self.role[id]) {
            (Op::Dropout { .. }, _) if id != self.graph.output => self.out_name(node.inputs[0]),
            (_, Role::IntConv { relu: Some(r) }) => self.out_name(r),
            _ if id == self.graph.output && self.int[id] => format!("{LOGITS}.q"),
            _ => self.names[id].clone(),
        }
    }

    /// The float value of layer `id`, dequantizing it once if it is 8-bit.
    fn as_float(&mut self, id: NodeId, reader: &str) -> Result<String, CompressError> {
        let name = self.out_name(id);
        if !self.int[id] {
            return Ok(name);
        }
        if let Some(done) = self.converted.get(&name) {
            return Ok(done.clone());
        }
        let out = if id == self.graph.output {
            LOGITS.to_string()
        } else {
            format!("{name}.dq")
        };
        let (scale, zero) = self.param_inputs(&name)?;
        self.nodes.push(node(
            "DequantizeLinear",
            &out,
            vec![name.clone(), scale, zero],
            &out,
            vec![],
        ));
        self.report.boundaries.push(Boundary {
            op: "DequantizeLinear",
            value: name.clone(),
            reason: reader.into(),
        });
        self.converted.insert(name, out.clone());
        Ok(out)
    }

    /// The 8-bit value of layer `id`, quantizing it once with `params` if it
    /// is float.
    fn as_int(
        &mut self,
        id: NodeId,
        params: QParams,
        reader: &str,
    ) -> Result<String, CompressError> {
        let name = self.out_name(id);
        if self.int[id] {
            return Ok(name);
        }
        if let Some(done) = self.converted.get(&name) {
            return Ok(done.clone());
        }
        let out = format!("{name}.q");
        self.params.insert(out.clone(), params);
        let (scale, zero) = self.param_inputs(&out)?;
        self.nodes.push(node(
            "QuantizeLinear",
            &out,
            vec![name.clone(), scale, zero],
            &out,
            vec![],
        ));
        self.report.boundaries.push(Boundary {
            op: "QuantizeLinear",
            value: name.clone(),
            reason: reader.into(),
        });
        self.converted.insert(name, out.clone());
        Ok(out)
    }

    /// Scale and zero-point initializers of the 8-bit value `name`.
    fn param_inputs(&mut self, name: &str) -> Result<(String, String), CompressError> {
        let p = *self.params.get(name).ok_or_else(|| {
            CompressError::Refused(format!("no quantization parameters for '{name}'"))
        })?;
        let (scale, zero) = (format!("{name}.scale"), format!("{name}.zero_point"));
        if self.copied.insert(scale.clone()) {
            self.initializers.push(f32_tensor(&scale, &[], &[p.scale]));
            let raw = match self.activations {
                Activations::U8 => vec![p.zero_point as u8],
                Activations::I8 => vec![p.zero_point as i8 as u8],
            };
            self.initializers
                .push(tensor(&zero, &[], self.activations.data_type(), raw));
        }
        Ok((scale, zero))
    }

    /// Copies the source nodes of layer `id`, reading its inputs in the
    /// layer's domain (`int`), converting them where they are not.
    fn copy_layer(&mut self, id: NodeId, int: bool) -> Result<(), CompressError> {
        let layer = self.graph.nodes[id].name.clone();
        let prefix = format!("{layer}/");
        let sources: Vec<NodeProto> = self
            .source
            .node
            .iter()
            .filter(|p| {
                p.name
                    .as_deref()
                    .is_some_and(|n| n == layer || n.starts_with(&prefix))
            })
            .cloned()
            .collect();
        let inputs = self.graph.nodes[id].inputs.clone();
        for source in &sources {
            let mut copy = source.clone();
            for name in copy.input.iter_mut() {
                if let Some(&i) = inputs.iter().find(|&&i| &self.names[i] == name) {
                    *name = if int {
                        self.out_name(i)
                    } else {
                        let why = format!("{layer} ({})", op_name(&self.graph.nodes[id].op));
                        self.as_float(i, &why)?
                    };
                }
            }
            if int && id == self.graph.output {
                copy.output = vec![self.out_name(id)];
            }
            self.copy_node(copy);
        }
        Ok(())
    }

    /// Adds `copy`, with the source initializers it reads.
    fn copy_node(&mut self, copy: NodeProto) {
        for input in &copy.input {
            if let Some(init) = self
                .source
                .initializer
                .iter()
                .find(|t| t.name.as_deref() == Some(input.as_str()))
            {
                if self.copied.insert(input.clone()) {
                    self.initializers.push(init.clone());
                }
            }
        }
        self.nodes.push(copy);
    }

    /// Pushes float vector `name` of `dims`, as float16 cast to float at
    /// load where every value is a normal float16 (within 2^-11 of itself)
    /// and that takes fewer bytes. Returns the values the graph computes
    /// with.
    fn push_narrowed_floats(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Vec<f32> {
        let normal = |v: &f32| (f16::MIN_POSITIVE.to_f32()..=f16::MAX.to_f32()).contains(&v.abs());
        if 2 * values.len() <= CAST_BYTES || !values.iter().all(normal) {
            self.initializers.push(f32_tensor(name, dims, values));
            return values.to_vec();
        }
        let narrow: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let raw = narrow.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_cast(name, dims, DataType::Float16, raw, DataType::Float);
        narrow.iter().map(|v| v.to_f32()).collect()
    }

    /// Pushes int32 vector `name` of `dims`, as int16 cast to int32 at load
    /// where every value fits and that takes fewer bytes.
    fn push_narrowed_ints(&mut self, name: &str, dims: &[usize], values: &[i32]) {
        let fits = |v: &i32| i16::try_from(*v).is_ok();
        if 2 * values.len() <= CAST_BYTES || !values.iter().all(fits) {
            self.initializers.push(i32_tensor(name, dims, values));
            return;
        }
        let raw = values
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect();
        self.push_cast(name, dims, DataType::Int16, raw, DataType::Int32);
    }

    /// Pushes `raw` of the 16-bit `stored` as initializer `name/16`, and the
    /// node that casts it to `to` as value `name`.
    fn push_cast(
        &mut self,
        name: &str,
        dims: &[usize],
        stored: DataType,
        raw: Vec<u8>,
        to: DataType,
    ) {
        let narrow = format!("{name}/16");
        self.initializers.push(tensor(&narrow, dims, stored, raw));
        self.nodes.push(unnamed(node(
            "Cast",
            "",
            vec![narrow],
            name,
            vec![int_attr("to", to as i64)],
        )));
    }

    /// Emits layer `id` (a convolution or dense layer) as a `QLinearConv`
    /// reading `x`.
    #[allow(clippy::too_many_arguments)]
    fn qlinear_conv(
        &mut self,
        id: NodeId,
        weights: &models::Weights,
        x: &str,
        x_params: QParams,
        out: &str,
        per_channel: bool,
    ) -> Result<(), CompressError> {
        let layer = &self.graph.nodes[id];
        let name = layer.name.clone();
        let kernel = &weights[&format!("{name}.weight")];
        let channels = kernel.shape[0];
        let (q, scales) =
            quantize_per_channel(&kernel.data, if per_channel { channels } else { 1 });
        let (dense, dims) = match layer.op {
            Op::Dense { .. } => (true, vec![kernel.shape[0], kernel.shape[1], 1, 1]),
            _ => (false, kernel.shape.clone()),
        };
        let w = format!("{name}.weight");
        let w_scale = format!("{name}.weight_scale");
        // Symmetric: every kernel's zero point is the one int8 zero.
        let w_zero = WEIGHT_ZERO.to_string();
        self.initializers.push(i8_tensor(&w, &dims, &q));
        let scale_dims: Vec<usize> = if per_channel { vec![channels] } else { vec![] };
        // The bias is in units of the scales the graph computes with.
        let scales = self.push_narrowed_floats(&w_scale, &scale_dims, &scales);
        let scale_of = |c: usize| if per_channel { scales[c] } else { scales[0] };
        if self.copied.insert(w_zero.clone()) {
            self.initializers.push(i8_tensor(&w_zero, &[], &[0]));
        }
        let (x_scale, x_zero) = self.param_inputs(x)?;
        let (y_scale, y_zero) = self.param_inputs(out)?;
        let mut inputs = vec![
            x.to_string(),
            x_scale,
            x_zero,
            w,
            w_scale,
            w_zero,
            y_scale,
            y_zero,
        ];
        if let Some(bias) = weights.get(&format!("{name}.bias")) {
            let q: Vec<i32> = bias
                .data
                .iter()
                .enumerate()
                .map(|(c, &v)| {
                    (v as f64 / (x_params.scale as f64 * scale_of(c) as f64))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                })
                .collect();
            let b = format!("{name}.bias");
            self.push_narrowed_ints(&b, &[channels], &q);
            inputs.push(b);
        }
        if dense {
            // [N, F] -> [N, F, 1, 1] -> 1x1 QLinearConv -> [N, out].
            let shape = format!("{name}.map_shape");
            self.initializers
                .push(i64_tensor(&shape, &[4], &[0, -1, 1, 1]));
            let map = format!("{name}.input_map");
            self.nodes.push(node(
                "Reshape",
                &map,
                vec![x.to_string(), shape],
                &map,
                vec![],
            ));
            inputs[0] = map;
            let conv_out = format!("{name}.output_map");
            self.nodes.push(node(
                "QLinearConv",
                &name,
                inputs,
                &conv_out,
                vec![ints_attr("kernel_shape", &[1, 1])],
            ));
            self.nodes.push(node(
                "Flatten",
                &format!("{name}.flatten"),
                vec![conv_out],
                out,
                vec![int_attr("axis", 1)],
            ));
        } else {
            let conv = self
                .source
                .node
                .iter()
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str()) && p.op_type.as_deref() == Some("Conv")
                })
                .ok_or_else(|| {
                    CompressError::Refused(format!("no Conv node '{name}' in the model"))
                })?;
            self.nodes.push(node(
                "QLinearConv",
                &name,
                inputs,
                out,
                without_defaults(&conv.attribute),
            ));
        }
        Ok(())
    }
}

/// A convolution's attributes less those that say what ONNX assumes
/// anyway (`group` 1, unit `strides` and `dilations`, zero `pads`): a small
/// file spells each out at every convolution.
fn without_defaults(attributes: &[AttributeProto]) -> Vec<AttributeProto> {
    attributes
        .iter()
        .filter(|a| {
            let default = match a.name.as_deref() {
                Some("group") => a.i == Some(1),
                Some("strides" | "dilations") => a.ints.iter().all(|&v| v == 1),
                Some("pads") => a.ints.iter().all(|&v| v == 0),
                _ => false,
            };
            !default
        })
        .cloned()
        .collect()
}

fn op_name(op: &Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v["op"].as_str().map(String::from))
        .unwrap_or_default()
}
