//! Softmax over the last axis of f32 logits: each file's probabilities.
//! tract's op set up its vector kernels and its thread split on every call,
//! about 6 µs a run for squeeze1's ten values; this is a plain loop, for
//! short rows only.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

/// `exp(x - max) / sum(exp(x - max))` along the last axis of an f32 tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaneSoftmax;

/// The longest rows this op takes. Past a few dozen values tract's
/// vectorised exponential wins: over an ImageNet classifier's 1000 logits
/// this loop of scalar `exp` calls took 0.19 ms a picture.
pub const SHORT_ROW: usize = 64;

impl PlaneSoftmax {
    /// The replacement for `op` on an input of type `dt` and rank `rank`,
    /// whose last axis has `row` values (where known), if it is a plain
    /// softmax over that axis and the rows are short.
    pub fn for_op(
        op: &Softmax,
        dt: DatumType,
        rank: usize,
        row: Option<usize>,
    ) -> Option<PlaneSoftmax> {
        let last = rank.checked_sub(1)?;
        let plain = op.kind == SoftmaxKind::Softmax && op.quant_output_dt.is_none();
        let short = row.is_some_and(|n| n <= SHORT_ROW);
        (plain && short && dt == f32::datum_type() && *op.axes == [last]).then_some(PlaneSoftmax)
    }
}

impl Op for PlaneSoftmax {
    fn name(&self) -> StaticName {
        "PlaneSoftmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut output = args_1!(inputs).into_tensor();
        let row = output.shape().last().copied().unwrap_or(0);
        if row > 0 {
            let mut plain = output.try_as_plain_ram_mut()?;
            for xs in plain.as_slice_mut::<f32>()?.chunks_exact_mut(row) {
                let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for x in xs.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                let scale = sum.recip();
                xs.iter_mut().for_each(|x| *x *= scale);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PlaneSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}
