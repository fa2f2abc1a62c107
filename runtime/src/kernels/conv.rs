//! f32 convolution as an im2col and a register-blocked matrix product,
//! with the bias and an optional ReLU applied in registers.
//!
//! tract lowers a convolution to an im2col pass, a packing of both operands
//! and a general matrix product. For the small planes of a CIFAR-10 model
//! (32x32 at most) the packing is a large share of the time. Here the
//! weights are packed once, at load, into panels of [`ROWS`] output
//! channels; the patch matrix is laid out so that the micro-kernel reads it
//! as it is, and a 1x1 unpadded convolution reads its input directly. The
//! micro-kernel keeps a `ROWS x 16` tile of outputs in registers across all
//! taps and writes each output once. Planes whose positions fill no whole
//! pair of vectors (6x6) take the weights by tap instead, and a tile is
//! `ROWS` positions by 16 channels, so that no lane holds padding. 3x3
//! convolutions padded by one, over even planes of enough channels, take
//! Winograd's F(2x2, 3x3) instead ([`winograd`](super::winograd)): the
//! same matrix products, on 2.25x fewer multiply-adds.

use std::fmt;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, PoolSpec};

use super::frame::{multiply, multiply_by_tap};
use super::frame::{MultiplyAdd, Sink, Vector};
use super::joined::{self, Joinable, Layout};
use super::patches::{self, is_plain, pack_panels, per_channel, Geometry, Patches, ROWS, VECTOR};
use super::sparse::{self, Densest, Sparse};
use super::winograd;
use super::x86_64::{Activation, Bias, Fma, Fma512};

/// A 2-D, stride-1, undilated, ungrouped f32 convolution over `[N, C, H, W]`
/// (or `[C, H, W]`), any kernel size and padding, with its bias and the
/// activation after it folded in.
#[derive(Clone, PartialEq)]
pub struct PlaneConv {
    pub pool_spec: PoolSpec,
    /// The weights, laid out for the tiles that suit the planes.
    weights: Weights,
    /// One per output channel, zero-padded to whole panels.
    bias: Arc<Vec<f32>>,
    pub activation: Activation,
    /// Whether panels run on 512-bit vectors: the CPU has AVX-512F.
    wide: bool,
}

/// Tap `(c, ky, kx)` of the weights is number `(c * kh + ky) * kw + kx`.
#[derive(Clone, PartialEq)]
enum Weights {
    /// `[panel][tap][ROWS]`: the taps of output channels `panel * ROWS..`,
    /// zero past the last channel. A tile is `ROWS` channels by two vectors
    /// of positions.
    Panels(Arc<Vec<f32>>),
    /// `[tap][O]`. A tile is `ROWS` positions by two vectors of channels:
    /// for planes whose positions fill no whole pair of vectors but whose
    /// channels do (squeeze1's 6x6 planes), so that no product is wasted.
    ByTap(Arc<Vec<f32>>),
    /// [`winograd::transform_weights`] for the products' layout: for 3x3
    /// kernels padded by one over planes of even height and width, and no
    /// others.
    Winograd(winograd::Products, Arc<Vec<f32>>),
    /// The nonzero weights, for pruned kernels over planes of one size.
    Sparse(Sparse<f32>),
}

impl Weights {
    /// How they are laid out, for `Debug` and the plan's notes.
    fn layout(&self) -> String {
        match self {
            Weights::Panels(_) => "panels".into(),
            Weights::ByTap(_) => "by tap".into(),
            Weights::Winograd(winograd::Products::Panels, _) => "winograd, panels".into(),
            Weights::Winograd(winograd::Products::ByTap, _) => "winograd, by tap".into(),
            Weights::Sparse(s) => format!("sparse, {} weights", s.nonzeros()),
        }
    }

    /// Whether they take planes of geometry `g`.
    fn serve(&self, g: &Geometry) -> bool {
        match self {
            Weights::Panels(_) | Weights::ByTap(_) => true,
            Weights::Winograd(..) => g.is_same_3x3_even(),
            Weights::Sparse(s) => s.serves(g),
        }
    }
}

/// tract compares ops to merge twins; a NaN weight only makes an op unequal
/// to its twin, which costs a missed merge.
impl Eq for PlaneConv {}

impl fmt::Debug for PlaneConv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.pool_spec;
        let layout = self.layout();
        write!(
            f,
            "PlaneConv({}->{}, {:?}, stride {:?}, {:?}, {:?}, {layout})",
            s.input_channels,
            s.output_channels,
            s.kernel_shape,
            s.strides(),
            s.padding,
            self.activation
        )
    }
}

impl PlaneConv {
    /// The replacement for `conv`, whose kernel and bias are `consts`, if
    /// it is one this op does and this CPU has the instructions for it.
    /// The weights' layout suits an input of `shape`, where known: the
    /// layouts for 6x6 planes, for Winograd and for sparse kernels serve
    /// those shapes alone.
    pub fn for_conv(
        conv: &Conv,
        input: DatumType,
        consts: &[Arc<Tensor>],
        activation: Activation,
        shape: Option<&[usize]>,
    ) -> TractResult<Option<PlaneConv>> {
        PlaneConv::with_densest(conv, input, consts, activation, shape, Densest::F32)
    }

    /// [`PlaneConv::for_conv`], with sparse weights up to `densest`.
    pub fn with_densest(
        conv: &Conv,
        input: DatumType,
        consts: &[Arc<Tensor>],
        activation: Activation,
        shape: Option<&[usize]>,
        densest: Densest,
    ) -> TractResult<Option<PlaneConv>> {
        let spec = &conv.pool_spec;
        let [kernel, bias] = consts else {
            return Ok(None);
        };
        let f32s = [input, kernel.datum_type(), bias.datum_type()] == [f32::datum_type(); 3];
        let cpu = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        if conv.q_params.is_some() || !f32s || !is_plain(conv) || !cpu {
            return Ok(None);
        }
        let taps = spec.input_channels * spec.kernel_shape.iter().product::<usize>();
        let weights = kernel.to_plain_array_view::<f32>()?;
        let weights = weights.as_slice().context("contiguous kernel")?;
        ensure!(
            weights.len() == spec.output_channels * taps,
            "kernel of {} values",
            weights.len()
        );
        let geometry = shape.and_then(|shape| Geometry::new(spec, shape).ok());
        let (co, ci) = (spec.output_channels, spec.input_channels);
        let winograd = (geometry.as_ref()).and_then(|g| winograd::Products::paying(g, co));
        let pair = 2 * VECTOR;
        let by_tap = co.is_multiple_of(pair)
            && (geometry.as_ref()).is_some_and(|g| !g.positions().is_multiple_of(pair));
        let sparse = (geometry.as_ref())
            .and_then(|g| Sparse::new(weights, co, g, densest.against(g, winograd.is_some())));
        let weights = if let Some(sparse) = sparse {
            Weights::Sparse(sparse)
        } else if let Some(products) = winograd {
            let transformed = winograd::transform_weights(weights, co, ci, products);
            Weights::Winograd(products, Arc::new(transformed))
        } else if by_tap {
            Weights::ByTap(Arc::new(patches::by_tap(weights, taps)))
        } else {
            Weights::Panels(Arc::new(pack_panels::<f32, 1>(weights, taps)))
        };
        Ok(Some(PlaneConv {
            pool_spec: spec.clone(),
            weights,
            bias: Arc::new(per_channel(bias, spec.output_channels)?),
            activation,
            wide: is_x86_feature_detected!("avx512f"),
        }))
    }

    /// How the weights are laid out, and for panels the vectors' width.
    fn layout(&self) -> String {
        match (&self.weights, self.wide) {
            (Weights::Panels(_), true) => "panels, 512-bit".into(),
            (weights, _) => weights.layout(),
        }
    }

    /// This convolution with its panels on 256-bit vectors: the path of
    /// CPUs without AVX-512, which tests take on CPUs with it too.
    #[cfg(test)]
    pub fn narrow(self) -> PlaneConv {
        PlaneConv {
            wide: false,
            ..self
        }
    }

    /// One image, on the widest vectors the CPU has.
    fn run(&self, g: &Geometry, image: &[f32], out: &mut [f32], patches: &mut Patches<f32>) {
        if self.wide {
            // SAFETY: the CPU has AVX-512F (checked in `for_conv`), and
            // AVX2 and FMA.
            unsafe { self.convolve_avx512(g, image, out, patches) }
        } else {
            // SAFETY: the CPU has AVX2 and FMA (checked in `for_conv`).
            unsafe { self.convolve(g, image, out, patches) }
        }
    }

    /// [`PlaneConv::convolve_with`] on 256-bit vectors.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn convolve(
        &self,
        g: &Geometry,
        image: &[f32],
        out: &mut [f32],
        patches: &mut Patches<f32>,
    ) {
        // SAFETY: as promised.
        unsafe { self.convolve_with::<Fma>(g, image, out, patches) }
    }

    /// [`PlaneConv::convolve_with`] with panels on 512-bit vectors.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx2,fma,avx512f")]
    unsafe fn convolve_avx512(
        &self,
        g: &Geometry,
        image: &[f32],
        out: &mut [f32],
        patches: &mut Patches<f32>,
    ) {
        // SAFETY: as promised.
        unsafe { self.convolve_with::<Fma512>(g, image, out, patches) }
    }

    /// One image: `image` is `[C, H, W]`, `out` is `[O, out_h, out_w]`,
    /// with the panels' tiles on `P`'s vectors (the other layouts keep to
    /// 256-bit ones). Inlined into callers that enable the instructions.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and `P`'s instructions.
    #[inline(always)]
    unsafe fn convolve_with<P>(
        &self,
        g: &Geometry,
        image: &[f32],
        out: &mut [f32],
        patches: &mut Patches<f32>,
    ) where
        P: MultiplyAdd<V: Vector<T = f32>>,
        for<'b> Bias<'b>: Sink<P::V, Out = f32>,
    {
        let (positions, co) = (g.positions(), self.pool_spec.output_channels);
        let bias = Bias {
            bias: &self.bias,
            activation: self.activation,
        };
        // Whole tiles of output positions; past the last position the tiles
        // read stale patches, whose products they do not write.
        match &self.weights {
            Weights::Panels(panels) => {
                let width = positions.next_multiple_of(P::V::LANES);
                let source = patch_matrix(g, image, width, patches);
                multiply::<P, _>(panels, source, (g.taps(), width), out, co, &bias)
            }
            Weights::ByTap(by_tap) => {
                let width = positions.next_multiple_of(ROWS);
                let source = patch_matrix(g, image, width, patches);
                multiply_by_tap::<Fma, _>(by_tap, (source, g.taps(), width), out, co, &bias)
            }
            Weights::Winograd(products, weights) => {
                winograd::convolve(g, image, (*products, weights), &bias, out, patches)
            }
            Weights::Sparse(weights) => {
                let Patches { padded, matrix, .. } = patches;
                let source = g.pad(image, 0.0, padded);
                sparse::multiply::<Fma, _>(weights, source, out, matrix, &bias)
            }
        }
    }
}

/// The patch matrix of `image` for tiles across `width` positions: `image`
/// itself for a 1x1 unpadded convolution whose positions fill whole tiles.
/// Inlined, so that the copies compile for the caller's instructions.
#[inline(always)]
fn patch_matrix<'a>(
    g: &Geometry,
    image: &'a [f32],
    width: usize,
    patches: &'a mut Patches<f32>,
) -> &'a [f32] {
    if g.is_pointwise() && width == g.positions() {
        image
    } else {
        g.im2col(image, width, 0.0, patches)
    }
}

thread_local! {
    /// The patch matrix and padded image, reused from one evaluation to the
    /// next, so that a run does not allocate (and the allocator does not map
    /// and fault in) them anew.
    static PATCHES: std::cell::RefCell<Patches<f32>> = std::cell::RefCell::default();
}

impl Op for PlaneConv {
    fn name(&self) -> StaticName {
        "PlaneConv".into()
    }

    /// The layout of the weights that runs: the plan's notes say which
    /// kernel a convolution takes.
    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![self.layout()])
    }

    op_as_typed_op!();
}

joined::eval_through_convolve!(PlaneConv);

impl TypedOp for PlaneConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.pool_spec.output_facts(inputs)
    }

    as_op!();
}

impl Joinable for PlaneConv {
    const JOINED: &'static str = "PlaneConvConcat";

    fn pool_spec(&self) -> &PoolSpec {
        &self.pool_spec
    }

    fn output_type(&self) -> DatumType {
        f32::datum_type()
    }

    fn geometry(&self, shape: &[usize]) -> TractResult<Geometry> {
        Geometry::new(&self.pool_spec, shape)?.served(|g| self.weights.serve(g))
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
        PATCHES.with_borrow_mut(|patches| {
            let images = src.chunks_exact(layout.image_in);
            for (image, mut out) in images.zip(dst.chunks_exact_mut(layout.image_out)) {
                for (conv, geometry) in convs.iter().zip(&layout.geometries) {
                    let channels = conv.pool_spec.output_channels;
                    let (mine, rest) = out.split_at_mut(channels * layout.positions);
                    conv.run(geometry, image, mine, patches);
                    out = rest;
                }
            }
        });
        Ok(())
    }
}
