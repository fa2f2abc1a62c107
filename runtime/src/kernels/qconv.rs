//! int8 convolution (ONNX `QLinearConv`) with integer dot products,
//! keeping 8-bit activations in and out and requantizing in registers.
//!
//! tract lowers a quantized convolution to an eager i8 im2col, an integer
//! matrix product, a pass summing the patches to compensate for the input's
//! zero point, and the requantization; on squeeze1 that made int8 slower
//! than f32. Here one instruction multiplies a group of taps of eight
//! outputs (unsigned activations by signed weights, summed into i32):
//! four taps with VNNI's `vpdpbusd`, or on AVX2-only CPUs two taps widened
//! to 16 bits with `vpmaddwd`, which is exact where AVX2's byte product
//! `vpmaddubsw` would saturate. The zero point costs nothing at run time:
//! an int8 activation `x` is read as the byte `x + 128`, padding as
//! `x0 + 128`, and the constant `(x0 + 128) * sum(weights)` is taken off
//! the bias at load. On CPUs without VNNI, 3x3 convolutions padded by one
//! over even planes take Winograd's F(2x2, 3x3) in integers instead
//! ([`winograd`](super::winograd)), with the same outputs.

use std::arch::x86_64::__m256i;
use std::fmt;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, PoolSpec};

use super::dot::{by_groups, by_words, Dot};
use super::frame::{multiply, MultiplyAdd};
use super::joined::{self, Joinable, Layout};
use super::patches::{is_plain, pack_panels, per_channel, Geometry, Patches, VECTOR};
use super::sparse::{self, Densest, Sparse};
use super::winograd;
use super::x86_64::{Dots, Madd, Requantize, Vnni};

/// A 2-D, stride-1, undilated, ungrouped convolution of 8-bit activations
/// `[N, C, H, W]` (or `[C, H, W]`) with symmetric int8 weights and
/// per-tensor activation scales, giving 8-bit activations.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PlaneQConv {
    pub pool_spec: PoolSpec,
    dot: Dot,
    weights: Weights,
    /// The bias less the zero-point constant, one per output channel.
    offsets: Arc<Vec<i32>>,
    /// `x_scale * k_scale / y_scale` as f32 bits (so that the op is `Eq`),
    /// one per output channel.
    scales: Arc<Vec<u32>>,
    /// Whether activations are stored as i8 (else u8).
    signed_input: bool,
    /// The byte the input's zero point is read as, which pads the image.
    input_zero: u8,
    /// The output's datum type, zero point and range.
    output: DatumType,
    output_zero: i32,
    range: (i32, i32),
}

/// Words of a group of taps' weights, as [`Dot::word`] packs them.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Weights {
    /// `[panel][group of taps][ROWS]`, as [`pack_panels`] lays them out.
    Panels(Arc<Vec<u32>>),
    /// [`winograd::transform_int8_weights`] for the products' layout: for
    /// 3x3 kernels padded by one over planes of even height and width, and
    /// no others; AVX2's words.
    Winograd(winograd::Products, Arc<Vec<u32>>),
    /// The panels' words that hold a nonzero weight, for pruned kernels
    /// over planes of one size.
    Sparse(Sparse<u32>),
}

impl Weights {
    /// How they are laid out, for `Debug` and the plan's notes.
    fn layout(&self) -> String {
        match self {
            Weights::Panels(_) => "panels".into(),
            Weights::Winograd(winograd::Products::Panels, _) => "winograd, panels".into(),
            Weights::Winograd(winograd::Products::ByTap, _) => "winograd, by tap".into(),
            Weights::Sparse(s) => format!("sparse, {} words", s.nonzeros()),
        }
    }

    /// Whether they take planes of geometry `g`, in words of channels.
    fn serve(&self, g: &Geometry) -> bool {
        match self {
            Weights::Panels(_) => true,
            Weights::Winograd(..) => g.is_same_3x3_even(),
            Weights::Sparse(s) => s.serves(g),
        }
    }
}

impl fmt::Debug for PlaneQConv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.pool_spec;
        let layout = self.weights.layout();
        write!(
            f,
            "PlaneQConv({}->{}, {:?}, {:?}, {:?}, {:?}, {layout})",
            s.input_channels, s.output_channels, s.kernel_shape, s.padding, self.output, self.dot
        )
    }
}

impl PlaneQConv {
    /// The replacement for `conv`, whose inputs after the activations are
    /// `consts` (kernel, bias, then zero point and scale of the input, the
    /// kernel and the output), if it is one this op does and this CPU has
    /// the instructions for it. The weights' layout suits an input of
    /// `shape`, where known: Winograd's serves those shapes alone.
    pub fn for_conv(
        conv: &Conv,
        input: DatumType,
        consts: &[Arc<Tensor>],
        shape: Option<&[usize]>,
    ) -> TractResult<Option<PlaneQConv>> {
        match Dot::available().next() {
            Some(dot) => {
                PlaneQConv::with_dot(conv, input, consts, shape, dot, Densest::for_int8(dot))
            }
            None => Ok(None),
        }
    }

    /// [`PlaneQConv::for_conv`] with `dot`, and sparse weights up to
    /// `densest`; `None` where this CPU lacks `dot`.
    pub fn with_dot(
        conv: &Conv,
        input: DatumType,
        consts: &[Arc<Tensor>],
        shape: Option<&[usize]>,
        dot: Dot,
        densest: Densest,
    ) -> TractResult<Option<PlaneQConv>> {
        let [kernel, bias, x0, x_scale, k0, k_scale, y0, y_scale] = consts else {
            return Ok(None);
        };
        let Some(output) = conv.q_params else {
            return Ok(None);
        };
        let bytes =
            |dt: DatumType| [i8::datum_type(), u8::datum_type()].contains(&dt.unquantized());
        let symmetric = k0
            .cast_to::<i32>()?
            .to_plain_array_view::<i32>()?
            .iter()
            .all(|&z| z == 0);
        let per_tensor = [x0, x_scale, y0, y_scale].iter().all(|t| t.len() == 1);
        let i8_kernel = kernel.datum_type().unquantized() == i8::datum_type();
        let supported = bytes(input) && bytes(output) && i8_kernel && symmetric && per_tensor;
        let cpu = Dot::available().any(|d| d == dot);
        if !(supported && is_plain(conv) && cpu) {
            return Ok(None);
        }
        let spec = &conv.pool_spec;
        let (co, ci) = (spec.output_channels, spec.input_channels);
        let taps = ci * spec.kernel_shape.iter().product::<usize>();
        let weights = kernel.as_bytes();
        ensure!(
            weights.len() == co * taps,
            "kernel of {} values",
            weights.len()
        );
        let weights: Vec<i8> = weights.iter().map(|&b| b as i8).collect();

        let signed_input = input.unquantized() == i8::datum_type();
        let input_zero = scalar::<i32>(x0)? + if signed_input { 128 } else { 0 };
        let Ok(input_zero) = u8::try_from(input_zero) else {
            return Ok(None);
        };
        let bias = per_channel::<i32>(bias, co)?;
        let offsets = (bias.iter().enumerate())
            .map(|(o, &b)| {
                let sum: i32 = weights
                    .get(o * taps..(o + 1) * taps)
                    .map_or(0, |w| w.iter().map(|&w| w as i32).sum());
                b - input_zero as i32 * sum
            })
            .collect();
        // tract's order: (k_scale * x_scale) / y_scale.
        let (x_scale, y_scale) = (scalar::<f32>(x_scale)?, scalar::<f32>(y_scale)?);
        let scales = per_channel::<f32>(k_scale, co)?
            .iter()
            .map(|&k| (k * x_scale / y_scale).to_bits())
            .collect();
        let range = if output.unquantized() == i8::datum_type() {
            (-128, 127)
        } else {
            (0, 255)
        };
        let geometry = shape.and_then(|shape| Geometry::new(spec, shape).ok());
        let winograd = (geometry.as_ref())
            .and_then(|g| winograd::Products::paying(g, co))
            .filter(|_| dot == Dot::Avx2);
        let words = by_groups(
            &weights.iter().map(|&w| w.into()).collect::<Vec<_>>(),
            ci,
            taps,
            dot,
        );
        let sparse = geometry.and_then(|g| {
            let densest = densest.against(&g, winograd.is_some());
            Sparse::new(&words, co, &g.in_groups(dot.group()), densest)
        });
        let weights = if let Some(sparse) = sparse {
            Weights::Sparse(sparse)
        } else if let Some(products) = winograd {
            let transformed = winograd::transform_int8_weights(&weights, co, ci, products);
            Weights::Winograd(products, Arc::new(transformed))
        } else {
            Weights::Panels(Arc::new(pack_panels::<u32, 1>(
                &words,
                groups_of_taps(spec, dot),
            )))
        };
        Ok(Some(PlaneQConv {
            pool_spec: spec.clone(),
            dot,
            weights,
            offsets: Arc::new(offsets),
            scales: Arc::new(scales),
            signed_input,
            input_zero,
            output,
            output_zero: scalar::<i32>(y0)?,
            range,
        }))
    }

    /// Products of the image's words, as [`convolve`] packed them into
    /// `scratch.image`, into `out`, `[O, out_h, out_w]`. Inlined into its
    /// callers, which enable the instructions it uses.
    ///
    /// # Safety
    /// The CPU must have `D`'s instructions, which must be `self.dot`'s.
    #[inline(always)]
    unsafe fn multiply<D: MultiplyAdd<V = __m256i>>(
        &self,
        g: &Geometry,
        out: &mut [u8],
        scratch: &mut Scratch,
    ) {
        let (positions, co) = (g.positions(), self.pool_spec.output_channels);
        let pad = self.dot.word(|_| self.input_zero as i32);
        let requantize = Requantize {
            offsets: &self.offsets,
            scales: &self.scales,
            zero: self.output_zero,
            range: self.range,
        };
        match &self.weights {
            Weights::Panels(panels) => {
                let width = positions.next_multiple_of(VECTOR);
                let source = if g.is_pointwise() && width == positions {
                    &scratch.image
                } else {
                    g.im2col(&scratch.image, width, pad, &mut scratch.patches)
                };
                multiply::<D, _>(panels, source, (g.taps(), width), out, co, &requantize);
            }
            Weights::Winograd(products, weights) => {
                let image = (&scratch.image[..], pad);
                let (weights, patches) = ((*products, &weights[..]), &mut scratch.patches);
                winograd::convolve_int8(g, image, weights, &requantize, out, patches);
            }
            Weights::Sparse(weights) => {
                let source = g.pad(&scratch.image, pad, &mut scratch.patches.padded);
                sparse::multiply::<D, _>(weights, source, out, &mut scratch.grid, &requantize);
            }
        }
    }
}

impl Joinable for PlaneQConv {
    const JOINED: &'static str = "PlaneQConvConcat";

    fn pool_spec(&self) -> &PoolSpec {
        &self.pool_spec
    }

    fn output_type(&self) -> DatumType {
        self.output
    }

    /// Whether the input's words are packed alike for both, so that one
    /// packing of the image serves both.
    fn reads_like(&self, other: &PlaneQConv) -> bool {
        (self.dot, self.signed_input, self.input_zero)
            == (other.dot, other.signed_input, other.input_zero)
    }

    /// Over the image packed into words.
    fn geometry(&self, shape: &[usize]) -> TractResult<Geometry> {
        let g = Geometry::new(&self.pool_spec, shape)?.in_groups(self.dot.group());
        g.served(|g| self.weights.serve(g))
    }

    fn convolve_into(
        convs: &[Self],
        layout: &Layout,
        input: &Tensor,
        output: &mut Tensor,
    ) -> TractResult<()> {
        let (first, geometries) = (&convs[0], &layout.geometries);
        SCRATCH.with_borrow_mut(|scratch| {
            let images = input.as_bytes().chunks_exact(layout.image_in);
            let outs = output.as_bytes_mut().chunks_exact_mut(layout.image_out);
            for (image, out) in images.zip(outs) {
                // SAFETY: the CPU has the instructions of `first.dot`
                // (checked in `with_dot`), which is every conv's (checked by
                // `reads_like` in `Layout::new`).
                unsafe {
                    match first.dot {
                        Dot::Vnni => convolve_vnni(convs, geometries, image, out, scratch),
                        Dot::AvxVnni => convolve_avx_vnni(convs, geometries, image, out, scratch),
                        Dot::Avx2 => convolve_avx2(convs, geometries, image, out, scratch),
                    }
                }
            }
        });
        Ok(())
    }
}

/// [`convolve`] with AVX-512 VNNI's `vpdpbusd`.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn convolve_vnni(
    convs: &[PlaneQConv],
    gs: &[Geometry],
    image: &[u8],
    out: &mut [u8],
    s: &mut Scratch,
) {
    convolve::<Dots<Vnni<false>>>(convs, gs, image, out, s)
}

/// [`convolve`] with AVX-VNNI's `vpdpbusd`.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn convolve_avx_vnni(
    convs: &[PlaneQConv],
    gs: &[Geometry],
    image: &[u8],
    out: &mut [u8],
    s: &mut Scratch,
) {
    convolve::<Dots<Vnni<true>>>(convs, gs, image, out, s)
}

/// [`convolve`] with AVX2's `vpmaddwd`.
#[target_feature(enable = "avx2")]
unsafe fn convolve_avx2(
    convs: &[PlaneQConv],
    gs: &[Geometry],
    image: &[u8],
    out: &mut [u8],
    s: &mut Scratch,
) {
    convolve::<Dots<Madd>>(convs, gs, image, out, s)
}

/// One image, `[C, H, W]`, packed into words once, then each of `convs`
/// (whose geometries are `gs`) into its channels of `out`. Inlined into
/// its callers, which enable the instructions it uses.
///
/// # Safety
/// The CPU must have `D`'s instructions, which must be the dot product of
/// `convs`, which must all read their input alike.
#[inline(always)]
unsafe fn convolve<D: MultiplyAdd<V = __m256i>>(
    convs: &[PlaneQConv],
    gs: &[Geometry],
    image: &[u8],
    mut out: &mut [u8],
    scratch: &mut Scratch,
) {
    let first = &convs[0];
    let flip = if first.signed_input { 0x80 } else { 0 };
    let plane = image.len() / first.pool_spec.input_channels;
    let (zero, words) = (first.input_zero, &mut scratch.image);
    match first.dot.group() {
        4 => by_words::<4>(image, plane, flip, zero, words),
        _ => by_words::<2>(image, plane, flip, zero, words),
    }
    for (conv, g) in convs.iter().zip(gs) {
        let (mine, rest) = out.split_at_mut(conv.pool_spec.output_channels * g.positions());
        conv.multiply::<D>(g, mine, scratch);
        out = rest;
    }
}

/// Words of taps per output channel: `ceil(C / g) * kh * kw` for `g`
/// channels to a word.
fn groups_of_taps(spec: &PoolSpec, dot: Dot) -> usize {
    spec.input_channels.div_ceil(dot.group()) * spec.kernel_shape.iter().product::<usize>()
}

/// The value of a one-element tensor, cast to `T`.
fn scalar<T: Datum + Copy>(t: &Tensor) -> TractResult<T> {
    let t = t.cast_to::<T>()?;
    let view = t.to_plain_array_view::<T>()?;
    view.iter().next().copied().context("an empty tensor")
}

thread_local! {
    /// Buffers reused from one evaluation to the next.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

#[derive(Default)]
struct Scratch {
    /// The image in words of channels, as [`by_words`] packs it.
    image: Vec<u32>,
    /// Its patch matrix, `[taps / G][width]` words of `G` taps.
    patches: Patches<u32>,
    /// A sparse kernel's outputs on the padded planes' grid.
    grid: Vec<u8>,
}

impl Op for PlaneQConv {
    fn name(&self) -> StaticName {
        "PlaneQConv".into()
    }

    /// The layout of the weights that runs: the plan's notes say which
    /// kernel a convolution takes.
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![self.weights.layout()])
    }

    op_as_typed_op!();
}

joined::eval_through_convolve!(PlaneQConv);

impl TypedOp for PlaneQConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = self.pool_spec.output_shape(&inputs[0].shape)?.shape;
        Ok(tvec!(self.output.fact(shape)))
    }

    as_op!();
}
