//! Global average pooling: the sums of whole planes, scaled. tract runs it
//! as a general reduction and a multiplication, two nodes that took about
//! 13 µs of a squeeze1 run for 360 values; this is one pass.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};

/// `scale` times the sum over the trailing `axes` of an f32 tensor, the
/// summed axes kept with size 1.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneMean {
    pub axes: usize,
    pub scale: f32,
}

impl Eq for PlaneMean {}

impl PlaneMean {
    /// The op for `reduce` on an f32 input of rank `rank`, then a product
    /// by `scale`, if it sums trailing axes.
    pub fn for_op(reduce: &Reduce, dt: DatumType, rank: usize, scale: f32) -> Option<PlaneMean> {
        let mut axes = reduce.axes.clone();
        axes.sort_unstable();
        let trailing = (rank.checked_sub(axes.len())?..rank).eq(axes.iter().copied());
        let sum = matches!(reduce.reducer, Reducer::Sum);
        (sum && trailing && !axes.is_empty() && dt == f32::datum_type()).then_some(PlaneMean {
            axes: axes.len(),
            scale,
        })
    }
}

impl Op for PlaneMean {
    fn name(&self) -> StaticName {
        "PlaneMean".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneMean {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = self.output_shape(input.shape())?;
        let mut output = Tensor::zero::<f32>(&shape)?;
        let plane: usize = input.shape()[shape.len() - self.axes..].iter().product();
        if plane > 0 {
            let src_plain = input.try_as_plain_ram()?;
            let mut dst_plain = output.try_as_plain_ram_mut()?;
            let planes = src_plain.as_slice::<f32>()?.chunks_exact(plane);
            for (y, xs) in dst_plain.as_slice_mut::<f32>()?.iter_mut().zip(planes) {
                *y = xs.iter().sum::<f32>() * self.scale;
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl PlaneMean {
    fn output_shape<D: DimLike>(&self, input: &[D]) -> TractResult<TVec<D>> {
        ensure!(
            input.len() >= self.axes,
            "{self:?} on a tensor of rank {}",
            input.len()
        );
        let mut shape: TVec<D> = input.into();
        let summed = shape.len() - self.axes;
        shape[summed..].iter_mut().for_each(|d| *d = D::from(1));
        Ok(shape)
    }
}

impl TypedOp for PlaneMean {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(self.output_shape(&inputs[0].shape)?)))
    }

    as_op!();
}
