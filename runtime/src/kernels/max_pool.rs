//! 2-D max pooling over channel planes in passes over whole rows (see
//! [`pool_rows`](super::pool_rows)): the maxima down each output row's
//! windows, then across them. tract's own pool walked a precomputed patch
//! per output element, and this was a sixth of squeeze1's and alex4's time.

#[cfg(target_arch = "x86_64")]
mod lanes;

use std::ops::Range;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::PoolSpec;
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::pool_rows::{fold, spans, Columns};

/// Max pooling of `[N, C, H, W]` (or `[C, H, W]`) tensors, any kernel,
/// stride and padding, no dilation. Integer and quantized tensors pool their
/// stored integers, which keeps the order of the values they stand for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlaneMaxPool {
    pub pool_spec: PoolSpec,
}

impl PlaneMaxPool {
    /// The replacement for a pool with this spec, if it is one this op does.
    pub fn for_spec(pool_spec: &PoolSpec) -> Option<PlaneMaxPool> {
        let planar = matches!(pool_spec.data_format, DataFormat::NCHW | DataFormat::CHW);
        let undilated = pool_spec.dilations().iter().all(|&d| d == 1);
        (planar && undilated && pool_spec.rank() == 2).then(|| PlaneMaxPool {
            pool_spec: pool_spec.clone(),
        })
    }

    /// The pool of every path this CPU has: in memory, as other machines
    /// and wider planes pool, then in each instruction set's registers
    /// (in memory again where the CPU lacks it).
    #[cfg(test)]
    pub(super) fn eval_every_way(&self, input: &Tensor) -> TractResult<Vec<Tensor>> {
        let mut outputs = vec![self.eval_with(input, IN_MEMORY)?];
        #[cfg(target_arch = "x86_64")]
        for pools in [lanes::only::<lanes::Avx512>(), lanes::only::<lanes::Avx2>()] {
            outputs.push(self.eval_with(input, pools)?);
        }
        Ok(outputs)
    }

    /// Pools `input` with the [`InRegisters`] of its type in `pools`, or in
    /// memory for the types that have none.
    fn eval_with(&self, input: &Tensor, (f32s, u8s, i8s): Pools) -> TractResult<Tensor> {
        let dt = input.datum_type();
        match dt.unquantized() {
            DatumType::F32 => self.eval_t::<f32>(input, f32s),
            DatumType::U8 => self.eval_t::<u8>(input, u8s),
            DatumType::I8 => self.eval_t::<i8>(input, i8s),
            _ => dispatch_numbers!(Self::eval_t(dt)(self, input, declined)),
        }
    }

    /// Pools `input` with `in_registers` where it can (it returns whether
    /// it did), else with [`Window::pool_all`].
    fn eval_t<T: Datum + Copy + PartialOrd + tract_num_traits::Bounded>(
        &self,
        input: &Tensor,
        in_registers: InRegisters<T>,
    ) -> TractResult<Tensor> {
        let shape = self.pool_spec.data_format.shape(input.shape())?;
        let (h, w) = (shape.hw_dims()[0], shape.hw_dims()[1]);
        let padding = self.pool_spec.computed_padding(shape.hw_dims());
        let (kernel, stride) = (&self.pool_spec.kernel_shape, self.pool_spec.strides());
        let (rows, columns) = (&padding[0], &padding[1]);
        let window = Window {
            rows: spans(rows.convoluted, stride[0], kernel[0], rows.pad_before, h),
            columns: spans(
                columns.convoluted,
                stride[1],
                kernel[1],
                columns.pad_before,
                w,
            ),
            across: Columns::new(
                columns.pad_before,
                w,
                kernel[1],
                stride[1],
                columns.convoluted,
            ),
        };
        let output_shape = self.pool_spec.output_shape(input.shape())?.shape.to_vec();
        let mut output = unsafe { Tensor::uninitialized_dt(input.datum_type(), &output_shape)? };
        let src_plain = input.try_as_plain_ram()?;
        let src = src_plain.as_slice::<T>()?;
        let mut dst_plain = output.try_as_plain_ram_mut()?;
        let dst = dst_plain.as_slice_mut::<T>()?;
        let out_len = window.rows.len() * window.columns.len();
        if out_len > 0 && w > 0 && !in_registers(&window, (h, w), src, dst) {
            let mut scratch = [window.across.padded_row(T::min_value()), Vec::new()];
            let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(out_len));
            window.pool_all(planes, &mut scratch);
        }
        Ok(output)
    }
}

/// A pool of whole planes, `src` (`(h, w)` each) into `dst`, that may
/// decline and leave `dst` as it is.
type InRegisters<T> = fn(&Window, (usize, usize), &[T], &mut [T]) -> bool;

/// The [`InRegisters`] for the types and machines that have none.
fn declined<T>(_: &Window, _: (usize, usize), _: &[T], _: &mut [T]) -> bool {
    false
}

/// An [`InRegisters`] pool for each type that may have one.
type Pools = (InRegisters<f32>, InRegisters<u8>, InRegisters<i8>);

/// Pools that all decline: every type pools in memory.
#[cfg(any(test, not(target_arch = "x86_64")))]
const IN_MEMORY: Pools = (declined, declined, declined);

/// Where each output row and column reads its input.
struct Window {
    /// The input rows, in bounds, under each output row.
    rows: Vec<Range<usize>>,
    /// The input columns, in bounds, under each output column.
    columns: Vec<Range<usize>>,
    /// How an output row folds a row of maxima across.
    across: Columns,
}

impl Window {
    /// Pools each `(plane, out)` of `planes`, in code compiled for AVX2
    /// where the CPU has it.
    fn pool_all<'a, T: Copy + PartialOrd + tract_num_traits::Bounded + 'a>(
        &self,
        planes: impl Iterator<Item = (&'a [T], &'a mut [T])>,
        scratch: &mut [Vec<T>; 2],
    ) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.pool_each_avx2(planes, scratch) };
        }
        self.pool_each(planes, scratch)
    }

    #[inline(always)]
    fn pool_each<'a, T: Copy + PartialOrd + tract_num_traits::Bounded + 'a>(
        &self,
        planes: impl Iterator<Item = (&'a [T], &'a mut [T])>,
        scratch: &mut [Vec<T>; 2],
    ) {
        for (plane, out) in planes {
            self.pool(plane, out, scratch);
        }
    }

    /// [`Window::pool_each`] compiled for AVX2: twice the values per
    /// compare and select, and `vpmaxsb` for int8.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn pool_each_avx2<'a, T: Copy + PartialOrd + tract_num_traits::Bounded + 'a>(
        &self,
        planes: impl Iterator<Item = (&'a [T], &'a mut [T])>,
        scratch: &mut [Vec<T>; 2],
    ) {
        self.pool_each(planes, scratch)
    }

    /// Pools one `plane` into `out`, output row by output row: the maxima
    /// down the row's windows into `down`, then across (see
    /// [`Columns::fold`]). Windows wholly in the padding get
    /// `T::min_value()`, as in tract's pool.
    #[inline(always)]
    fn pool<T: Copy + PartialOrd + tract_num_traits::Bounded>(
        &self,
        plane: &[T],
        out: &mut [T],
        [padded, phased]: &mut [Vec<T>; 2],
    ) {
        let w = self.across.interior(padded).len();
        for (out_row, rows) in out.chunks_exact_mut(self.across.outputs).zip(&self.rows) {
            let down = self.across.interior(padded);
            match rows.len() {
                0 => down.fill(T::min_value()),
                n => fold(down, &plane[rows.start * w..], (0..n).map(|k| k * w), max),
            }
            self.across.fold(padded, phased, out_row, max);
        }
    }
}

/// tract's comparison, so that both pools pick the same values.
#[inline(always)]
fn max<T: PartialOrd>(m: T, v: T) -> T {
    if m < v {
        v
    } else {
        m
    }
}

impl Op for PlaneMaxPool {
    fn name(&self) -> StaticName {
        "PlaneMaxPool".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneMaxPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        #[cfg(target_arch = "x86_64")]
        let pools = lanes::FASTEST;
        #[cfg(not(target_arch = "x86_64"))]
        let pools = IN_MEMORY;
        Ok(tvec!(self.eval_with(&input, pools)?.into_tvalue()))
    }
}

impl TypedOp for PlaneMaxPool {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    as_op!();
}
