//! Quantization of f32 activations to int8 (ONNX `QuantizeLinear`), the
//! step from the int8 files' float preprocessing into their integer
//! graph. tract's op rounds each value through a scalar bit trick in a
//! closure; it took 5% of squeeze1.int8's time for 1,728 values. Here the
//! loop is plain and, on x86-64, compiled for AVX2, where rounding half to
//! even is one instruction.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::quant::QuantizeLinearI8;

/// `y = clamp(round_half_even(x * scale) + zero_point, -128, 127)`, as
/// tract's `QuantizeLinearI8` (whose `scale` is the reciprocal of ONNX's),
/// from f32 to `output`, i8 or its quantized form.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneQuantize {
    pub scale: f32,
    pub zero_point: i8,
    pub output: DatumType,
}

impl Eq for PlaneQuantize {}

impl PlaneQuantize {
    /// The replacement for `op` on inputs of type `input` giving `output`,
    /// if it is tract's f32 to int8 quantization.
    pub fn for_op(
        op: &ElementWiseOp,
        input: DatumType,
        output: DatumType,
    ) -> Option<PlaneQuantize> {
        let q = op.0.downcast_ref::<QuantizeLinearI8>()?;
        (input == f32::datum_type() && output.unquantized() == i8::datum_type()).then_some(
            PlaneQuantize {
                scale: q.scale,
                zero_point: q.zero_point,
                output,
            },
        )
    }

    fn quantize(&self, xs: &[f32], ys: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.quantize_avx2(xs, ys) };
        }
        self.quantize_each(xs, ys)
    }

    #[inline(always)]
    fn quantize_each(&self, xs: &[f32], ys: &mut [u8]) {
        let zero = self.zero_point as i32;
        for (y, &x) in ys.iter_mut().zip(xs) {
            let q = (x * self.scale).round_ties_even() as i32 + zero;
            *y = q.clamp(i8::MIN as i32, i8::MAX as i32) as i8 as u8;
        }
    }

    /// [`PlaneQuantize::quantize_each`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_avx2(&self, xs: &[f32], ys: &mut [u8]) {
        self.quantize_each(xs, ys)
    }
}

impl Op for PlaneQuantize {
    fn name(&self) -> StaticName {
        "PlaneQuantize".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneQuantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut output = unsafe { Tensor::uninitialized_dt(self.output, input.shape())? };
        let xs = input.try_as_plain_ram()?;
        self.quantize(xs.as_slice::<f32>()?, output.as_bytes_mut());
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PlaneQuantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.output.fact(inputs[0].shape.clone())))
    }

    as_op!();
}
