//! 2-D f32 average (and sum) pooling over channel planes in passes over
//! whole rows, as [`PlaneMaxPool`](super::PlaneMaxPool) takes maxima (see
//! [`pool_rows`](super::pool_rows)): the sums down each output row's
//! windows, then across them, then each output scaled by its divisor.
//! tract's generic pool visits each output position and sums it channel by
//! channel, a plane apart in memory; imported MobileNet-style nets pool
//! their largest planes this way.

use std::ops::Range;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::pool_rows::{fold, spans, Columns};

/// Average pooling of `[N, C, H, W]` (or `[C, H, W]`) f32 tensors, any
/// kernel, stride and padding, no dilation; tract's `SumPool`, whose
/// divisor is the window's taps in the image or, with `count_include_pad`,
/// in the padded image too. Without `normalize`, the sums.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlaneAvgPool {
    pub pool_spec: PoolSpec,
    pub count_include_pad: bool,
    pub normalize: bool,
}

impl PlaneAvgPool {
    /// The replacement for a sum pool with these settings over `input`, if
    /// it is one this op does.
    pub fn for_op(
        pool_spec: &PoolSpec,
        count_include_pad: bool,
        normalize: bool,
        input: DatumType,
    ) -> Option<PlaneAvgPool> {
        let planar = matches!(pool_spec.data_format, DataFormat::NCHW | DataFormat::CHW);
        let undilated = pool_spec.dilations().iter().all(|&d| d == 1);
        let f32s = input == f32::datum_type();
        (planar && undilated && f32s && pool_spec.rank() == 2).then(|| PlaneAvgPool {
            pool_spec: pool_spec.clone(),
            count_include_pad,
            normalize,
        })
    }

    /// The divisor of each output along `axis`: the window's taps in the
    /// image, or with `count_include_pad` the kernel's, less what ONNX's
    /// ceil mode lets the last window run past the padding (as tract
    /// counts them).
    fn divisors(&self, axis: usize, size: usize, in_image: &[Range<usize>]) -> Vec<usize> {
        if !self.count_include_pad {
            return in_image.iter().map(|r| r.len()).collect();
        }
        let spec = &self.pool_spec;
        let (kernel, stride) = (spec.kernel_shape[axis], spec.strides()[axis]);
        let padded_len = match &spec.padding {
            PaddingSpec::ExplicitOnnxPool(before, after, true) => before[axis] + size + after[axis],
            _ => usize::MAX,
        };
        (0..in_image.len())
            .map(|o| (0..kernel).filter(|k| o * stride + k < padded_len).count())
            .collect()
    }
}

/// Where the outputs of one plane read, and what each is divided by.
struct Window {
    rows: Vec<Range<usize>>,
    /// How an output row sums a row of sums across.
    across: Columns,
    /// One per output, row by row: the reciprocal of its divisor, or 1.
    scales: Vec<f32>,
}

impl Window {
    /// Pools each `(plane, out)` of `planes`, output row by output row:
    /// the sums down the row's windows into a padded row, then across (see
    /// [`Columns::fold`]), then each output scaled.
    #[inline(always)]
    fn pool_each<'a>(
        &self,
        planes: impl Iterator<Item = (&'a [f32], &'a mut [f32])>,
        [padded, phased]: &mut [Vec<f32>; 2],
    ) {
        let w = self.across.interior(padded).len();
        let add = |a: f32, b: f32| a + b;
        for (plane, out) in planes {
            let rows = (out.chunks_exact_mut(self.across.outputs))
                .zip(self.scales.chunks_exact(self.across.outputs))
                .zip(&self.rows);
            for ((out_row, scales), rows) in rows {
                let down = self.across.interior(padded);
                match rows.len() {
                    0 => down.fill(0.0),
                    n => fold(down, &plane[rows.start * w..], (0..n).map(|k| k * w), add),
                }
                self.across.fold(padded, phased, out_row, add);
                for (o, &scale) in out_row.iter_mut().zip(scales) {
                    *o *= scale;
                }
            }
        }
    }

    /// [`Window::pool_each`] compiled for AVX2: eight sums per add.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn pool_each_avx2<'a>(
        &self,
        planes: impl Iterator<Item = (&'a [f32], &'a mut [f32])>,
        scratch: &mut [Vec<f32>; 2],
    ) {
        self.pool_each(planes, scratch)
    }
}

impl Op for PlaneAvgPool {
    fn name(&self) -> StaticName {
        "PlaneAvgPool".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneAvgPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let spec = &self.pool_spec;
        let shape = spec.data_format.shape(input.shape())?;
        let (h, w) = (shape.hw_dims()[0], shape.hw_dims()[1]);
        let padding = spec.computed_padding(shape.hw_dims());
        let (kernel, stride) = (&spec.kernel_shape, spec.strides());
        let along = |axis: usize, size: usize| {
            let p = &padding[axis];
            spans(p.convoluted, stride[axis], kernel[axis], p.pad_before, size)
        };
        let (rows, columns) = (along(0, h), along(1, w));
        let (row_divisors, column_divisors) =
            (self.divisors(0, h, &rows), self.divisors(1, w, &columns));
        let scales = (row_divisors.iter())
            .flat_map(|&r| column_divisors.iter().map(move |&c| r * c))
            .map(|d| {
                if self.normalize {
                    (d as f32).recip()
                } else {
                    1.0
                }
            })
            .collect();
        let window = Window {
            across: Columns::new(
                padding[1].pad_before,
                w,
                kernel[1],
                stride[1],
                columns.len(),
            ),
            rows,
            scales,
        };
        let output_shape = spec.output_shape(input.shape())?.shape.to_vec();
        let mut output = unsafe { Tensor::uninitialized_dt(f32::datum_type(), &output_shape)? };
        let out_len = window.scales.len();
        if out_len > 0 && w > 0 && h > 0 {
            let src_plain = input.try_as_plain_ram()?;
            let src = src_plain.as_slice::<f32>()?;
            let mut dst_plain = output.try_as_plain_ram_mut()?;
            let dst = dst_plain.as_slice_mut::<f32>()?;
            let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(out_len));
            let mut scratch = [window.across.padded_row(0.0), Vec::new()];
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                unsafe { window.pool_each_avx2(planes, &mut scratch) };
                return Ok(tvec!(output.into_tvalue()));
            }
            window.pool_each(planes, &mut scratch);
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PlaneAvgPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::internal::*;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec, SumPool};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    use super::PlaneAvgPool;
    use crate::kernels::tests::{assert_close, run, values};

    /// Every padding, stride, divisor and normalisation gives tract's
    /// values: MobileNet's 2x2 at stride 2, a global 7x7, 3x3 windows over
    /// padding counted and not, ONNX's ceil mode, windows wider than tall,
    /// plain sums.
    #[test]
    fn avg_pool_gives_tracts_values_for_every_padding_stride_and_divisor() {
        let pad = |b: [usize; 2], a: [usize; 2]| {
            PaddingSpec::Explicit(b.to_vec().into(), a.to_vec().into())
        };
        let ceil = PaddingSpec::ExplicitOnnxPool(tvec![0, 1], tvec![0, 1], true);
        let cases = [
            ([2, 2], 2, PaddingSpec::Valid, [1, 3, 12, 18], false, true),
            ([7, 7], 7, PaddingSpec::Valid, [2, 2, 28, 28], false, true),
            ([3, 3], 1, pad([1, 1], [1, 1]), [1, 2, 9, 11], false, true),
            ([3, 3], 1, pad([1, 1], [1, 1]), [1, 2, 9, 11], true, true),
            ([3, 3], 2, pad([0, 1], [2, 1]), [1, 3, 10, 7], true, true),
            ([3, 3], 2, ceil, [1, 2, 8, 9], true, true),
            (
                [2, 3],
                2,
                PaddingSpec::SameUpper,
                [1, 2, 5, 13],
                false,
                true,
            ),
            ([3, 2], 1, PaddingSpec::Valid, [1, 4, 6, 6], false, false),
        ];
        for (i, (kernel, stride, padding, shape, include_pad, normalize)) in
            cases.into_iter().enumerate()
        {
            let c = shape[1];
            let strides = Some(tvec![stride, stride]);
            let spec = PoolSpec::new(
                DataFormat::NCHW,
                kernel.to_vec().into(),
                padding,
                None,
                strides,
                c,
                c,
            );
            let tracts = SumPool::new(spec.clone(), include_pad, normalize);
            let ours = PlaneAvgPool::for_op(&spec, include_pad, normalize, f32::datum_type())
                .expect("an f32 NCHW pool");
            let input = Tensor::from_shape(&shape, &values(shape.iter().product(), 120 + i as u64));
            let input = input.unwrap();
            assert_close(
                &run(&ours, &input),
                &run(&tracts, &input),
                &format!("case {i}"),
            );
        }
    }

    /// Pools of other types stay tract's.
    #[test]
    fn avg_pool_leaves_integer_pools_to_tract() {
        let spec = PoolSpec::new(
            DataFormat::NCHW,
            tvec![2, 2],
            PaddingSpec::Valid,
            None,
            None,
            1,
            1,
        );
        assert!(PlaneAvgPool::for_op(&spec, false, true, u8::datum_type()).is_none());
    }
}
