//! f32 depthwise convolution: each channel convolved with its own filter,
//! as MobileNet-style nets (imported ones) do between their pointwise
//! convolutions.
//!
//! tract runs a depthwise convolution through its generic grouped path, one
//! multiply-add per tap and position with a bounds check for each, or as a
//! matrix product per channel, which packs more than it multiplies. Here
//! each output row is a few vectors of positions, kept in registers across
//! the taps, each tap one broadcast weight and one load of the padded row.
//! Strided windows read the padded rows split by column phase (even and odd
//! columns at stride 2), so that every tap's load is still contiguous.

use std::arch::x86_64::__m256;
use std::fmt;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, PoolSpec};

use super::frame::{MultiplyAdd, Vector};
use super::joined::{self, Joinable, Layout};
use super::patches::{is_planar, per_channel, Geometry, Patches, VECTOR};
use super::x86_64::{Activation, Bias, Fma};

/// A 2-D, undilated depthwise f32 convolution over `[N, C, H, W]` (or
/// `[C, H, W]`): one filter per channel, any kernel size, stride and
/// padding, with its bias and the activation after it folded in.
#[derive(Clone, PartialEq)]
pub struct PlaneDepthwise {
    pub pool_spec: PoolSpec,
    /// `[C][kh][kw]`.
    weights: Arc<Vec<f32>>,
    /// One per channel, zero-padded to whole panels.
    bias: Arc<Vec<f32>>,
    pub activation: Activation,
}

/// tract compares ops to merge twins; a NaN weight only makes an op unequal
/// to its twin, which costs a missed merge.
impl Eq for PlaneDepthwise {}

impl fmt::Debug for PlaneDepthwise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.pool_spec;
        write!(
            f,
            "PlaneDepthwise({} channels, {:?}, stride {:?}, {:?}, {:?})",
            s.output_channels,
            s.kernel_shape,
            s.strides(),
            s.padding,
            self.activation
        )
    }
}

impl PlaneDepthwise {
    /// The replacement for `conv`, whose kernel and bias are `consts`, if
    /// it is an f32 depthwise convolution (one input and one output channel
    /// per group) and this CPU has AVX2 and FMA.
    pub fn for_conv(
        conv: &Conv,
        input: DatumType,
        consts: &[Arc<Tensor>],
        activation: Activation,
    ) -> TractResult<Option<PlaneDepthwise>> {
        let spec = &conv.pool_spec;
        let [kernel, bias] = consts else {
            return Ok(None);
        };
        let f32s = [input, kernel.datum_type(), bias.datum_type()] == [f32::datum_type(); 3];
        let depthwise = conv.group > 1
            && spec.input_channels == conv.group
            && spec.output_channels == conv.group;
        let cpu = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if conv.q_params.is_some() || !f32s || !depthwise || !is_planar(conv) || !cpu {
            return Ok(None);
        }
        let weights = kernel.to_plain_array_view::<f32>()?;
        let weights = weights.as_slice().context("contiguous kernel")?;
        let taps: usize = spec.kernel_shape.iter().product();
        ensure!(
            weights.len() == spec.output_channels * taps,
            "kernel of {} values",
            weights.len()
        );
        Ok(Some(PlaneDepthwise {
            pool_spec: spec.clone(),
            weights: Arc::new(weights.to_vec()),
            bias: Arc::new(per_channel(bias, spec.output_channels)?),
            activation,
        }))
    }

    /// One image: `image` is `[C, H, W]`, `out` is `[C, out_h, out_w]`.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn convolve(
        &self,
        g: &Geometry,
        image: &[f32],
        out: &mut [f32],
        rows: &mut Patches<f32>,
    ) {
        let Patches { padded, matrix, .. } = rows;
        let bias = Bias {
            bias: &self.bias,
            activation: self.activation,
        };
        let (kh, kw) = g.kernel;
        // Channel by channel, so that the padded plane is still in cache
        // when its rows are read.
        let one = g.one_plane();
        let planes = image.chunks_exact(image.len() / g.channels);
        for (c, (plane, out)) in planes.zip(out.chunks_exact_mut(g.positions())).enumerate() {
            let padded = one.pad(plane, 0.0, padded);
            let phased = Phased::new(&one, padded, matrix);
            let offsets: TVec<usize> = (0..kh)
                .flat_map(|ky| (0..kw).map(move |kx| (ky, kx)))
                .map(|(ky, kx)| phased.offset(ky, kx))
                .collect();
            let taps = Taps {
                filter: &self.weights[c * kh * kw..][..kh * kw],
                offsets: &offsets,
                bias: &bias,
                c,
            };
            for (oy, row) in out.chunks_exact_mut(g.out_w).enumerate() {
                let under = phased.rows(oy * g.stride.0, kh);
                // SAFETY: AVX2 and FMA, as this function's caller promised.
                unsafe { taps.row::<Fma>(under, row) };
            }
        }
    }
}

/// The padded planes with each row split into its `stride` column phases:
/// phase `p` of a row holds its columns `p, p + stride, ...`, so that a
/// tap at column `kx` of the windows reads phase `kx % stride` from
/// `kx / stride` on, contiguously. At stride 1 the padded planes
/// themselves.
struct Phased<'a> {
    values: &'a [f32],
    /// Elements of one phase of a row.
    phase_len: usize,
    /// Elements of one row: every phase.
    row_len: usize,
    stride: usize,
}

impl<'a> Phased<'a> {
    /// `padded`, planes of `g`'s padded dimensions, phased into `buffer`
    /// where the columns are strided.
    #[inline(always)]
    fn new(g: &Geometry, padded: &'a [f32], buffer: &'a mut Vec<f32>) -> Phased<'a> {
        let (ph, pw) = g.padded_dims();
        let stride = g.stride.1;
        if stride == 1 {
            return Phased {
                values: padded,
                phase_len: pw,
                row_len: pw,
                stride,
            };
        }
        let phase_len = pw.div_ceil(stride);
        let row_len = phase_len * stride;
        buffer.resize(g.channels * ph * row_len, 0.0);
        let source = padded.chunks_exact(pw).take(g.channels * ph);
        for (split, row) in buffer.chunks_exact_mut(row_len).zip(source) {
            for (p, phase) in split.chunks_exact_mut(phase_len).enumerate() {
                for (v, &x) in phase.iter_mut().zip(row.iter().skip(p).step_by(stride)) {
                    *v = x;
                }
            }
        }
        Phased {
            values: buffer,
            phase_len,
            row_len,
            stride,
        }
    }

    /// Where tap `(ky, kx)` of a window reads output position 0, from the
    /// window's first row.
    #[inline(always)]
    fn offset(&self, ky: usize, kx: usize) -> usize {
        ky * self.row_len + kx % self.stride * self.phase_len + kx / self.stride
    }

    /// The `count` rows from row `first` on.
    #[inline(always)]
    fn rows(&self, first: usize, count: usize) -> &[f32] {
        &self.values[first * self.row_len..][..count * self.row_len]
    }
}

/// One channel's filter, for its output rows.
struct Taps<'a> {
    filter: &'a [f32],
    /// Where each tap reads output position 0, [`Phased::offset`].
    offsets: &'a [usize],
    /// The op's bias and ReLU, and this filter's channel.
    bias: &'a Bias<'a>,
    c: usize,
}

impl Taps<'_> {
    /// Output row `out` from `under`, the [`Phased`] rows under its
    /// windows: tiles of four vectors, then of one, then the positions past
    /// the last whole vector one by one.
    ///
    /// # Safety
    /// The CPU must have `M`'s instructions.
    #[inline(always)]
    unsafe fn row<M: MultiplyAdd<V = __m256>>(&self, under: &[f32], out: &mut [f32]) {
        // Every tap reads a value for each output position: its phase of a
        // row has one for each window's column.
        let last = self.offsets.iter().max().map_or(0, |&o| o + out.len());
        assert!(last <= under.len() && self.filter.len() == self.offsets.len());
        let whole = out.len() / VECTOR * VECTOR;
        let mut x = 0;
        while x + 4 * VECTOR <= whole {
            // SAFETY: positions `x..x + 32` are in `out`, so by the check
            // above every tap's loads are in `under`.
            unsafe { self.tile::<M, 4>(under.as_ptr().add(x), out[x..].as_mut_ptr()) };
            x += 4 * VECTOR;
        }
        while x < whole {
            // SAFETY: as above, for `x..x + 8`.
            unsafe { self.tile::<M, 1>(under.as_ptr().add(x), out[x..].as_mut_ptr()) };
            x += VECTOR;
        }
        for (x, o) in out.iter_mut().enumerate().skip(whole) {
            let taps = self.filter.iter().zip(self.offsets);
            let start = self.bias.bias[self.c];
            let sum = taps.fold(start, |sum, (w, &at)| w.mul_add(under[at + x], sum));
            *o = self.bias.activation.scalar(sum);
        }
    }

    /// `V` vectors of outputs at `out`, from the rows under their windows
    /// at `under`, summed in registers across the taps.
    ///
    /// # Safety
    /// The CPU must have `M`'s instructions; the filter must have a weight
    /// for each offset, `V * VECTOR` values must be readable at `under`
    /// past each offset, and writable at `out` ([`Taps::row`] checks).
    #[inline(always)]
    unsafe fn tile<M: MultiplyAdd<V = __m256>, const V: usize>(
        &self,
        under: *const f32,
        out: *mut f32,
    ) {
        // SAFETY: as the caller promised.
        unsafe {
            let mut sums = [M::broadcast(&self.bias.bias[self.c]); V];
            for t in 0..self.offsets.len() {
                let w = M::broadcast(self.filter.as_ptr().add(t));
                let from = under.add(*self.offsets.get_unchecked(t));
                for (i, sum) in sums.iter_mut().enumerate() {
                    *sum = M::multiply_add(*sum, w, __m256::load(from.add(i * VECTOR)));
                }
            }
            for (i, sum) in sums.into_iter().enumerate() {
                self.bias.activate(sum).store(out.add(i * VECTOR));
            }
        }
    }
}

thread_local! {
    /// The padded and phased planes, reused from one evaluation to the next.
    static ROWS: std::cell::RefCell<Patches<f32>> = std::cell::RefCell::default();
}

impl Op for PlaneDepthwise {
    fn name(&self) -> StaticName {
        "PlaneDepthwise".into()
    }

    op_as_typed_op!();
}

joined::eval_through_convolve!(PlaneDepthwise);

impl TypedOp for PlaneDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    as_op!();
}

/// Through [`joined::convolve`] for its shapes and batches; never joined.
impl Joinable for PlaneDepthwise {
    const JOINED: &'static str = "PlaneDepthwiseConcat";

    fn pool_spec(&self) -> &PoolSpec {
        &self.pool_spec
    }

    fn output_type(&self) -> DatumType {
        f32::datum_type()
    }

    fn geometry(&self, shape: &[usize]) -> TractResult<Geometry> {
        Geometry::new(&self.pool_spec, shape)
    }

    fn convolve_into(
        convs: &[Self],
        layout: &Layout,
        input: &Tensor,
        output: &mut Tensor,
    ) -> TractResult<()> {
        let src_plain = input.try_as_plain_ram()?;
        let src = src_plain.as_slice::<f32>()?;
        let mut dst_plain = output.try_as_plain_ram_mut()?;
        let dst = dst_plain.as_slice_mut::<f32>()?;
        ROWS.with_borrow_mut(|rows| {
            let images = src.chunks_exact(layout.image_in);
            for (image, out) in images.zip(dst.chunks_exact_mut(layout.image_out)) {
                for (conv, geometry) in convs.iter().zip(&layout.geometries) {
                    // SAFETY: the CPU has AVX2 and FMA (checked in `for_conv`).
                    unsafe { conv.convolve(geometry, image, out, rows) };
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::internal::*;
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;

    use super::{Activation, PlaneDepthwise};
    use crate::kernels::tests::{activated, activation, assert_close, run, values};

    /// Depthwise convolutions as imported nets have them, and tract's
    /// outputs for them: MobileNet's 3x3 at strides 1 and 2 over planes
    /// whose rows end in four-vector tiles, one-vector tiles and single
    /// positions; a 5x5 at stride 2 with one-sided padding; unpadded and
    /// stride-3 windows; a batch of two; with and without the ReLU.
    #[test]
    fn depthwise_matches_tracts_within_float_rounding() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: no AVX2 and FMA on this CPU, tract keeps depthwise convolutions");
            return;
        }
        let same = |k: usize| PaddingSpec::Explicit(tvec![k / 2, k / 2], tvec![k / 2, k / 2]);
        let cases = [
            (3, 1, [1, 4, 7, 45], same(3), true),
            (3, 2, [2, 3, 12, 90], same(3), false),
            (5, 2, [1, 5, 11, 23], PaddingSpec::SameUpper, true),
            (3, 1, [1, 2, 6, 9], PaddingSpec::Valid, false),
            (
                2,
                3,
                [1, 3, 10, 29],
                PaddingSpec::Explicit(tvec![0, 1], tvec![1, 0]),
                false,
            ),
        ];
        for (i, (k, stride, shape, padding, relu)) in cases.into_iter().enumerate() {
            let c = shape[1];
            let strides = Some(tvec![stride, stride]);
            let pool_spec =
                PoolSpec::new(DataFormat::NCHW, tvec![k, k], padding, None, strides, c, c);
            let conv = Conv {
                pool_spec,
                kernel_fmt: KernelFormat::OIHW,
                group: c,
                q_params: None,
            };
            let kernel = Tensor::from_shape(&[c, 1, k, k], &values(c * k * k, 90 + i as u64));
            let bias = Tensor::from_shape(&[c], &values(c, 95 + i as u64));
            let consts = [kernel.unwrap(), bias.unwrap()].map(|t| t.into_arc_tensor());
            let input = Tensor::from_shape(&shape, &values(shape.iter().product(), 99 + i as u64));
            let input = input.unwrap();
            let inputs = std::iter::once(input.clone().into_tvalue())
                .chain(consts.iter().map(|t| t.clone().into_tvalue()))
                .collect();
            let tracts = conv.eval_out_of_plan(inputs).unwrap().unwrap().remove(0);
            let activation = activation(i, relu);
            let expected: Vec<f32> = (tracts.to_plain_array_view::<f32>().unwrap())
                .iter()
                .map(|&v| activated(activation, v))
                .collect();
            let expected = Tensor::from_shape(tracts.shape(), &expected).unwrap();
            let ours = PlaneDepthwise::for_conv(&conv, f32::datum_type(), &consts, activation)
                .unwrap()
                .expect("a depthwise f32 conv");
            assert_close(
                &run(&ours, &input),
                &expected,
                &format!("case {i}: {ours:?}"),
            );
        }
    }

    /// Grouped convolutions of more than one channel a group, and int8
    /// ones, stay tract's.
    #[test]
    fn depthwise_leaves_other_grouped_convolutions_to_tract() {
        let spec = |c: usize, o: usize| {
            PoolSpec::new(
                DataFormat::NCHW,
                tvec![3, 3],
                PaddingSpec::Valid,
                None,
                None,
                c,
                o,
            )
        };
        let kernel = |o: usize, i: usize| Tensor::zero::<f32>(&[o, i, 3, 3]).unwrap();
        let grouped = Conv {
            pool_spec: spec(8, 8),
            kernel_fmt: KernelFormat::OIHW,
            group: 4,
            q_params: None,
        };
        let consts = [kernel(8, 2), tensor1(&[0f32; 8])].map(|t| t.into_arc_tensor());
        let op = PlaneDepthwise::for_conv(&grouped, f32::datum_type(), &consts, Activation::NONE);
        assert!(op.unwrap().is_none());
        let multiplied = Conv {
            pool_spec: spec(4, 8),
            group: 4,
            ..grouped
        };
        let op =
            PlaneDepthwise::for_conv(&multiplied, f32::datum_type(), &consts, Activation::NONE);
        assert!(op.unwrap().is_none());
    }
}
