//! squeezebox's own ops, swapped into tract's plans where tract's generic
//! ones are slow for the shapes of the zoo. Each gives tract's answers
//! (pooling exactly, LRN and convolution to within float rounding), as the
//! tests below check against tract's op on the same input.

mod avg_pool;
#[cfg(target_arch = "x86_64")]
mod conv;
#[cfg(target_arch = "x86_64")]
mod depthwise;
#[cfg(target_arch = "x86_64")]
mod dot;
#[cfg(target_arch = "x86_64")]
mod frame;
#[cfg(target_arch = "x86_64")]
mod joined;
mod lrn;
mod max_pool;
mod mean;
#[cfg(target_arch = "x86_64")]
mod patches;
mod phases;
mod pool_rows;
#[cfg(target_arch = "x86_64")]
mod qconv;
mod quantize;
mod softmax;
#[cfg(target_arch = "x86_64")]
mod sparse;
mod standardise;
#[cfg(target_arch = "x86_64")]
mod winograd;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::{BinMiniOp, TypedBinOp};
use tract_onnx::tract_core::ops::cnn::{MaxPool, OptMaxPool, OptSumPool, SumPool};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::Softmax;
use tract_onnx_opl::lrn::Lrn;

pub use avg_pool::PlaneAvgPool;
#[cfg(target_arch = "x86_64")]
pub use conv::PlaneConv;
#[cfg(target_arch = "x86_64")]
pub use depthwise::PlaneDepthwise;
#[cfg(target_arch = "x86_64")]
pub use joined::Joined;
pub use lrn::PlaneLrn;
pub use max_pool::PlaneMaxPool;
pub use mean::PlaneMean;
#[cfg(target_arch = "x86_64")]
pub use qconv::PlaneQConv;
pub use quantize::PlaneQuantize;
pub use softmax::PlaneSoftmax;
pub use standardise::PlaneStandardise;
#[cfg(target_arch = "x86_64")]
pub use x86_64::Activation;

/// `model`, its input of fact `input` (raw pixels of one batch size, or
/// a foreign model's float planes), typed, optimised and runnable, with
/// squeezebox's ops in place of tract's where they do the same faster.
pub(crate) fn runnable(
    model: InferenceModel,
    input: TypedFact,
) -> TractResult<Arc<TypedRunnableModel>> {
    let mut typed = model.with_input_fact(0, input.into())?.into_typed()?;
    swap_convs(&mut typed)?;
    let mut optimised = typed.into_optimized()?;
    swap_in(&mut optimised)?;
    optimised.into_runnable()
}

/// Replaces, in a typed model not yet optimised, each convolution that
/// [`PlaneConv`] or [`PlaneDepthwise`] (f32, with the ReLU after it, if
/// any) or [`PlaneQConv`] (int8) does, so that tract's optimiser never
/// lowers it to im2col and a matrix product. Its weights, bias and
/// quantization parameters must be constants.
#[cfg(target_arch = "x86_64")]
fn swap_convs(model: &mut TypedModel) -> TractResult<()> {
    use tract_onnx::tract_core::ops::cnn::Conv;
    model.compute_const_facts()?;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(conv) = node.op_as::<Conv>() else {
            continue;
        };
        let facts = model.node_input_facts(id)?;
        let Some(consts) = facts[1..]
            .iter()
            .map(|f| f.konst.clone())
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let dt = facts[0].datum_type;
        let shape: Option<Vec<usize>> = facts[0].shape.as_concrete().map(<[usize]>::to_vec);
        drop(facts);
        let (op, last): (Box<dyn TypedOp>, usize) = if conv.q_params.is_some() {
            match PlaneQConv::for_conv(conv, dt, &consts, shape.as_deref())? {
                Some(op) => (Box::new(op), id),
                None => continue,
            }
        } else {
            let (activation, last) =
                activation_after(model, node)?.unwrap_or((Activation::NONE, id));
            if let Some(op) = PlaneConv::for_conv(conv, dt, &consts, activation, shape.as_deref())?
            {
                (Box::new(op), last)
            } else if let Some(op) = PlaneDepthwise::for_conv(conv, dt, &consts, activation)? {
                (Box::new(op), last)
            } else {
                continue;
            }
        };
        let mut patch = TypedModelPatch::new("plane-conv");
        let input = patch.tap_model(model, node.inputs[0])?;
        let output = patch.wire_node(&node.name, op, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(last, 0), output)?;
        patch.apply(model)?;
    }
    join_concats::<PlaneConv>(model)?;
    join_concats::<PlaneQConv>(model)
}

/// Replaces each concat of convolutions `C` of one input along channels,
/// each read by the concat alone, with a [`Joined`] of them.
#[cfg(target_arch = "x86_64")]
fn join_concats<C: joined::Joinable>(model: &mut TypedModel) -> TractResult<()> {
    use tract_onnx::tract_core::ops::array::TypedConcat;
    for id in model.eval_order()? {
        let outputs = model.output_outlets()?;
        let node = model.node(id);
        let Some(concat) = node.op_as::<TypedConcat>() else {
            continue;
        };
        let Some(&first) = node.inputs.first() else {
            continue;
        };
        let source = model.node(first.node).inputs.first().copied();
        let joined_type = model.outlet_fact(OutletId::new(id, 0))?.datum_type;
        let joinable = |outlet: &OutletId| -> Option<C> {
            let producer = model.node(outlet.node);
            let conv = producer.op_as::<C>()?;
            let alone = producer.outputs[0].successors.len() == 1 && !outputs.contains(outlet);
            (alone
                && conv.channel_axis() == concat.axis
                && conv.output_type() == joined_type
                && producer.inputs.first() == source.as_ref())
            .then(|| conv.clone())
        };
        let convs: Option<Vec<C>> = node.inputs.iter().map(joinable).collect();
        let (Some(source), Some(convs)) = (source, convs) else {
            continue;
        };
        if !convs.iter().all(|conv| conv.reads_like(&convs[0])) {
            continue;
        }
        let mut patch = TypedModelPatch::new("plane-conv-concat");
        let input = patch.tap_model(model, source)?;
        let output = patch.wire_node(&node.name, Joined(convs), &[input])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), output)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// Elsewhere tract's own kernels (NEON on ARM boards) keep the convolutions.
#[cfg(not(target_arch = "x86_64"))]
fn swap_convs(_: &mut TypedModel) -> TractResult<()> {
    Ok(())
}

/// The activation that follows `node` and the last node of it, where
/// nothing else reads what comes between: ReLU (tract's Max with zero),
/// a clamp (ONNX's Clip: Max then Min by constants), or HardSwish (ONNX's
/// HardSigmoid, which tract spells Mul, Add, Min and Max by constants, then
/// a Mul by `node`'s output).
#[cfg(target_arch = "x86_64")]
fn activation_after(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(Activation, usize)>> {
    use tract_onnx::tract_core::ops::math::{Add, Max, Min, Mul};
    if let Some((max, lo)) = const_operand_after::<Max>(model, node)? {
        let Some(lo) = uniform(&lo) else {
            return Ok(None);
        };
        let clip = const_operand_after::<Min>(model, model.node(max))?;
        return Ok(Some(
            match clip.and_then(|(min, hi)| Some((min, uniform(&hi)?))) {
                Some((min, hi)) => (Activation::Clamp { lo, hi }, min),
                None => (
                    Activation::Clamp {
                        lo,
                        hi: f32::INFINITY,
                    },
                    max,
                ),
            },
        ));
    }
    // HardSwish: `node`'s output read by the scale and the last Mul alone.
    let out = OutletId::new(node.id, 0);
    let readers = &node.outputs[0].successors;
    if readers.len() != 2 || model.output_outlets()?.contains(&out) {
        return Ok(None);
    }
    let (first, second) = (readers[0].node, readers[1].node);
    for (scale, product) in [(first, second), (second, first)] {
        let Some((alpha, add)) = const_of::<Mul>(model, scale, out)? else {
            continue;
        };
        let Some((beta, min)) = next_const::<Add>(model, add)? else {
            continue;
        };
        let Some((one, max)) = next_const::<Min>(model, min)? else {
            continue;
        };
        let Some((zero, last)) = next_const::<Max>(model, max)? else {
            continue;
        };
        let gate = OutletId::new(max, 0);
        let product_node = model.node(product);
        let is_mul = product_node
            .op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<Mul>());
        let inputs = &product_node.inputs;
        let of_both = inputs.len() == 2 && inputs.contains(&out) && inputs.contains(&gate);
        if (one, zero) == (1.0, 0.0) && last == product && is_mul && of_both {
            return Ok(Some((Activation::HardSwish { alpha, beta }, product)));
        }
    }
    Ok(None)
}

/// The one value of a constant whose values are all the same f32.
#[cfg(target_arch = "x86_64")]
fn uniform(t: &Tensor) -> Option<f32> {
    let view = t.to_plain_array_view::<f32>().ok()?;
    let first = *view.iter().next()?;
    view.iter().all(|&v| v == first).then_some(first)
}

/// The uniform constant operand of `id`, a binary op `B` of `from` and a
/// constant, and the one node that reads it.
#[cfg(target_arch = "x86_64")]
fn const_of<B: BinMiniOp>(
    model: &TypedModel,
    id: usize,
    from: OutletId,
) -> TractResult<Option<(f32, usize)>> {
    let node = model.node(id);
    let is_b = node.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<B>());
    let other = node.inputs.iter().find(|&&i| i != from);
    let (true, 2, Some(&other)) = (is_b, node.inputs.len(), other) else {
        return Ok(None);
    };
    let value = model.outlet_fact(other)?.konst.as_deref().and_then(uniform);
    let next = model.single_succ(id)?.map(|n| n.id);
    let out = OutletId::new(id, 0);
    Ok(
        match (value, next, model.output_outlets()?.contains(&out)) {
            (Some(v), Some(next), false) => Some((v, next)),
            _ => None,
        },
    )
}

/// [`const_of`] for the node `id`, reading its one predecessor's output.
#[cfg(target_arch = "x86_64")]
fn next_const<B: BinMiniOp>(model: &TypedModel, id: usize) -> TractResult<Option<(f32, usize)>> {
    let node = model.node(id);
    let Some(&from) = node
        .inputs
        .iter()
        .find(|i| model.outlet_fact(**i).is_ok_and(|f| f.konst.is_none()))
    else {
        return Ok(None);
    };
    const_of::<B>(model, id, from)
}

/// The node and its constant operand, where `node`'s output is read only
/// by a binary op `B` (and is no graph output) whose other operand is a
/// constant: the pattern of a ReLU or a scale after a convolution or sum.
fn const_operand_after<B: BinMiniOp>(
    model: &TypedModel,
    node: &TypedNode,
) -> TractResult<Option<(usize, Arc<Tensor>)>> {
    let out = OutletId::new(node.id, 0);
    let (Some(next), false) = (
        model.single_succ(node.id)?,
        model.output_outlets()?.contains(&out),
    ) else {
        return Ok(None);
    };
    let is_b = next.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<B>());
    let other = next.inputs.iter().find(|&&i| i != out);
    Ok(match (is_b, next.inputs.len(), other) {
        (true, 2, Some(&outlet)) => model
            .outlet_fact(outlet)?
            .konst
            .clone()
            .map(|k| (next.id, k)),
        _ => None,
    })
}

/// Replaces, in an optimised model, every op a squeezebox op does faster.
/// Each replacement has the same inputs and output facts, so the graph
/// around it is untouched.
fn swap_in(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes().len() {
        if let Some(op) = faster(model, model.node(id))? {
            model.node_mut(id).op = op;
        }
    }
    join_means(model)
}

/// Replaces each sum over trailing axes whose only reader multiplies it by
/// a constant scalar (a global average pool) with a [`PlaneMean`].
fn join_means(model: &mut TypedModel) -> TractResult<()> {
    use tract_onnx::tract_core::ops::math::Mul;
    use tract_onnx::tract_core::ops::nn::Reduce;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(reduce) = node.op_as::<Reduce>() else {
            continue;
        };
        let Some((next, scale)) = const_operand_after::<Mul>(model, node)? else {
            continue;
        };
        if scale.len() != 1 || scale.datum_type() != f32::datum_type() {
            continue;
        }
        let fact = model.outlet_fact(node.inputs[0])?;
        let scale = *scale
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .first()
            .expect("one value");
        let Some(op) = PlaneMean::for_op(reduce, fact.datum_type, fact.rank(), scale) else {
            continue;
        };
        let mut patch = TypedModelPatch::new("plane-mean");
        let input = patch.tap_model(model, node.inputs[0])?;
        let output = patch.wire_node(&node.name, op, &[input])?[0];
        patch.shunt_outside(model, OutletId::new(next, 0), output)?;
        patch.apply(model)?;
    }
    Ok(())
}

/// The squeezebox op for `node`, if there is one for its op and types.
fn faster(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Box<dyn TypedOp>>> {
    let pool = (node.op_as::<OptMaxPool>())
        .map(|p| (&p.pool_spec, p.with_index_outputs))
        .or_else(|| (node.op_as::<MaxPool>()).map(|p| (&p.pool_spec, p.with_index_outputs)));
    if let Some((spec, None)) = pool {
        return Ok(PlaneMaxPool::for_spec(spec).map(|op| Box::new(op) as _));
    }
    let sum_pool = (node.op_as::<OptSumPool>())
        .map(|p| (&p.pool_spec, p.count_include_pad, p.normalize))
        .or_else(|| {
            (node.op_as::<SumPool>()).map(|p| (&p.pool_spec, p.count_include_pad, p.normalize))
        });
    if let Some((spec, include_pad, normalize)) = sum_pool {
        let dt = model.outlet_fact(node.inputs[0])?.datum_type;
        return Ok(
            PlaneAvgPool::for_op(spec, include_pad, normalize, dt).map(|op| Box::new(op) as _)
        );
    }
    if let Some(lrn) = node.op_as::<Lrn>() {
        let dt = model.outlet_fact(node.inputs[0])?.datum_type;
        return Ok(PlaneLrn::for_op(lrn, dt).map(|op| Box::new(op) as _));
    }
    if let Some(op) = node.op_as::<Softmax>() {
        let fact = model.outlet_fact(node.inputs[0])?;
        let row = (fact.shape.last()).and_then(|d| usize::try_from(d.as_i64()?).ok());
        let ours = PlaneSoftmax::for_op(op, fact.datum_type, fact.rank(), row);
        return Ok(ours.map(|op| Box::new(op) as _));
    }
    if let Some(op) = node.op_as::<ElementWiseOp>() {
        let input = model.outlet_fact(node.inputs[0])?.datum_type;
        let output = model.outlet_fact(OutletId::new(node.id, 0))?.datum_type;
        return Ok(PlaneQuantize::for_op(op, input, output).map(|op| Box::new(op) as _));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::internal::*;
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;
    use tract_onnx_opl::lrn::Lrn;

    #[cfg(target_arch = "x86_64")]
    use super::Activation;
    use super::{PlaneLrn, PlaneMaxPool, PlaneQuantize, PlaneSoftmax};

    /// Deterministic values in [-4, 4): the same every run.
    pub(super) fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut uniform = models::weights::uniform(seed);
        (0..len).map(|_| uniform() * 4.0).collect()
    }

    pub(super) fn run(op: &dyn TypedOp, input: &Tensor) -> Tensor {
        let outputs = op.eval_out_of_plan(tvec!(input.clone().into_tvalue()));
        outputs.unwrap().unwrap().remove(0).into_tensor()
    }

    fn spec(kernel: usize, stride: usize, padding: PaddingSpec, c: usize) -> PoolSpec {
        PoolSpec::new(
            DataFormat::NCHW,
            tvec![kernel, kernel],
            padding,
            None,
            Some(tvec![stride, stride]),
            c,
            c,
        )
    }

    #[test]
    fn max_pool_gives_tracts_values_for_every_padding_stride_and_type() {
        let explicit = |before: usize, after: usize| {
            PaddingSpec::Explicit(tvec![before, before], tvec![after, after])
        };
        let cases = [
            // The zoo's 3x3 stride-2 SAME pool, 24 -> 12 and 12 -> 6.
            (3, 2, explicit(0, 1), [1, 64, 24, 24]),
            (3, 2, PaddingSpec::SameUpper, [2, 5, 12, 12]),
            (2, 2, PaddingSpec::Valid, [1, 3, 8, 6]),
            (4, 4, PaddingSpec::Valid, [1, 2, 8, 8]),
            (3, 1, explicit(1, 1), [1, 2, 7, 5]),
            (3, 2, explicit(1, 1), [1, 2, 7, 7]),
            (3, 2, PaddingSpec::SameLower, [1, 2, 8, 8]),
            // Odd sizes, padding on one side only, windows past the edge.
            (3, 2, explicit(0, 2), [2, 3, 9, 7]),
            (
                2,
                3,
                PaddingSpec::ExplicitOnnxPool(tvec![1, 2], tvec![1, 2], true),
                [1, 2, 6, 7],
            ),
            // Rows at the registers' limits, then past them: with AVX2,
            // 32 f32 or 64 bytes in and 16 f32 or 64 bytes out; with
            // AVX-512, 64 f32 or 256 bytes in and 32 or 128 out.
            (3, 2, explicit(1, 1), [1, 2, 5, 32]),
            (3, 2, explicit(1, 1), [1, 1, 3, 33]),
            (3, 2, explicit(1, 1), [1, 1, 3, 64]),
            (2, 2, PaddingSpec::Valid, [1, 2, 4, 128]),
            (3, 1, explicit(1, 1), [1, 1, 3, 64]),
            (3, 2, explicit(0, 1), [1, 1, 3, 130]),
        ];
        for (i, (kernel, stride, padding, shape)) in cases.into_iter().enumerate() {
            let spec = spec(kernel, stride, padding, shape[1]);
            let ours = PlaneMaxPool::for_spec(&spec).expect("a 2-D NCHW pool");
            let tracts = MaxPool::new(spec.clone(), None);
            let len = shape.iter().product();
            let floats = values(len, i as u64);
            // Bytes spread over most of their range.
            let ints =
                |shift: f32| -> Vec<f32> { floats.iter().map(|v| v * 30.0 + shift).collect() };
            let bytes = Tensor::from_shape(&shape, &ints(128.0)).unwrap();
            let bytes = bytes.cast_to::<u8>().unwrap().into_owned();
            let signed = Tensor::from_shape(&shape, &ints(0.0)).unwrap();
            let signed = signed.cast_to::<i8>().unwrap().into_owned();
            let floats = Tensor::from_shape(&shape, &floats).unwrap();
            let quantized = {
                let mut t = bytes.clone();
                unsafe {
                    t.set_datum_type(u8::datum_type().quantize(QParams::ZpScale {
                        zero_point: 3,
                        scale: 0.1,
                    }))
                };
                t
            };
            for input in [floats, bytes, signed, quantized] {
                let expected = run(&tracts, &input);
                let every_way = ours.eval_every_way(&input).unwrap();
                for got in [run(&ours, &input)].into_iter().chain(every_way) {
                    assert_eq!(got.datum_type(), input.datum_type(), "case {i}");
                    assert_eq!(
                        got,
                        expected,
                        "case {i}: {spec:?} on {:?}",
                        input.datum_type()
                    );
                }
            }
        }
    }

    #[test]
    fn max_pool_leaves_dilated_and_channel_last_pools_to_tract() {
        let mut dilated = spec(3, 1, PaddingSpec::Valid, 4);
        dilated.dilations = Some(tvec![2, 2]);
        assert!(PlaneMaxPool::for_spec(&dilated).is_none());
        let mut nhwc = spec(3, 1, PaddingSpec::Valid, 4);
        nhwc.data_format = DataFormat::NHWC;
        assert!(PlaneMaxPool::for_spec(&nhwc).is_none());
    }

    /// Asserts that `got` is `expected` to within float rounding.
    pub(super) fn assert_close(got: &Tensor, expected: &Tensor, case: &str) {
        assert_eq!(got.shape(), expected.shape(), "{case}");
        let got = got.to_plain_array_view::<f32>().unwrap();
        let expected = expected.to_plain_array_view::<f32>().unwrap();
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{case}: {g} vs {e}"
            );
        }
    }

    /// Convolutions the zoo's kernels must do as tract does, with an input
    /// shape and whether a ReLU follows: squeeze1's (the first conv, a
    /// squeeze, both expands, the classifier), tuto's and alex4's 5x5 on a
    /// batch of two, then odd sizes and channel counts, uneven and one-sided
    /// padding, valid windows, positions that end in a narrower tile, and
    /// strides of 2 and 3.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn conv_cases() -> Vec<(Conv, [usize; 4], Activation)> {
        let same = |k: usize| PaddingSpec::Explicit(tvec![k / 2, k / 2], tvec![k / 2, k / 2]);
        let cases = [
            (3, 64, 3, [1, 3, 24, 24], same(3), true),
            (64, 32, 1, [1, 64, 12, 12], PaddingSpec::Valid, true),
            (32, 64, 3, [1, 32, 12, 12], same(3), true),
            (32, 128, 1, [1, 32, 6, 6], PaddingSpec::Valid, true),
            (32, 128, 3, [1, 32, 6, 6], same(3), true),
            (256, 10, 1, [1, 256, 6, 6], PaddingSpec::Valid, false),
            (64, 64, 5, [2, 64, 12, 12], same(5), true),
            // A batch with outputs not in whole panels; an unpadded 3x3.
            (16, 20, 3, [2, 16, 8, 10], same(3), false),
            (24, 7, 3, [1, 24, 10, 12], PaddingSpec::Valid, true),
            // Channels in whole vector pairs, positions in no whole tile.
            (16, 32, 3, [2, 16, 5, 7], same(3), false),
            // Even planes for Winograd: rows of more than one vector of
            // tiles, whole or not.
            (8, 16, 3, [1, 8, 20, 36], same(3), true),
            (16, 32, 3, [2, 16, 6, 6], same(3), false),
            (9, 4, 3, [2, 9, 6, 18], same(3), false),
            (5, 7, 3, [1, 5, 7, 9], PaddingSpec::SameUpper, false),
            (
                2,
                3,
                3,
                [2, 2, 5, 4],
                PaddingSpec::Explicit(tvec![0, 2], tvec![1, 0]),
                true,
            ),
            (4, 5, 3, [1, 4, 9, 6], PaddingSpec::Valid, false),
            (6, 12, 1, [1, 6, 4, 5], PaddingSpec::Valid, true),
            (3, 1, 1, [1, 3, 1, 1], PaddingSpec::Valid, false),
        ];
        // Strided windows, as imported nets downsample: a stem and a 1x1
        // shortcut at stride 2 (or 3), odd planes, one-sided padding,
        // stride 3.
        let strided = [
            (3, 16, 3, 2, [1, 3, 18, 18], same(3), true),
            (8, 16, 1, 2, [2, 8, 9, 7], PaddingSpec::Valid, false),
            (6, 12, 1, 2, [1, 6, 8, 10], PaddingSpec::SameUpper, true),
            (8, 16, 1, 3, [1, 8, 10, 11], PaddingSpec::Valid, false),
            (16, 24, 3, 2, [1, 16, 13, 10], same(3), false),
            (4, 6, 5, 3, [1, 4, 11, 14], PaddingSpec::SameUpper, true),
        ];
        let unit =
            cases.map(|(ci, co, k, shape, padding, relu)| (ci, co, k, 1, shape, padding, relu));
        (unit.into_iter().chain(strided))
            .enumerate()
            .map(|(i, (ci, co, k, stride, shape, padding, relu))| {
                let strides = Some(tvec![stride, stride]);
                let pool_spec = PoolSpec::new(
                    DataFormat::NCHW,
                    tvec![k, k],
                    padding,
                    None,
                    strides,
                    ci,
                    co,
                );
                let conv = Conv {
                    pool_spec,
                    kernel_fmt: KernelFormat::OIHW,
                    group: 1,
                    q_params: None,
                };
                (conv, shape, activation(i, relu))
            })
            .collect()
    }

    /// The activation of test case `i`, one that ReLU (`relu`) or nothing
    /// follows in the zoo: every third of each a clamp or HardSwish whose
    /// bounds the test values reach.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn activation(i: usize, relu: bool) -> Activation {
        match (relu, i % 3) {
            (true, 1) => Activation::Clamp { lo: 0.0, hi: 0.75 },
            (true, _) => Activation::RELU,
            (false, 2) => Activation::HardSwish {
                alpha: 1.0,
                beta: 0.5,
            },
            (false, _) => Activation::NONE,
        }
    }

    /// tract's values of the ops that `activation` stands for, on `v`.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn activated(activation: Activation, v: f32) -> f32 {
        match activation {
            Activation::Clamp { lo, hi } => v.clamp(lo, hi),
            Activation::HardSwish { alpha, beta } => v * (alpha * v + beta).clamp(0.0, 1.0),
        }
    }

    /// The kernel's shape, `[O, I, kh, kw]`.
    #[cfg(target_arch = "x86_64")]
    fn kernel_shape(conv: &Conv) -> [usize; 4] {
        let s = &conv.pool_spec;
        [
            s.output_channels,
            s.input_channels,
            s.kernel_shape[0],
            s.kernel_shape[1],
        ]
    }

    /// `values(len, seed)` with about `share` of them zero, as a pruned
    /// kernel has them.
    pub(super) fn pruned(len: usize, seed: u64, share: f32) -> Vec<f32> {
        let mut uniform = models::weights::uniform(seed + 1000);
        let keep = |v: f32| if uniform().abs() < share { 0.0 } else { v };
        values(len, seed).into_iter().map(keep).collect()
    }

    /// Case `i` of [`conv_cases`] with a kernel of `zeros` zeros: the
    /// input, the kernel and bias, and tract's output through the case's
    /// activation.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn f32_case(
        i: usize,
        (conv, shape, activation): &(Conv, [usize; 4], Activation),
        zeros: f32,
    ) -> (Tensor, [Arc<Tensor>; 2], Tensor) {
        let ks = kernel_shape(conv);
        let kernel =
            Tensor::from_shape(&ks, &pruned(ks.iter().product(), 20 + i as u64, zeros)).unwrap();
        // Every third bias is a scalar, broadcast to every channel.
        let bias = if i.is_multiple_of(3) {
            tensor0(0.5f32)
        } else {
            Tensor::from_shape(&[ks[0]], &values(ks[0], 40 + i as u64)).unwrap()
        };
        let input =
            Tensor::from_shape(shape, &values(shape.iter().product(), 60 + i as u64)).unwrap();
        let consts = [kernel, bias].map(|t| t.into_arc_tensor());
        let inputs = std::iter::once(input.clone().into_tvalue())
            .chain(consts.iter().map(|t| t.clone().into_tvalue()))
            .collect();
        let conv_out = conv.eval_out_of_plan(inputs).unwrap().unwrap().remove(0);
        let expected: Vec<f32> = (conv_out.to_plain_array_view::<f32>().unwrap())
            .iter()
            .map(|&v| activated(*activation, v))
            .collect();
        let expected = Tensor::from_shape(conv_out.shape(), &expected).unwrap();
        (input, consts, expected)
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn conv_matches_tracts_within_float_rounding() {
        use super::PlaneConv;
        for (i, case) in conv_cases().iter().enumerate() {
            let (conv, shape, activation) = case;
            let (input, consts, expected) = f32_case(i, case, 0.0);
            // Both layouts of the weights: the one for planes of unknown
            // size and the one for planes of this size; each on 512-bit
            // vectors where the CPU has them, and on 256-bit ones.
            let ops = [None, Some(&shape[..])].map(|shape| {
                PlaneConv::for_conv(conv, f32::datum_type(), &consts, *activation, shape)
                    .unwrap()
                    .expect("an f32 conv on an AVX2 machine")
            });
            let narrow = ops.clone().map(PlaneConv::narrow);
            let wide = is_x86_feature_detected!("avx512f");
            let panels = format!("{:?}", ops[0]).contains("panels");
            assert_eq!(format!("{:?}", ops[0]).contains("512-bit"), wide && panels);
            for ours in ops.iter().chain(&narrow) {
                assert_close(
                    &run(ours, &input),
                    &expected,
                    &format!("case {i}: {ours:?}"),
                );
            }
        }
    }

    /// int8 activations (u8 for odd cases) with zero points off the middle,
    /// per-channel kernel scales for every third case, and i8 or u8
    /// outputs: each within one step of tract's, where its fixed-point
    /// rounding differs from this float one.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn qconv_matches_tracts_within_one_step() {
        let dots: Vec<_> = super::dot::Dot::available().collect();
        if dots.is_empty() {
            eprintln!("no AVX2 on this CPU: tract keeps the int8 convolutions");
        }
        for dot in dots {
            qconv_with_dot_matches_tracts(dot);
        }
    }

    /// Case `i` of [`conv_cases`] in int8, with a kernel of `zeros`
    /// zeros: int8 activations (u8 for odd cases) with zero points off
    /// the middle, per-channel kernel scales for every third case, and i8
    /// or u8 outputs. The convolution, its input, its constants and
    /// tract's output.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn int8_case(
        i: usize,
        (conv, shape, _): &(Conv, [usize; 4], Activation),
        zeros: f32,
    ) -> (Conv, Tensor, [Arc<Tensor>; 8], Tensor) {
        let middle = |dt: DatumType| if dt == u8::datum_type() { 128 } else { 0 };
        // Integers spread over [-127, 127], or [1, 255] for u8.
        let ints = |v: Vec<f32>, dt: DatumType| {
            let shift = middle(dt);
            let v: Vec<i32> = v.iter().map(|v| (v * 31.9) as i32 + shift).collect();
            tensor1(&v).cast_to_dt(dt).unwrap().into_owned()
        };
        let (input_dt, output_dt) = match i % 2 {
            0 => (i8::datum_type(), u8::datum_type()),
            _ => (u8::datum_type(), i8::datum_type()),
        };
        let mut conv = conv.clone();
        conv.q_params = Some(output_dt);
        let ks = kernel_shape(&conv);
        let taps: usize = ks[1..].iter().product();
        let weights = pruned(ks.iter().product(), 20 + i as u64, zeros);
        let kernel = ints(weights, i8::datum_type()).into_shape(&ks).unwrap();
        let bias: Vec<i32> = values(ks[0], 40 + i as u64)
            .iter()
            .map(|v| (v * 2000.0) as i32)
            .collect();
        let bias = tensor1(&bias);
        let input = ints(values(shape.iter().product(), 60 + i as u64), input_dt)
            .into_shape(shape)
            .unwrap();
        let k_scale = if i.is_multiple_of(3) {
            let scales: Vec<f32> = values(ks[0], 80 + i as u64)
                .iter()
                .map(|v| 0.01 + v.abs() * 0.003)
                .collect();
            tensor1(&scales)
        } else {
            tensor0(0.01f32)
        };
        // Products have a spread of about 5,300 * sqrt(taps): outputs
        // spread over some 50 steps either side of their zero point.
        let y_scale = 0.05 * 0.01 * 100.0 * (taps as f32 * (1.0 - zeros)).sqrt();
        let consts = [
            kernel,
            bias,
            tensor0(i as i32 % 5 - 2 + middle(input_dt)),
            tensor0(0.05f32),
            tensor0(0i32),
            k_scale,
            tensor0(i as i32 % 7 - 3 + middle(output_dt)),
            tensor0(y_scale),
        ]
        .map(|t| t.into_arc_tensor());
        let inputs = std::iter::once(input.clone().into_tvalue())
            .chain(consts.iter().map(|t| t.clone().into_tvalue()))
            .collect();
        let expected = conv.eval_out_of_plan(inputs).unwrap().unwrap().remove(0);
        (conv, input, consts, expected.into_tensor())
    }

    /// Asserts that `got`, int8 outputs, is `expected` (tract's) to within
    /// one step, where tract's fixed-point rounding differs from the float
    /// one, and that few outputs are clamped.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn assert_within_one_step(got: &Tensor, expected: &Tensor, case: &str) {
        assert_eq!(got.shape(), expected.shape(), "{case}");
        assert_eq!(got.datum_type(), expected.datum_type(), "{case}");
        let as_i32 = |t: &Tensor| -> Vec<i32> {
            let t = t.cast_to::<i32>().unwrap();
            t.to_plain_array_view::<i32>()
                .unwrap()
                .iter()
                .copied()
                .collect()
        };
        let (got, expected_ints) = (as_i32(got), as_i32(expected));
        for (g, e) in got.iter().zip(&expected_ints) {
            assert!((g - e).abs() <= 1, "{case}: {g} vs {e}");
        }
        let (lo, hi) = if expected.datum_type().unquantized() == i8::datum_type() {
            (-128, 127)
        } else {
            (0, 255)
        };
        let clamped = (expected_ints.iter())
            .filter(|&&e| e == lo || e == hi)
            .count();
        assert!(
            clamped * 4 <= expected_ints.len(),
            "{case}: {clamped} outputs clamped"
        );
    }

    #[cfg(target_arch = "x86_64")]
    fn qconv_with_dot_matches_tracts(dot: super::dot::Dot) {
        use super::PlaneQConv;
        let mut winograds = 0;
        for (i, case) in conv_cases().iter().enumerate() {
            let shape = case.1;
            let (conv, input, consts, expected) = int8_case(i, case, 0.0);
            let input_dt = input.datum_type();
            // Both layouts of the weights: the one for planes of unknown
            // size and the one for planes of this size (Winograd's, where
            // it pays, which must give the other's outputs exactly).
            let [direct, sized] = [None, Some(&shape[..])].map(|shape| {
                PlaneQConv::with_dot(
                    &conv,
                    input_dt,
                    &consts,
                    shape,
                    dot,
                    super::sparse::Densest::for_int8(dot),
                )
                .unwrap()
                .expect("an int8 conv")
            });
            let got = run(&direct, &input);
            assert_within_one_step(&got, &expected, &format!("case {i}, {dot:?}"));
            assert_eq!(run(&sized, &input), got, "case {i}: {sized:?}");
            winograds += format!("{sized:?}").contains("winograd") as usize;
        }
        // squeeze1's 12x12 and 6x6 expands, the batches of 8x10 and 6x6
        // planes, the two planes of more than one vector of tiles (one of an
        // odd number of channels).
        let expected = if dot == super::dot::Dot::Avx2 { 6 } else { 0 };
        assert_eq!(winograds, expected, "{dot:?}: Winograd layouts");
    }

    /// A fire module's expands (1x1 and 3x3, on 12x12 and 6x6 planes, a
    /// batch of two), joined, give each one's own output in its channels,
    /// bit for bit, in f32 and in int8.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn joined_convs_give_each_ones_outputs_in_its_channels() {
        use super::{PlaneConv, PlaneQConv};
        let expands = |q_params: Option<DatumType>| {
            [(1, 32), (3, 48)].map(|(k, co)| {
                let pad = tvec![k / 2, k / 2];
                let padding = PaddingSpec::Explicit(pad.clone(), pad);
                let pool_spec =
                    PoolSpec::new(DataFormat::NCHW, tvec![k, k], padding, None, None, 16, co);
                let kernel_fmt = KernelFormat::OIHW;
                let conv = Conv {
                    pool_spec,
                    kernel_fmt,
                    group: 1,
                    q_params,
                };
                (conv, [co, 16, k, k])
            })
        };
        for side in [12, 6] {
            let shape = [2, 16, side, side];
            let len = shape.iter().product();
            let f32_input = Tensor::from_shape(&shape, &values(len, 7)).unwrap();
            let f32_convs = expands(None).map(|(conv, ks)| {
                let kernel = Tensor::from_shape(&ks, &values(ks.iter().product(), ks[2] as u64));
                let bias = Tensor::from_shape(&[ks[0]], &values(ks[0], 9));
                let consts = [
                    kernel.unwrap().into_arc_tensor(),
                    bias.unwrap().into_arc_tensor(),
                ];
                PlaneConv::for_conv(
                    &conv,
                    f32::datum_type(),
                    &consts,
                    Activation::RELU,
                    Some(&shape),
                )
                .unwrap()
                .expect("an f32 conv on an AVX2 machine")
            });
            assert_joined(&f32_convs, &f32_input);

            let bytes: Vec<u8> = values(len, 8)
                .iter()
                .map(|v| (v * 31.9 + 128.0) as u8)
                .collect();
            let u8_input = Tensor::from_shape(&shape, &bytes).unwrap();
            let int8_convs = expands(Some(u8::datum_type())).map(|(conv, ks)| {
                let weights: Vec<i8> = (values(ks.iter().product(), ks[2] as u64).iter())
                    .map(|v| (v * 31.9) as i8)
                    .collect();
                let bias: Vec<i32> = values(ks[0], 9)
                    .iter()
                    .map(|v| (v * 2000.0) as i32)
                    .collect();
                let consts = [
                    Tensor::from_shape(&ks, &weights).unwrap(),
                    tensor1(&bias),
                    tensor0(130u8),
                    tensor0(0.05f32),
                    tensor0(0i8),
                    tensor0(0.01f32),
                    tensor0(3u8),
                    tensor0(0.5f32),
                ]
                .map(|t| t.into_arc_tensor());
                PlaneQConv::for_conv(&conv, u8::datum_type(), &consts, Some(&shape))
                    .unwrap()
                    .expect("an int8 conv on an AVX2 machine")
            });
            assert_joined(&int8_convs, &u8_input);
        }
    }

    /// `convs` joined give, image by image, each one's output in turn.
    #[cfg(target_arch = "x86_64")]
    fn assert_joined<C: super::joined::Joinable>(convs: &[C], input: &Tensor) {
        let images = input.shape()[0];
        let alone: Vec<Tensor> = convs.iter().map(|conv| run(conv, input)).collect();
        let mut expected = vec![];
        for image in 0..images {
            for out in &alone {
                let per_image = out.as_bytes().len() / images;
                expected.extend_from_slice(&out.as_bytes()[image * per_image..][..per_image]);
            }
        }
        let joined = run(&super::Joined(convs.to_vec()), input);
        let channels: usize = alone.iter().map(|out| out.shape()[1]).sum();
        assert_eq!(joined.shape()[1], channels, "{convs:?}");
        assert_eq!(joined.datum_type(), alone[0].datum_type());
        assert!(joined.as_bytes() == expected, "{convs:?}");
    }

    #[test]
    fn quantize_gives_tracts_bytes() {
        use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
        use tract_onnx::tract_core::ops::quant::QuantizeLinearI8;
        // Ties both ways, values past both ends of the range, and the
        // spread of a standardised image.
        let mut xs = vec![0.25, -0.25, 0.75, -0.75, 1.25, 40.0, -40.0, 0.0, -0.0];
        xs.extend(values(1000, 7));
        let input = Tensor::from_shape(&[xs.len()], &xs).unwrap();
        for (scale, zero_point) in [(2.0, 0), (10.0, -3), (0.5, 100)] {
            let tracts = ElementWiseOp(Box::new(QuantizeLinearI8 { scale, zero_point }), None);
            let output = i8::datum_type().quantize(QParams::ZpScale {
                zero_point: zero_point as i32,
                scale: 1.0 / scale,
            });
            let ours = PlaneQuantize::for_op(&tracts, f32::datum_type(), output).unwrap();
            let got = run(&ours, &input);
            assert_eq!(got.datum_type(), output);
            assert_eq!(
                got.as_bytes(),
                run(&tracts, &input).as_bytes(),
                "scale {scale}"
            );
        }
        let tracts = ElementWiseOp(
            Box::new(QuantizeLinearI8 {
                scale: 1.0,
                zero_point: 0,
            }),
            None,
        );
        assert!(PlaneQuantize::for_op(&tracts, i32::datum_type(), i8::datum_type()).is_none());
    }

    #[test]
    fn lrn_matches_tracts_within_float_rounding() {
        let cases = [
            // tuto's: size 9, beta 0.75 (the square-root path).
            (9, 0.001, 0.75, 1.0, [1, 64, 12, 12]),
            (5, 0.0001, 0.75, 2.0, [2, 7, 3, 5]),
            // Even sizes put the extra channel after; other betas use powf.
            (4, 0.5, 0.5, 1.0, [1, 6, 4, 4]),
            (1, 1.0, 1.3, 0.5, [3, 2, 5, 1]),
            (12, 0.01, 0.75, 1.0, [1, 3, 2, 2]),
        ];
        for (i, (size, alpha, beta, bias, shape)) in cases.into_iter().enumerate() {
            let tracts = Lrn {
                alpha,
                beta,
                bias,
                size,
            };
            let ours = PlaneLrn::for_op(&tracts, f32::datum_type()).unwrap();
            let input =
                Tensor::from_shape(&shape, &values(shape.iter().product(), 10 + i as u64)).unwrap();
            assert_close(
                &run(&ours, &input),
                &run(&tracts, &input),
                &format!("case {i}"),
            );
        }
        let op = Lrn {
            alpha: 0.1,
            beta: 0.75,
            bias: 1.0,
            size: 3,
        };
        assert!(PlaneLrn::for_op(&op, f16::datum_type()).is_none());
    }

    #[test]
    fn softmax_matches_tracts_within_float_rounding() {
        use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};
        for (i, shape) in [
            vec![1, 10],
            vec![3, 10],
            vec![2, 64],
            vec![4],
            vec![2, 3, 7],
        ]
        .into_iter()
        .enumerate()
        {
            let len = shape.iter().product();
            // Logits up to ±40, where exp overflows unless the max goes first.
            let xs: Vec<f32> = values(len, 80 + i as u64)
                .iter()
                .map(|v| v * 10.0)
                .collect();
            let input = Tensor::from_shape(&shape, &xs).unwrap();
            let tracts = Softmax::new(tvec![shape.len() - 1], None, SoftmaxKind::Softmax);
            let row = shape.last().copied();
            let ours = PlaneSoftmax::for_op(&tracts, f32::datum_type(), shape.len(), row).unwrap();
            assert_close(
                &run(&ours, &input),
                &run(&tracts, &input),
                &format!("{shape:?}"),
            );
        }
        let log = Softmax::new(tvec![1], None, SoftmaxKind::LogSoftmax);
        assert!(PlaneSoftmax::for_op(&log, f32::datum_type(), 2, Some(10)).is_none());
        let first = Softmax::new(tvec![0], None, SoftmaxKind::Softmax);
        assert!(PlaneSoftmax::for_op(&first, f32::datum_type(), 2, Some(10)).is_none());
        // An ImageNet classifier's rows stay tract's, as do rows of unknown
        // length.
        let last = Softmax::new(tvec![1], None, SoftmaxKind::Softmax);
        let long = Some(super::softmax::SHORT_ROW + 1);
        assert!(PlaneSoftmax::for_op(&last, f32::datum_type(), 2, long).is_none());
        assert!(PlaneSoftmax::for_op(&last, f32::datum_type(), 2, None).is_none());
    }
}
