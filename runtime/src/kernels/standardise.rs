//! The preprocessing of raw pixels, with the crop and the NHWC to NCHW move
//! before it, as one op: TensorFlow's per-image standardisation, which
//! every zoo file begins with, spelt in ten ONNX ops (see
//! [`crate::fusion`]), or an imported model's per-channel normalisation,
//! spelt in four. tract ran the first as a dozen nodes over 1,728 values,
//! about 0.03 ms of squeeze1's 0.87 ms and mostly the cost of a node, and
//! the second as a cast, a transposition and a scale of every value, 0.2 ms
//! of a 224x224 picture. Here it is one pass over the bytes (two for the
//! standardisation: integer sums, then one scaled write per value).

use std::ops::Range;

use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::Expansion;

/// `uint8 [N, H, W, C]` pixels -> `float [N, C, h, w]`: each image's window
/// `rows` x `cols`, scaled as `scaling` says.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneStandardise {
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    pub scaling: Scaling,
}

/// What becomes of each pixel value `v` of the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Scaling {
    /// `(v - mean) / max(deviation, floor)`, the window's mean and standard
    /// deviation over every channel.
    PerImage { floor: f32 },
    /// `v * scale[c] + shift[c]` for channel `c`: ONNX's Mul then Add, each
    /// rounded.
    Channels { scale: [f32; 3], shift: [f32; 3] },
}

impl Eq for PlaneStandardise {}

impl PlaneStandardise {
    /// The ONNX op type [`crate::fusion`] writes for this op.
    pub const OP_TYPE: &'static str = "SqueezeboxStandardise";

    /// Builds the op from a node [`crate::fusion`] wrote: attributes `rows`
    /// and `cols` (start and end), and `floor`, or `scale` and `shift`.
    pub fn parse(
        _: &tract_onnx::model::ParsingContext,
        node: &NodeProto,
    ) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
        let range = |name: &str| -> TractResult<Range<usize>> {
            match node.get_attr_slice::<i64>(name)? {
                &[start, end] if 0 <= start && start < end => Ok(start as usize..end as usize),
                other => bail!("{}: attribute {name} is {other:?}, not a window", node.name),
            }
        };
        let three = |name: &str| -> TractResult<[f32; 3]> {
            let values = node.get_attr_slice::<f32>(name)?;
            values.try_into().map_err(|_| {
                format_err!(
                    "{}: attribute {name} has {} values, not 3",
                    node.name,
                    values.len()
                )
            })
        };
        let scaling = match node.get_attr_opt::<f32>("floor")? {
            Some(floor) => Scaling::PerImage { floor },
            None => Scaling::Channels {
                scale: three("scale")?,
                shift: three("shift")?,
            },
        };
        let op = PlaneStandardise {
            rows: range("rows")?,
            cols: range("cols")?,
            scaling,
        };
        Ok((expand(op), vec![]))
    }

    /// Scales one `[H, W, C]` image of `width` columns and `channels`
    /// channels into `out`, `[C, h, w]`, in code compiled for AVX2 where
    /// the CPU has it: LLVM then takes three channels' bytes apart eight
    /// pixels at a time.
    fn image_fastest(&self, pixels: &[u8], width: usize, channels: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.image_avx2(pixels, width, channels, out) };
        }
        self.image(pixels, width, channels, out)
    }

    /// [`PlaneStandardise::image`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn image_avx2(&self, pixels: &[u8], width: usize, channels: usize, out: &mut [f32]) {
        self.image(pixels, width, channels, out)
    }

    #[inline(always)]
    fn image(&self, pixels: &[u8], width: usize, channels: usize, out: &mut [f32]) {
        let window = Window {
            op: self,
            pixels,
            width,
        };
        let floor = match self.scaling {
            Scaling::PerImage { floor } => floor,
            Scaling::Channels { scale, shift } => {
                return window.planes(channels, out, |c, v| v * scale[c] + shift[c]);
            }
        };
        // The sums are exact; the rest is float, as the ONNX ops would do it.
        let (mut sum, mut squares) = (0u64, 0u64);
        for y in self.rows.clone() {
            for &v in window.row(y, channels) {
                sum += v as u64;
                squares += v as u64 * v as u64;
            }
        }
        let count = out.len() as f64;
        let mean = sum as f64 / count;
        let deviation = (squares as f64 / count - mean * mean).max(0.0).sqrt();
        let scale = (1.0 / deviation.max(floor as f64)) as f32;
        let mean = mean as f32;
        window.planes(channels, out, |_, v| (v - mean) * scale);
    }

    /// The output shape for an input of shape `[N, H, W, C]`, if the window
    /// fits in it.
    fn output_shape<D: DimLike>(&self, input: &[D]) -> TractResult<TVec<D>> {
        let fits = |dim: &D, window: &Range<usize>| dim.to_usize().is_ok_and(|d| window.end <= d);
        ensure!(
            input.len() == 4 && fits(&input[1], &self.rows) && fits(&input[2], &self.cols),
            "{self:?} takes [N, H, W, C] pixels around its window, not {input:?}"
        );
        let three = input[3].to_usize().is_ok_and(|c| c == 3);
        ensure!(
            three || matches!(self.scaling, Scaling::PerImage { .. }),
            "{self:?} scales 3 channels, not {:?}",
            input[3]
        );
        Ok(tvec![
            input[0].clone(),
            input[3].clone(),
            self.rows.len().into(),
            self.cols.len().into()
        ])
    }
}

/// One image's pixels under the op's window.
struct Window<'a> {
    op: &'a PlaneStandardise,
    pixels: &'a [u8],
    /// The image's width in pixels.
    width: usize,
}

impl Window<'_> {
    /// The window's part of row `y`, `channels` bytes a pixel.
    fn row(&self, y: usize, channels: usize) -> &[u8] {
        let cols = &self.op.cols;
        &self.pixels[(y * self.width + cols.start) * channels..][..cols.len() * channels]
    }

    /// `scale(c, v)` of every value `v` of channel `c` into plane `c` of
    /// `out`, row by row. Three channels (every picture the runtime
    /// reads) take a loop with the count fixed, which vectorises: one
    /// strided pass over a row's bytes writes all three planes. Otherwise
    /// one pass per channel.
    #[inline(always)]
    fn planes(&self, channels: usize, out: &mut [f32], scale: impl Fn(usize, f32) -> f32) {
        let cols = self.op.cols.len();
        let plane = self.op.rows.len() * cols;
        if channels == 3 {
            let (red, rest) = out.split_at_mut(plane);
            let (green, blue) = rest.split_at_mut(plane);
            let rows = red.chunks_exact_mut(cols).zip(green.chunks_exact_mut(cols));
            let rows = rows
                .zip(blue.chunks_exact_mut(cols))
                .zip(self.op.rows.clone());
            for (((r, g), b), y) in rows {
                let pixels = self.row(y, 3).chunks_exact(3);
                for ((px, r), (g, b)) in pixels.zip(r).zip(g.iter_mut().zip(b)) {
                    *r = scale(0, px[0] as f32);
                    *g = scale(1, px[1] as f32);
                    *b = scale(2, px[2] as f32);
                }
            }
            return;
        }
        for (c, out) in out.chunks_exact_mut(plane).enumerate() {
            for (row, y) in out.chunks_exact_mut(cols).zip(self.op.rows.clone()) {
                let values = self.row(y, channels)[c..].iter().step_by(channels);
                for (o, &v) in row.iter_mut().zip(values) {
                    *o = scale(c, v as f32);
                }
            }
        }
    }
}

impl Op for PlaneStandardise {
    fn name(&self) -> StaticName {
        "PlaneStandardise".into()
    }

    op_as_typed_op!();
}

impl EvalOp for PlaneStandardise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = self.output_shape(input.shape())?;
        let (width, channels) = (input.shape()[2], input.shape()[3]);
        // SAFETY: f32 has no invalid bit patterns, and `image` writes every
        // value of each image's planes.
        let mut output = unsafe { Tensor::uninitialized::<f32>(&shape)? };
        let pixels = input.try_as_plain_ram()?;
        let pixels = pixels.as_slice::<u8>()?;
        let mut plain = output.try_as_plain_ram_mut()?;
        let out = plain.as_slice_mut::<f32>()?;
        if !out.is_empty() {
            let images = shape[0];
            let (image_bytes, image_out) = (pixels.len() / images, out.len() / images);
            for (image, out) in pixels
                .chunks_exact(image_bytes)
                .zip(out.chunks_exact_mut(image_out))
            {
                self.image_fastest(image, width, channels, out);
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for PlaneStandardise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs[0].datum_type == u8::datum_type(),
            "{self:?} takes u8 pixels"
        );
        Ok(tvec!(f32::fact(self.output_shape(&inputs[0].shape)?)))
    }

    as_op!();
}

/// How tract types the node [`crate::fusion`] writes: as this op.
impl Expansion for PlaneStandardise {
    fn name(&self) -> StaticName {
        Op::name(self)
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, u8::datum_type())?;
        s.equals(&inputs[0].rank, 4)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].rank, 4)?;
        s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        s.equals(&outputs[0].shape[1], &inputs[0].shape[3])?;
        s.equals(&outputs[0].shape[2], self.rows.len().to_dim())?;
        s.equals(&outputs[0].shape[3], self.cols.len().to_dim())?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}
