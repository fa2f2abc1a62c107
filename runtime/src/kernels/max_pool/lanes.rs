//! Max pooling in registers, for planes whose rows fit a few registers and
//! whose output rows fit two. The maxima down a window's rows stay in
//! registers, and each column of the windows is one lane permutation of
//! them per register it reads, so an output row costs a few dozen
//! instructions. The zoo's 24- and 12-wide planes are this small; for
//! them the passes over memory in [`Window::pool`] spend more time in loop
//! overhead than in maxima: pooling was a quarter of int8 squeeze1 on
//! AVX-512, and a tenth of f32 and int8 squeeze1 on AVX2.
//!
//! Two instruction sets do it: AVX-512 permutes across a pair of
//! registers; AVX2 permutes within one register (8 f32, or for bytes a
//! 16-byte half broadcast to both halves).
//!
//! [`Window::pool`]: super::Window::pool

use std::arch::x86_64::*;

use tract_onnx::prelude::tract_num_traits::Bounded;

use super::{Pools, Window};

/// Row registers an output row's maxima may take.
const ROW_REGISTERS: usize = 4;
/// Registers an output row may take.
const OUT_REGISTERS: usize = 2;

/// An instruction set that pools in registers.
pub(super) trait Isa {
    fn available() -> bool;

    /// Pools every plane of `src` into `dst` with `picks`; see
    /// [`pool_planes`].
    ///
    /// # Safety
    /// As for [`pool_planes`].
    unsafe fn pool_planes<T: Bounded>(
        window: &Window,
        picks: &Picks<Self, T>,
        plane: (usize, usize),
        src: &[T],
        dst: &mut [T],
    ) where
        Self: Registers<T>;
}

/// Elements of type `T` in the registers of an instruction set. All the
/// `unsafe fn`s need a CPU with the instruction set.
pub(super) trait Registers<T>: Isa + Sized {
    /// Outputs per register.
    const LANES: usize;
    /// A register of outputs.
    type Vector: Copy;
    /// Input elements per row register.
    const ROW_LANES: usize;
    /// A register of a row's maxima.
    type Row: Copy;
    /// Row registers one permutation picks from.
    const SPAN: usize;
    /// The type of a lane's index in a permutation.
    type Index: Copy + TryFrom<usize>;
    /// The index of a lane that picks nothing.
    const NONE: Self::Index;

    unsafe fn splat(value: T) -> Self::Vector;
    unsafe fn splat_row(value: T) -> Self::Row;
    /// A row register whose first `n` elements are those at `src`; the
    /// others are never picked.
    ///
    /// # Safety
    /// `src` must hold `readable >= n` elements, `n <= ROW_LANES`.
    unsafe fn load(src: *const T, n: usize, readable: usize) -> Self::Row;
    /// `max(v, acc)` lane by lane, keeping `acc` where `v` is NaN, as
    /// tract's pool does.
    unsafe fn max_row(v: Self::Row, acc: Self::Row) -> Self::Row;
    /// `max(v, acc)`, where `v` picks from the `SPAN` registers at `rows`
    /// the lanes that `index` names, and is the minimum where it names
    /// [`Registers::NONE`].
    ///
    /// # Safety
    /// `rows` must hold `SPAN` registers and `index` `LANES` indexes.
    unsafe fn max_picked(
        acc: Self::Vector,
        rows: *const Self::Row,
        index: *const Self::Index,
    ) -> Self::Vector;
    /// The first `n` lanes of `v` to `dst`; it may write past them, up to
    /// `writable` elements.
    ///
    /// # Safety
    /// `dst` must hold `writable >= n` elements, `n <= LANES`.
    unsafe fn store(dst: *mut T, n: usize, writable: usize, v: Self::Vector);
}

/// AVX-512 F, BW and VBMI.
pub(super) struct Avx512;
/// AVX2.
pub(super) struct Avx2;

impl Isa for Avx512 {
    fn available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn pool_planes<T: Bounded>(
        window: &Window,
        picks: &Picks<Self, T>,
        plane: (usize, usize),
        src: &[T],
        dst: &mut [T],
    ) where
        Self: Registers<T>,
    {
        pool_planes(window, picks, plane, src, dst)
    }
}

impl Isa for Avx2 {
    fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    #[target_feature(enable = "avx2")]
    unsafe fn pool_planes<T: Bounded>(
        window: &Window,
        picks: &Picks<Self, T>,
        plane: (usize, usize),
        src: &[T],
        dst: &mut [T],
    ) where
        Self: Registers<T>,
    {
        pool_planes(window, picks, plane, src, dst)
    }
}

/// The lowest `n` bits.
fn low_bits(n: usize) -> u64 {
    u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
}

impl Registers<f32> for Avx512 {
    const LANES: usize = 16;
    type Vector = __m512;
    const ROW_LANES: usize = 16;
    type Row = __m512;
    const SPAN: usize = 2;
    type Index = i32;
    const NONE: i32 = -1;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat(value: f32) -> __m512 {
        _mm512_set1_ps(value)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat_row(value: f32) -> __m512 {
        _mm512_set1_ps(value)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(src: *const f32, n: usize, _: usize) -> __m512 {
        _mm512_maskz_loadu_ps(low_bits(n) as u16, src)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn max_row(v: __m512, acc: __m512) -> __m512 {
        // vmaxps returns its second operand where either is NaN.
        _mm512_max_ps(v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn max_picked(acc: __m512, rows: *const __m512, index: *const i32) -> __m512 {
        let index = _mm512_loadu_si512(index.cast());
        let picked = _mm512_cmpge_epi32_mask(index, _mm512_setzero_si512());
        let v = _mm512_permutex2var_ps(*rows, index, *rows.add(1));
        _mm512_mask_max_ps(acc, picked, v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(dst: *mut f32, n: usize, _: usize, v: __m512) {
        _mm512_mask_storeu_ps(dst, low_bits(n) as u16, v)
    }
}

/// AVX-512 byte registers, signed or not: all but the comparison is
/// shared.
macro_rules! avx512_bytes {
    ($t:ty, $max:ident, $mask_max:ident) => {
        impl Registers<$t> for Avx512 {
            const LANES: usize = 64;
            type Vector = __m512i;
            const ROW_LANES: usize = 64;
            type Row = __m512i;
            const SPAN: usize = 2;
            type Index = i8;
            const NONE: i8 = -1;

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn splat(value: $t) -> __m512i {
                _mm512_set1_epi8(value as i8)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn splat_row(value: $t) -> __m512i {
                _mm512_set1_epi8(value as i8)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn load(src: *const $t, n: usize, _: usize) -> __m512i {
                _mm512_maskz_loadu_epi8(low_bits(n), src.cast())
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn max_row(v: __m512i, acc: __m512i) -> __m512i {
                $max(v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
            unsafe fn max_picked(acc: __m512i, rows: *const __m512i, index: *const i8) -> __m512i {
                let index = _mm512_loadu_si512(index.cast());
                let picked = _mm512_cmpge_epi8_mask(index, _mm512_setzero_si512());
                let v = _mm512_permutex2var_epi8(*rows, index, *rows.add(1));
                $mask_max(acc, picked, v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn store(dst: *mut $t, n: usize, _: usize, v: __m512i) {
                _mm512_mask_storeu_epi8(dst.cast(), low_bits(n), v)
            }
        }
    };
}

avx512_bytes!(u8, _mm512_max_epu8, _mm512_mask_max_epu8);
avx512_bytes!(i8, _mm512_max_epi8, _mm512_mask_max_epi8);

/// The first `n` of the eight 32-bit lanes, as a mask.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn first_lanes(n: usize) -> __m256i {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes)
}

impl Registers<f32> for Avx2 {
    const LANES: usize = 8;
    type Vector = __m256;
    const ROW_LANES: usize = 8;
    type Row = __m256;
    const SPAN: usize = 1;
    type Index = i32;
    const NONE: i32 = -1;

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn splat(value: f32) -> __m256 {
        _mm256_set1_ps(value)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn splat_row(value: f32) -> __m256 {
        _mm256_set1_ps(value)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(src: *const f32, n: usize, readable: usize) -> __m256 {
        if readable >= 8 {
            _mm256_loadu_ps(src)
        } else {
            _mm256_maskload_ps(src, first_lanes(n))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn max_row(v: __m256, acc: __m256) -> __m256 {
        // vmaxps returns its second operand where either is NaN.
        _mm256_max_ps(v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn max_picked(acc: __m256, rows: *const __m256, index: *const i32) -> __m256 {
        let index = _mm256_loadu_si256(index.cast());
        let v = _mm256_permutevar8x32_ps(*rows, index);
        // Lanes whose index is negative pick the minimum.
        let v = _mm256_blendv_ps(v, _mm256_set1_ps(f32::MIN), _mm256_castsi256_ps(index));
        _mm256_max_ps(v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(dst: *mut f32, n: usize, writable: usize, v: __m256) {
        if writable >= 8 {
            _mm256_storeu_ps(dst, v)
        } else {
            _mm256_maskstore_ps(dst, first_lanes(n), v)
        }
    }
}

/// AVX2 byte registers, signed or not: rows in 16-byte registers, each
/// broadcast to both halves of a 32-byte register for `vpshufb`, which
/// permutes within halves. All but the comparison is shared.
macro_rules! avx2_bytes {
    ($t:ty, $max:ident, $max_row:ident) => {
        impl Registers<$t> for Avx2 {
            const LANES: usize = 32;
            type Vector = __m256i;
            const ROW_LANES: usize = 16;
            type Row = __m128i;
            const SPAN: usize = 1;
            type Index = i8;
            const NONE: i8 = -1;

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn splat(value: $t) -> __m256i {
                _mm256_set1_epi8(value as i8)
            }

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn splat_row(value: $t) -> __m128i {
                _mm_set1_epi8(value as i8)
            }

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn load(src: *const $t, n: usize, readable: usize) -> __m128i {
                if readable >= 16 {
                    _mm_loadu_si128(src.cast())
                } else {
                    let mut bytes = [0 as $t; 16];
                    std::ptr::copy_nonoverlapping(src, bytes.as_mut_ptr(), n);
                    _mm_loadu_si128(bytes.as_ptr().cast())
                }
            }

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn max_row(v: __m128i, acc: __m128i) -> __m128i {
                $max_row(v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn max_picked(acc: __m256i, rows: *const __m128i, index: *const i8) -> __m256i {
                let index = _mm256_loadu_si256(index.cast());
                let v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(*rows), index);
                // Lanes whose index is negative pick the minimum.
                let v = _mm256_blendv_epi8(v, _mm256_set1_epi8(<$t>::MIN as i8), index);
                $max(v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx2")]
            unsafe fn store(dst: *mut $t, n: usize, writable: usize, v: __m256i) {
                if writable >= 32 {
                    _mm256_storeu_si256(dst.cast(), v)
                } else {
                    let mut bytes = [0 as $t; 32];
                    _mm256_storeu_si256(bytes.as_mut_ptr().cast(), v);
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
                }
            }
        }
    };
}

avx2_bytes!(u8, _mm256_max_epu8, _mm_max_epu8);
avx2_bytes!(i8, _mm256_max_epi8, _mm_max_epi8);

/// The windows' columns as permutations of an output row's maxima: for
/// each output register, window column `j` and group of `SPAN` row
/// registers that one of its windows reads, the lane of that group each
/// output reads, or [`Registers::NONE`].
pub(super) struct Picks<I: Registers<T>, T> {
    /// Per output register, its permutations' first row registers.
    firsts: Vec<Vec<usize>>,
    /// `LANES` indexes per permutation, in the order of `firsts`.
    index: Vec<I::Index>,
}

impl<I: Registers<T>, T> Picks<I, T> {
    /// The permutations of `window` over rows of `w`, if its rows and
    /// output rows fit the registers.
    fn new(window: &Window, w: usize) -> Option<Picks<I, T>> {
        let out_w = window.columns.len();
        let group = I::SPAN * I::ROW_LANES;
        if w.div_ceil(I::ROW_LANES) > ROW_REGISTERS || out_w.div_ceil(I::LANES) > OUT_REGISTERS {
            return None;
        }
        let mut index = Vec::new();
        let mut firsts = Vec::new();
        for out in 0..out_w.div_ceil(I::LANES) {
            let outputs = out * I::LANES..((out + 1) * I::LANES).min(out_w);
            let mut out_firsts = Vec::new();
            for j in 0..window.across.width {
                for first in (0..w.div_ceil(group)).map(|g| g * I::SPAN) {
                    // Built in place and dropped if it picks nothing: this
                    // runs on every evaluation, so it allocates no lanes of
                    // its own.
                    let start = index.len();
                    index.resize(start + I::LANES, I::NONE);
                    let mut picked = false;
                    for (lane, ox) in outputs.clone().enumerate() {
                        let column = window.columns[ox].clone().nth(j);
                        if let Some(c) = column.filter(|c| c / group * I::SPAN == first) {
                            index[start + lane] = I::Index::try_from(c % group).ok()?;
                            picked = true;
                        }
                    }
                    if picked {
                        out_firsts.push(first);
                    } else {
                        index.truncate(start);
                    }
                }
            }
            firsts.push(out_firsts);
        }
        Some(Picks { firsts, index })
    }
}

/// Pools `src`, planes of `h x w`, into `dst` in registers; `false`,
/// having done nothing, where the CPU lacks the instructions or the rows
/// are too wide.
pub(super) fn pool<T: Bounded>(
    window: &Window,
    plane: (usize, usize),
    src: &[T],
    dst: &mut [T],
) -> bool
where
    Avx512: Registers<T>,
    Avx2: Registers<T>,
{
    pool_with::<Avx512, T>(window, plane, src, dst) || pool_with::<Avx2, T>(window, plane, src, dst)
}

/// [`pool`] for every type: the one the runtime uses.
pub(super) const FASTEST: Pools = (pool, pool, pool);

/// [`pool_with`] `I` for every type.
#[cfg(test)]
pub(super) fn only<I>() -> Pools
where
    I: Registers<f32> + Registers<u8> + Registers<i8>,
{
    (pool_with::<I, _>, pool_with::<I, _>, pool_with::<I, _>)
}

/// [`pool`] with one instruction set.
pub(super) fn pool_with<I: Registers<T>, T: Bounded>(
    window: &Window,
    plane: (usize, usize),
    src: &[T],
    dst: &mut [T],
) -> bool {
    if !I::available() {
        return false;
    }
    let Some(picks) = Picks::<I, T>::new(window, plane.1) else {
        return false;
    };
    // SAFETY: the CPU has the instructions, and the rows and output rows
    // fit the registers.
    unsafe { I::pool_planes(window, &picks, plane, src, dst) };
    true
}

/// Each output row: the maxima down its window's rows in registers, then
/// the maxima of the picks of each column of the windows. Output rows are
/// stored in order, so a store past a row's end is overwritten later.
///
/// # Safety
/// The CPU must have `I`'s instructions; `picks` must be for `window` and
/// rows of `w`; `src` must hold whole planes of `h x w` and `dst` as many
/// of the window's outputs, at least one.
#[inline(always)]
unsafe fn pool_planes<I: Registers<T>, T: Bounded>(
    window: &Window,
    picks: &Picks<I, T>,
    (h, w): (usize, usize),
    src: &[T],
    dst: &mut [T],
) {
    let out_w = window.columns.len();
    let out_len = window.rows.len() * out_w;
    let (min, min_row) = (I::splat(T::min_value()), I::splat_row(T::min_value()));
    let row_registers = w.div_ceil(I::ROW_LANES);
    for p in 0..dst.len() / out_len {
        for (oy, rows) in window.rows.iter().enumerate() {
            let mut down = [min_row; ROW_REGISTERS];
            for y in rows.clone() {
                let row = (p * h + y) * w;
                for (r, d) in down.iter_mut().enumerate().take(row_registers) {
                    let at = row + r * I::ROW_LANES;
                    let n = (w - r * I::ROW_LANES).min(I::ROW_LANES);
                    *d = I::max_row(I::load(src.as_ptr().add(at), n, src.len() - at), *d);
                }
            }
            // One output register at a time, so that its maxima build up
            // in a register rather than through memory.
            let mut index = picks.index.chunks_exact(I::LANES);
            let row = p * out_len + oy * out_w;
            for (r, firsts) in picks.firsts.iter().enumerate() {
                let mut acc = min;
                for (&first, index) in firsts.iter().zip(&mut index) {
                    acc = I::max_picked(acc, down.as_ptr().add(first), index.as_ptr());
                }
                let at = row + r * I::LANES;
                let n = (out_w - r * I::LANES).min(I::LANES);
                I::store(dst.as_mut_ptr().add(at), n, dst.len() - at, acc);
            }
        }
    }
}
