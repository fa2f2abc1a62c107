//! ONNX's local response normalisation (tuto's LRN) over whole channel
//! planes. tract's own op indexed every tap through ndarray and raised every
//! element to `beta` with `powf`; it was 84% of tuto's time. Here each
//! channel's window of squares is summed plane by plane, in the same order,
//! so the sums are the same, and the common `beta = 0.75` is two square roots.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx_opl::lrn::Lrn;

/// `y = x / (bias + alpha / size * sum of x² over the channel window)^beta`
/// for f32 tensors of shape `[N, C, ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneLrn {
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
    pub size: usize,
}

impl Eq for PlaneLrn {}

impl PlaneLrn {
    /// The replacement for tract's op; other float types keep tract's.
    pub fn for_op(op: &Lrn, dt: DatumType) -> Option<PlaneLrn> {
        (dt == f32::datum_type() && op.size > 0).then_some(PlaneLrn {
            alpha: op.alpha,
            beta: op.beta,
            bias: op.bias,
            size: op.size,
        })
    }

    fn normalise(&self, image: &[f32], out: &mut [f32], channels: usize, squares: &mut [f32]) {
        let plane = image.len() / channels;
        for (s, &x) in squares.iter_mut().zip(image) {
            *s = x * x;
        }
        // The ONNX window: (size - 1) / 2 channels before, the rest after.
        let (before, after) = ((self.size - 1) / 2, (self.size - 1).div_ceil(2));
        let scale = self.alpha / self.size as f32;
        for c in 0..channels {
            let window = c.saturating_sub(before)..=(c + after).min(channels - 1);
            let out = &mut out[c * plane..][..plane];
            out.fill(0.0);
            for k in window {
                for (sum, &s) in out.iter_mut().zip(&squares[k * plane..][..plane]) {
                    *sum += s;
                }
            }
            let x = &image[c * plane..][..plane];
            if self.beta == 0.75 {
                for (y, &x) in out.iter_mut().zip(x) {
                    let d = self.bias + scale * *y;
                    let root = d.sqrt();
                    *y = x / (root * root.sqrt());
                }
            } else {
                for (y, &x) in out.iter_mut().zip(x) {
                    *y = x / (self.bias + scale * *y).powf(self.beta);
                }
            }
        }
    }
}

impl Op for PlaneLrn {
    fn name(&self) -> StaticName {
        "PlaneLrn".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneLrn {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        ensure!(
            shape.len() >= 2,
            "LRN needs a channel axis, got shape {shape:?}"
        );
        let channels = shape[1];
        let image_len = shape[1..].iter().product::<usize>();
        let mut output = unsafe { Tensor::uninitialized_dt(f32::datum_type(), shape)? };
        if image_len > 0 {
            let src_plain = input.try_as_plain_ram()?;
            let mut dst_plain = output.try_as_plain_ram_mut()?;
            let mut squares = vec![0f32; image_len];
            for (image, out) in src_plain
                .as_slice::<f32>()?
                .chunks_exact(image_len)
                .zip(dst_plain.as_slice_mut::<f32>()?.chunks_exact_mut(image_len))
            {
                self.normalise(image, out, channels, &mut squares);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PlaneLrn {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].clone()))
    }

    as_op!();
}
