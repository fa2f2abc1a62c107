//! Convolutions of one input whose outputs a concat joins along channels
//! (the two expands of a fire module): each writes its channels of the one
//! output, so that nothing copies them after. The f32 and int8
//! convolutions share the op; each knows how to run a list of itself.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::PoolSpec;

use super::patches::Geometry;

/// A convolution that writes its output channels into a part of a larger
/// output, after those of the convolutions before it.
pub trait Joinable: TypedOp + Clone + PartialEq + Eq {
    /// The op's name in profiles once joined.
    const JOINED: &'static str;

    /// Its input and output channels, kernel and padding.
    fn pool_spec(&self) -> &PoolSpec;

    /// The type of its outputs, which joined convolutions share.
    fn output_type(&self) -> DatumType;

    /// The geometry it runs at over an input of `shape`. Fails where its
    /// weights do not serve that shape.
    fn geometry(&self, shape: &[usize]) -> TractResult<Geometry>;

    /// Runs `convs`, all of `input`, into `output`, whose channels are
    /// theirs one after the other, image by image, as `layout` places them.
    fn convolve_into(
        convs: &[Self],
        layout: &Layout,
        input: &Tensor,
        output: &mut Tensor,
    ) -> TractResult<()>;

    /// Whether one reading of the input serves both `self` and `other`.
    fn reads_like(&self, _other: &Self) -> bool {
        true
    }

    /// The channels' axis: 1 of `[N, C, H, W]`, 0 of `[C, H, W]`.
    fn channel_axis(&self) -> usize {
        self.pool_spec().data_format.has_n() as usize
    }
}

/// Where joined convolutions read and write, for one input shape.
pub struct Layout {
    /// Each convolution's geometry.
    pub geometries: TVec<Geometry>,
    /// Output positions of a plane, the same for every convolution.
    pub positions: usize,
    /// Elements of one input image, `[C, H, W]`.
    pub image_in: usize,
    /// Elements of one output image: every convolution's channels.
    pub image_out: usize,
}

impl Layout {
    /// Fails where `convs` cannot share an input of `shape` and one output:
    /// they read it differently, or give planes of different sizes.
    pub fn new<C: Joinable>(convs: &[C], shape: &[usize]) -> TractResult<Layout> {
        let Some(first) = convs.first() else {
            bail!("no convolution to run");
        };
        let mut geometries = TVec::new();
        for conv in convs {
            ensure!(
                conv.reads_like(first),
                "{conv:?} reads its input unlike {first:?}"
            );
            geometries.push(conv.geometry(shape)?);
        }
        let positions = geometries[0].positions();
        ensure!(
            geometries.iter().all(|g| g.positions() == positions),
            "{convs:?} give planes of different sizes over {shape:?}"
        );
        let channels: usize = convs.iter().map(|c| c.pool_spec().output_channels).sum();
        Ok(Layout {
            geometries,
            positions,
            image_in: shape[first.channel_axis()..].iter().product(),
            image_out: channels * positions,
        })
    }
}

/// Runs `convs`, all of the same input and all giving the same planes and
/// type, into one tensor: their output channels one after the other.
pub fn convolve<C: Joinable>(convs: &[C], input: &Tensor) -> TractResult<Tensor> {
    let layout = Layout::new(convs, input.shape())?;
    let first = &convs[0];
    let mut shape = first
        .pool_spec()
        .output_shape(input.shape())?
        .shape
        .to_vec();
    shape[first.channel_axis()] = convs.iter().map(|c| c.pool_spec().output_channels).sum();
    let mut output = unsafe { Tensor::uninitialized_dt(first.output_type(), &shape)? };
    if output.len() > 0 {
        C::convolve_into(convs, &layout, input, &mut output)?;
    }
    Ok(output)
}

/// The output of `convs` of `inputs[0]`, joined along channels.
fn output_fact<C: Joinable>(convs: &[C], inputs: &[&TypedFact]) -> TractResult<TypedFact> {
    let Some(first) = convs.first() else {
        bail!("no convolution to run");
    };
    let mut joined = first.output_facts(inputs)?.remove(0);
    let c = first.channel_axis();
    for conv in &convs[1..] {
        let fact = conv.output_facts(inputs)?.remove(0);
        let mut shape = fact.shape.to_tvec();
        shape[c] = joined.shape[c].clone();
        ensure!(
            shape == joined.shape.to_tvec() && fact.datum_type == joined.datum_type,
            "{conv:?} gives {fact:?}, unlike {first:?}"
        );
        joined
            .shape
            .set(c, joined.shape[c].clone() + fact.shape[c].clone());
    }
    Ok(joined.without_value())
}

/// Convolutions of one input, joined along channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined<C>(pub Vec<C>);

impl<C: Joinable> Op for Joined<C> {
    fn name(&self) -> StaticName {
        C::JOINED.into()
    }

    /// Each convolution's notes, in order.
    fn info(&self) -> TractResult<Vec<String>> {
        let notes = self.0.iter().map(|conv| conv.info());
        Ok(notes.collect::<TractResult<Vec<_>>>()?.concat())
    }

    op_as_typed_op!();
}

impl<C: Joinable> EvalOp for Joined<C> {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        Ok(tvec!(convolve(&self.0, &input)?.into_tvalue()))
    }
}

impl<C: Joinable> TypedOp for Joined<C> {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(output_fact(&self.0, inputs)?))
    }

    as_op!();
}

/// tract's `EvalOp` for a convolution that runs alone, through
/// [`convolve`]; the three convolution ops share it.
macro_rules! eval_through_convolve {
    ($op:ty) => {
        impl EvalOp for $op {
            op_out_of_plan!();

            fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                let input = args_1!(inputs);
                let output = $crate::kernels::joined::convolve(std::slice::from_ref(self), &input)?;
                Ok(tvec!(output.into_tvalue()))
            }
        }
    };
}
pub(crate) use eval_through_convolve;
