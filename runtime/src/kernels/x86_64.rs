//! The instructions behind [`frame`](super::frame)'s traits on x86-64:
//! 256-bit vectors of f32 and of 32-bit words (and 512-bit ones of f32 on
//! AVX-512), FMA and the integer dot products, and the sinks that finish a kernel's sums (bias and activation
//! for f32, requantization for int8). The ops and Winograd's transforms all
//! take them from here, so that no op file imports another's.

use std::arch::x86_64::*;

use super::frame::{Across, MultiplyAdd, Sink, Vector};
use super::patches::VECTOR;

impl Vector for __m256 {
    type T = f32;
    const LANES: usize = VECTOR;
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m256 {
        _mm256_loadu_ps(from)
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        _mm256_storeu_ps(to, self)
    }
}

impl Vector for __m256i {
    type T = u32;
    const LANES: usize = VECTOR;
    #[inline(always)]
    unsafe fn zero() -> __m256i {
        _mm256_setzero_si256()
    }
    #[inline(always)]
    unsafe fn load(from: *const u32) -> __m256i {
        _mm256_loadu_si256(from.cast())
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut u32) {
        _mm256_storeu_si256(to.cast(), self)
    }
}

/// [`Activation`] of the vector `x`, in the instruction set whose
/// broadcast, min, max, mul and add intrinsics are named.
macro_rules! activated {
    ($activation:expr, $x:ident, $set1:ident, $min:ident, $max:ident, $mul:ident, $add:ident) => {
        match $activation {
            Activation::Clamp { lo, hi } => $min($max($x, $set1(lo)), $set1(hi)),
            Activation::HardSwish { alpha, beta } => {
                let t = $add($mul($set1(alpha), $x), $set1(beta));
                $mul($x, $max($min(t, $set1(1.0)), $set1(0.0)))
            }
        }
    };
}

/// What an f32 convolution's sums go through before they are stored: the
/// activation after it in the file, applied in registers so that it costs
/// no pass of its own over the output. Each is tract's ops in tract's
/// order, so the values are those of the unfused graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `min(max(x, lo), hi)`: none, ReLU, or ReLU6 (ONNX's Clip, which
    /// tract spells Max then Min).
    Clamp { lo: f32, hi: f32 },
    /// `x * max(min(alpha * x + beta, 1), 0)`: HardSwish, as ONNX's
    /// HardSigmoid then a Mul spell it.
    HardSwish { alpha: f32, beta: f32 },
}

impl Activation {
    pub const NONE: Activation = Activation::Clamp {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
    #[cfg(test)]
    pub const RELU: Activation = Activation::Clamp {
        lo: 0.0,
        hi: f32::INFINITY,
    };

    #[inline(always)]
    pub(super) fn scalar(self, x: f32) -> f32 {
        match self {
            Activation::Clamp { lo, hi } => x.max(lo).min(hi),
            Activation::HardSwish { alpha, beta } => x * (alpha * x + beta).min(1.0).max(0.0),
        }
    }

    /// # Safety
    /// The CPU must have AVX.
    #[inline(always)]
    pub(super) unsafe fn m256(self, x: __m256) -> __m256 {
        activated!(
            self,
            x,
            _mm256_set1_ps,
            _mm256_min_ps,
            _mm256_max_ps,
            _mm256_mul_ps,
            _mm256_add_ps
        )
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline(always)]
    pub(super) unsafe fn m512(self, x: __m512) -> __m512 {
        activated!(
            self,
            x,
            _mm512_set1_ps,
            _mm512_min_ps,
            _mm512_max_ps,
            _mm512_mul_ps,
            _mm512_add_ps
        )
    }
}

/// tract compares ops to merge twins; the parameters are never NaN, which
/// would only cost a missed merge.
impl Eq for Activation {}

/// f32 outputs: from the channel's bias, then the activation.
pub(super) struct Bias<'a> {
    /// One per output channel, in whole panels.
    pub bias: &'a [f32],
    pub activation: Activation,
}

impl Bias<'_> {
    /// `sums`, from the bias already, through the activation.
    #[inline(always)]
    pub(super) unsafe fn activate(&self, sums: __m256) -> __m256 {
        self.activation.m256(sums)
    }
}

impl Across<__m256> for Bias<'_> {
    #[inline(always)]
    unsafe fn starts(&self, k: usize) -> __m256 {
        _mm256_loadu_ps(self.bias[k..][..VECTOR].as_ptr())
    }

    #[inline(always)]
    unsafe fn finish(&self, sums: __m256) -> __m256 {
        self.activate(sums)
    }
}

impl Sink<__m256> for Bias<'_> {
    type Out = f32;

    #[inline(always)]
    unsafe fn start(&self, k: usize) -> __m256 {
        _mm256_set1_ps(self.bias[k])
    }

    #[inline(always)]
    unsafe fn store(&self, _: usize, sums: __m256, dst: *mut f32, n: usize) {
        let v = self.activate(sums);
        if n == VECTOR {
            _mm256_storeu_ps(dst, v);
        } else {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
            _mm256_maskstore_ps(dst, mask, v);
        }
    }
}

/// f32 fused multiply-adds.
pub(super) struct Fma;

impl MultiplyAdd for Fma {
    type V = __m256;
    #[inline(always)]
    unsafe fn broadcast(from: *const f32) -> __m256 {
        _mm256_broadcast_ss(&*from)
    }
    #[inline(always)]
    unsafe fn multiply_add(sum: __m256, a: __m256, v: __m256) -> __m256 {
        _mm256_fmadd_ps(a, v, sum)
    }
}

/// 512-bit f32 vectors, for the panels of f32 convolutions on AVX-512.
impl Vector for __m512 {
    type T = f32;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m512 {
        _mm512_loadu_ps(from)
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        _mm512_storeu_ps(to, self)
    }
}

/// f32 fused multiply-adds on 512-bit vectors (AVX-512F).
pub(super) struct Fma512;

impl MultiplyAdd for Fma512 {
    type V = __m512;
    #[inline(always)]
    unsafe fn broadcast(from: *const f32) -> __m512 {
        _mm512_set1_ps(from.read())
    }
    #[inline(always)]
    unsafe fn multiply_add(sum: __m512, a: __m512, v: __m512) -> __m512 {
        _mm512_fmadd_ps(a, v, sum)
    }
}

impl Sink<__m512> for Bias<'_> {
    type Out = f32;

    #[inline(always)]
    unsafe fn start(&self, k: usize) -> __m512 {
        _mm512_set1_ps(self.bias[k])
    }

    #[inline(always)]
    unsafe fn store(&self, _: usize, sums: __m512, dst: *mut f32, n: usize) {
        let v = self.activation.m512(sums);
        // A mask of the first `n` lanes: all 16 when the vector is whole.
        let mask = (u32::MAX >> (32 - n)) as __mmask16;
        _mm512_mask_storeu_ps(dst, mask, v);
    }
}

/// Dot products of words of channels' weights and activations, with the
/// instruction `P`.
pub(super) struct Dots<P>(std::marker::PhantomData<P>);

/// One dot-product instruction over 32-bit words of channels.
pub(super) trait WordProduct {
    /// `sum` plus the dot products of `a`'s words (weights) and `v`'s
    /// (activations).
    unsafe fn dot(sum: __m256i, a: __m256i, v: __m256i) -> __m256i;
}

impl<P: WordProduct> MultiplyAdd for Dots<P> {
    type V = __m256i;
    #[inline(always)]
    unsafe fn broadcast(from: *const u32) -> __m256i {
        _mm256_set1_epi32(from.read() as i32)
    }
    #[inline(always)]
    unsafe fn multiply_add(sum: __m256i, a: __m256i, v: __m256i) -> __m256i {
        P::dot(sum, a, v)
    }
}

/// VNNI's `vpdpbusd` over words of four channels' bytes: AVX-512 VNNI's
/// encoding, or with `VEX` AVX-VNNI's (CPUs without AVX-512).
pub(super) struct Vnni<const VEX: bool>;

impl<const VEX: bool> WordProduct for Vnni<VEX> {
    #[inline(always)]
    unsafe fn dot(sum: __m256i, a: __m256i, v: __m256i) -> __m256i {
        if VEX {
            _mm256_dpbusd_avx_epi32(sum, v, a)
        } else {
            _mm256_dpbusd_epi32(sum, v, a)
        }
    }
}

/// AVX2's `vpmaddwd` over words of two channels' 16-bit values, then an
/// add.
pub(super) struct Madd;

impl WordProduct for Madd {
    #[inline(always)]
    unsafe fn dot(sum: __m256i, a: __m256i, v: __m256i) -> __m256i {
        _mm256_add_epi32(sum, _mm256_madd_epi16(v, a))
    }
}

/// How sums become output bytes: from the channel's offset, scaled,
/// rounded half to even, moved to the output's zero point and clamped to
/// its range.
pub(super) struct Requantize<'a> {
    /// One per output channel, in whole panels.
    pub offsets: &'a [i32],
    /// One per output channel (f32 bits), in whole panels.
    pub scales: &'a [u32],
    pub zero: i32,
    pub range: (i32, i32),
}

impl Requantize<'_> {
    /// Output channel `k`'s `sums`, offset included, as outputs in range.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, k: usize, sums: __m256i) -> __m256i {
        let scale = _mm256_set1_ps(f32::from_bits(self.scales[k]));
        // Rounds half to even: the MXCSR default.
        let q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), scale));
        let q = _mm256_add_epi32(q, _mm256_set1_epi32(self.zero));
        let q = _mm256_max_epi32(q, _mm256_set1_epi32(self.range.0));
        _mm256_min_epi32(q, _mm256_set1_epi32(self.range.1))
    }

    /// Outputs in range as bytes, in the low eight lanes: in range
    /// already, so the saturating packs only narrow.
    #[inline(always)]
    pub(super) unsafe fn narrow(&self, q: __m256i) -> __m128i {
        let halves = (_mm256_castsi256_si128(q), _mm256_extracti128_si256::<1>(q));
        let shorts = _mm_packs_epi32(halves.0, halves.1);
        if self.range.0 < 0 {
            _mm_packs_epi16(shorts, shorts)
        } else {
            _mm_packus_epi16(shorts, shorts)
        }
    }
}

impl Sink<__m256i> for Requantize<'_> {
    type Out = u8;

    #[inline(always)]
    unsafe fn start(&self, k: usize) -> __m256i {
        _mm256_set1_epi32(self.offsets[k])
    }

    #[inline(always)]
    unsafe fn store(&self, k: usize, sums: __m256i, dst: *mut u8, n: usize) {
        let bytes = self.narrow(self.apply(k, sums));
        if n == VECTOR {
            _mm_storel_epi64(dst.cast(), bytes);
        } else {
            let mut lanes = [0u8; 16];
            _mm_storeu_si128(lanes.as_mut_ptr().cast(), bytes);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, n);
        }
    }
}
