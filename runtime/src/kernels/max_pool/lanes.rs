//! Max pooling in AVX-512 registers, for planes whose rows fit two vectors
//! (32 f32 or 128 bytes) and whose output rows fit one. The maxima down a
//! window's rows stay in two registers, and each column of the windows is
//! one lane permutation of them, so an output row costs a dozen
//! instructions. The zoo's 24- and 12-wide planes are this small; for
//! them the passes over memory in [`Window::pool`] spend more time in loop
//! overhead than in maxima, and pooling was a quarter of int8 squeeze1.
//!
//! [`Window::pool`]: super::Window::pool

use std::arch::x86_64::*;

use tract_onnx::prelude::tract_num_traits::Bounded;

use super::Window;

/// An element type that pools in AVX-512 registers.
pub(super) trait Lane: Copy + Bounded {
    /// Elements per register.
    const LANES: usize;
    /// A register of elements.
    type Vector: Copy;
    /// The type of a lane's index in a two-register permutation.
    type Index: Copy + Default + TryFrom<usize>;

    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI (as for all below).
    unsafe fn splat(self) -> Self::Vector;
    /// The first `n` elements at `src`, zero past them.
    ///
    /// # Safety
    /// `src` must hold `n <= LANES` elements.
    unsafe fn load(src: *const Self, n: usize) -> Self::Vector;
    /// `max(v, acc)` lane by lane, keeping `acc` where `v` is NaN, as
    /// tract's pool does.
    unsafe fn max(v: Self::Vector, acc: Self::Vector) -> Self::Vector;
    /// `max(acc, v)` in the lanes of `mask`, where `v` picks from the two
    /// `rows` the lanes that `index` (`LANES` indexes) names.
    ///
    /// # Safety
    /// `index` must hold `LANES` indexes.
    unsafe fn max_picked(
        acc: Self::Vector,
        mask: u64,
        rows: [Self::Vector; 2],
        index: *const Self::Index,
    ) -> Self::Vector;
    /// The first `n` lanes of `v` to `dst`.
    ///
    /// # Safety
    /// `dst` must hold `n <= LANES` elements.
    unsafe fn store(dst: *mut Self, n: usize, v: Self::Vector);
}

/// The lowest `n` bits.
fn low_bits(n: usize) -> u64 {
    u64::MAX.checked_shr(64 - n as u32).unwrap_or(0)
}

impl Lane for f32 {
    const LANES: usize = 16;
    type Vector = __m512;
    type Index = i32;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat(self) -> __m512 {
        _mm512_set1_ps(self)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(src: *const f32, n: usize) -> __m512 {
        _mm512_maskz_loadu_ps(low_bits(n) as u16, src)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn max(v: __m512, acc: __m512) -> __m512 {
        // vmaxps returns its second operand where either is NaN.
        _mm512_max_ps(v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn max_picked(
        acc: __m512,
        mask: u64,
        [lo, hi]: [__m512; 2],
        index: *const i32,
    ) -> __m512 {
        let v = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(index.cast()), hi);
        _mm512_mask_max_ps(acc, mask as u16, v, acc)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(dst: *mut f32, n: usize, v: __m512) {
        _mm512_mask_storeu_ps(dst, low_bits(n) as u16, v)
    }
}

/// Byte registers, signed or not: all but the comparison is shared.
macro_rules! byte_lane {
    ($t:ty, $max:ident, $mask_max:ident) => {
        impl Lane for $t {
            const LANES: usize = 64;
            type Vector = __m512i;
            type Index = u8;

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn splat(self) -> __m512i {
                _mm512_set1_epi8(self as i8)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn load(src: *const $t, n: usize) -> __m512i {
                _mm512_maskz_loadu_epi8(low_bits(n), src.cast())
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn max(v: __m512i, acc: __m512i) -> __m512i {
                $max(v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
            unsafe fn max_picked(
                acc: __m512i,
                mask: u64,
                [lo, hi]: [__m512i; 2],
                index: *const u8,
            ) -> __m512i {
                let v = _mm512_permutex2var_epi8(lo, _mm512_loadu_si512(index.cast()), hi);
                $mask_max(acc, mask, v, acc)
            }

            #[inline]
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn store(dst: *mut $t, n: usize, v: __m512i) {
                _mm512_mask_storeu_epi8(dst.cast(), low_bits(n), v)
            }
        }
    };
}

byte_lane!(u8, _mm512_max_epu8, _mm512_mask_max_epu8);
byte_lane!(i8, _mm512_max_epi8, _mm512_mask_max_epi8);

/// The windows' columns as permutations: `(index, mask)` for the `j`th
/// in-bounds column of every output's window, which output `ox` reads from
/// lane `index[ox]` of a row where bit `ox` of `mask` is set.
struct Picks<T: Lane> {
    index: Vec<T::Index>,
    masks: Vec<u64>,
}

impl<T: Lane> Picks<T> {
    fn new(window: &Window) -> Option<Picks<T>> {
        let lanes = T::LANES;
        let mut index = vec![T::Index::default(); window.width * lanes];
        let mut masks = vec![0u64; window.width];
        for (ox, columns) in window.columns.iter().enumerate() {
            for (j, column) in columns.clone().enumerate() {
                index[j * lanes + ox] = T::Index::try_from(column).ok()?;
                masks[j] |= 1 << ox;
            }
        }
        Some(Picks { index, masks })
    }
}

/// Pools `src`, planes of `h x w`, into `dst` in registers; `false`,
/// having done nothing, where the CPU lacks the instructions or the rows
/// are too wide.
pub(super) fn pool<T: Lane>(
    window: &Window,
    (h, w): (usize, usize),
    src: &[T],
    dst: &mut [T],
) -> bool {
    let cpu = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vbmi");
    if !cpu || w > 2 * T::LANES || window.columns.len() > T::LANES {
        return false;
    }
    let Some(picks) = Picks::<T>::new(window) else {
        return false;
    };
    let out_len = window.rows.len() * window.columns.len();
    let planes = src.chunks_exact(h * w).zip(dst.chunks_exact_mut(out_len));
    // SAFETY: the CPU has the instructions, rows fit two registers and
    // output rows one.
    unsafe { pool_each(window, &picks, w, planes) };
    true
}

/// Each output row: the maxima down its window's rows in two registers,
/// then the maxima of the picks of each column of the windows.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `w <= 2 * T::LANES` and
/// `window.columns.len() <= T::LANES`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn pool_each<'a, T: Lane + 'a>(
    window: &Window,
    picks: &Picks<T>,
    w: usize,
    planes: impl Iterator<Item = (&'a [T], &'a mut [T])>,
) {
    let out_w = window.columns.len();
    let min = T::min_value().splat();
    let (lo, hi) = (w.min(T::LANES), w.saturating_sub(T::LANES));
    for (plane, out) in planes {
        for (out_row, rows) in out.chunks_exact_mut(out_w).zip(&window.rows) {
            let mut down = [min; 2];
            for row in plane[rows.start * w..rows.end * w].chunks_exact(w) {
                let row = row.as_ptr();
                down[0] = T::max(T::load(row, lo), down[0]);
                if hi > 0 {
                    down[1] = T::max(T::load(row.add(T::LANES), hi), down[1]);
                }
            }
            let mut acc = min;
            for (j, &mask) in picks.masks.iter().enumerate() {
                acc = T::max_picked(acc, mask, down, picks.index.as_ptr().add(j * T::LANES));
            }
            T::store(out_row.as_mut_ptr(), out_w, acc);
        }
    }
}
