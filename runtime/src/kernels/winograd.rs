//! Winograd's F(2x2, 3x3) for 3x3 convolutions padded by one pixel on
//! every side, over planes of even height and width (squeeze1's 3x3
//! expands). Each 4x4 tile of the padded input, two pixels apart, and each
//! filter go to a domain of 16 points, where the convolution is 16 matrix
//! products of `[O, C]` weights by `[C, tiles]` inputs; each tile gives
//! 2x2 outputs for 16 products per channel pair, where im2col takes 36.
//! On CPUs without AVX-512 (a Zen 1: two 128-bit FMA units) the
//! convolutions are bound by their multiply-adds, so 2.25x fewer of them
//! is what pays; the transforms are a few additions per value.
//!
//! int8 convolutions on CPUs without VNNI take the same transforms in
//! integers: their products are 16-bit pairs already (`vpmaddwd`), the
//! inputs' transforms stay within 16 bits and the weights' are whole
//! numbers when scaled by 4, so the sums are exact and the outputs are the
//! direct convolution's, bit for bit. With VNNI, whose `vpdpbusd` takes
//! bytes, twice as many per instruction, Winograd's 16-bit products would
//! give back most of what they save.
//!
//! With `d` a tile, `g` a filter and `Y` the tile's outputs:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, the matrices as in Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks" (2015).

use std::arch::x86_64::*;

use super::dot::{by_groups, Dot};
use super::frame::{multiply, multiply_by_tap, MultiplyAdd, RawSums, Vector};
use super::patches::{by_tap, pack_panels, Geometry, Patches, ROWS, VECTOR};
use super::x86_64::{Bias, Dots, Fma, Madd, Requantize};

/// Points of the transform domain: one 4x4 tile.
const POINTS: usize = 16;

/// Input channels from which the transforms pay: with fewer, the matrix
/// products are too short to outweigh them (squeeze1's first convolution
/// has 3).
const MIN_CHANNELS: usize = 8;

/// How the 16 matrix products take their operands: as panels of output
/// channels by vectors of tiles ([`multiply`](super::patches::multiply)),
/// or by tap, vectors of channels by a few tiles, whichever fills its lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Products {
    Panels,
    ByTap,
}

impl Products {
    /// The layout for convolutions of geometry `g` to `co` channels, if
    /// this module does them, and does them with fewer multiply-adds than
    /// im2col by a margin for the transforms: the products' tiles must fill
    /// most of their lanes. squeeze1's 12x12 planes fill vectors of tiles
    /// (36 tiles in 40 lanes); its 6x6 planes fill no vector (9 tiles in
    /// 16 lanes) but their channels do, 16 to a tile of 6 tiles (9 in 12).
    pub fn paying(g: &Geometry, co: usize) -> Option<Products> {
        if !g.is_same_3x3_even() || g.channels < MIN_CHANNELS {
            return None;
        }
        let tiles = Tiles::new(g);
        // Lanes of products per input and output channel: Winograd's,
        // against 3/4 of im2col's 9 per position.
        let pays = |lanes: usize| 4 * POINTS * lanes < 3 * 9 * g.positions();
        if pays(tiles.count.next_multiple_of(VECTOR)) {
            Some(Products::Panels)
        } else if co.is_multiple_of(2 * VECTOR) && pays(tiles.count.next_multiple_of(ROWS)) {
            Some(Products::ByTap)
        } else {
            None
        }
    }
}

/// `G g Gᵀ` of each 3x3 filter `g` of `weights`, `[O][C][3][3]`: `[point][O,
/// C]`, in f64, so that the transformed weights carry no rounding of their
/// own (every value is a whole number of quarters of the weights').
fn transform_filters(weights: &[f64]) -> Vec<Vec<f64>> {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut points = vec![vec![0.0; weights.len() / 9]; POINTS];
    for (filter, g) in weights.chunks_exact(9).enumerate() {
        for (point, u) in points.iter_mut().enumerate() {
            let (i, j) = (point / 4, point % 4);
            let mut sum = 0.0;
            for (a, row) in g.chunks_exact(3).enumerate() {
                for (b, &w) in row.iter().enumerate() {
                    sum += G[i][a] * w * G[j][b];
                }
            }
            u[filter] = sum;
        }
    }
    points
}

/// `weights`, `[O][C][3][3]`, as `G g Gᵀ` for each filter: `[point][O, C]`,
/// each point's matrix packed as [`pack_panels`] does for `C` taps, or
/// `[C][O]` for [`Products::ByTap`].
pub fn transform_weights(weights: &[f32], co: usize, ci: usize, products: Products) -> Vec<f32> {
    assert_eq!(weights.len(), co * ci * 9);
    let weights: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
    (transform_filters(&weights).iter())
        .flat_map(|u| {
            let u: Vec<f32> = u.iter().map(|&v| v as f32).collect();
            match products {
                Products::Panels => pack_panels::<f32, 1>(&u, ci),
                Products::ByTap => by_tap(&u, ci),
            }
        })
        .collect()
}

/// int8 `weights`, `[O][C][3][3]`, as `4 G g Gᵀ` for each filter (whole
/// numbers, at most 9 * 128 in size): `[point][O, C]`, each point's matrix
/// in words of two channels' 16-bit values, packed in panels or by tap as
/// [`convolve_int8`]'s products take them.
pub fn transform_int8_weights(
    weights: &[i8],
    co: usize,
    ci: usize,
    products: Products,
) -> Vec<u32> {
    assert_eq!(weights.len(), co * ci * 9);
    let weights: Vec<f64> = weights.iter().map(|&w| f64::from(w)).collect();
    let groups = ci.div_ceil(Dot::Avx2.group());
    (transform_filters(&weights).iter())
        .flat_map(|u| {
            let u: Vec<i32> = u.iter().map(|&v| (4.0 * v) as i32).collect();
            let words = by_groups(&u, ci, ci, Dot::Avx2);
            match products {
                Products::Panels => pack_panels::<u32, 1>(&words, groups),
                Products::ByTap => by_tap(&words, groups),
            }
        })
        .collect()
}

/// One image, `[C, H, W]`, into `out`, `[O, H, W]`: the input transform,
/// the 16 matrix products with `weights` (from [`transform_weights`] for
/// `products`), then the output transform with `bias`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `g` must be [`Geometry::is_same_3x3_even`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn convolve(
    g: &Geometry,
    image: &[f32],
    (products, weights): (Products, &[f32]),
    bias: &Bias,
    out: &mut [f32],
    patches: &mut Patches<f32>,
) {
    let (ci, co) = (g.channels, out.len() / g.positions());
    let tiles = Tiles::new(g);
    let (stride, len) = layout(&tiles, products, co, ci);
    assert_eq!(weights.len(), POINTS * len);
    let multiply_point = |p: usize, v: &[f32], m: &mut [f32]| {
        let u = (products, &weights[p * len..][..len]);
        float_sums(u, v, (ci, tiles.width), m, co)
    };
    let products = (stride, multiply_point);
    transform_multiply::<Floats, _>(g, &tiles, (image, 0.0), products, bias, out, patches)
}

/// One image of int8 activations, `[C / 2, H, W]` words of two channels'
/// bytes (as [`PlaneQConv`](super::PlaneQConv) packs them for AVX2) padded
/// by `pad`, into `out`, `[O, H, W]`: the input transform, the 16 integer
/// matrix products with `weights` (from [`transform_int8_weights`] for
/// `products`), then the output transform, requantized.
///
/// # Safety
/// The CPU must have AVX2; `g`, the geometry of the words, must be
/// [`Geometry::is_same_3x3_even`].
#[target_feature(enable = "avx2")]
pub unsafe fn convolve_int8(
    g: &Geometry,
    image: (&[u32], u32),
    (products, weights): (Products, &[u32]),
    requantize: &Requantize,
    out: &mut [u8],
    patches: &mut Patches<u32>,
) {
    let (groups, co) = (g.channels, out.len() / g.positions());
    let tiles = Tiles::new(g);
    let (stride, len) = layout(&tiles, products, co, groups);
    assert_eq!(weights.len(), POINTS * len);
    let multiply_point = |p: usize, v: &[u32], m: &mut [u32]| {
        let u = (products, &weights[p * len..][..len]);
        int8_sums(u, v, (groups, tiles.width), m, co)
    };
    let products = (stride, multiply_point);
    transform_multiply::<Pairs, _>(g, &tiles, image, products, requantize, out, patches)
}

/// From one output channel's products to the next, and the length of a
/// point's weights, for `co` outputs of `taps` weights each: panels store
/// whole vectors of tiles, rows `width` apart, and pad the channels to
/// whole panels; by tap, rows of `count` tiles.
fn layout(tiles: &Tiles, products: Products, co: usize, taps: usize) -> (usize, usize) {
    match products {
        Products::Panels => (tiles.width, co.div_ceil(ROWS) * ROWS * taps),
        Products::ByTap => (tiles.count, co * taps),
    }
}

/// One point's matrix product into `out`, `[co][positions]`: the sums as
/// they are, of `weights` laid out for `products` and `source`, `steps`
/// rows `width` apart. Inlined into the two below, which enable `M`'s
/// instructions.
#[inline(always)]
unsafe fn sums<M: MultiplyAdd>(
    (products, weights): (Products, &[<M::V as Vector>::T]),
    source: &[<M::V as Vector>::T],
    (steps, width): (usize, usize),
    out: &mut [<M::V as Vector>::T],
    co: usize,
) {
    match products {
        Products::Panels => multiply::<M, _>(weights, source, (steps, width), out, co, &RawSums),
        Products::ByTap => {
            multiply_by_tap::<M, _>(weights, (source, steps, width), out, co, &RawSums)
        }
    }
}

/// [`sums`] of f32 values, with FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn float_sums(
    u: (Products, &[f32]),
    v: &[f32],
    shape: (usize, usize),
    m: &mut [f32],
    co: usize,
) {
    sums::<Fma>(u, v, shape, m, co)
}

/// [`sums`] of words of two channels' 16-bit values, with `vpmaddwd`.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn int8_sums(
    u: (Products, &[u32]),
    v: &[u32],
    shape: (usize, usize),
    m: &mut [u32],
    co: usize,
) {
    sums::<Dots<Madd>>(u, v, shape, m, co)
}

/// The steps both kinds share: the input transform of `image` (its planes
/// padded by its second value), for each point `multiply(point, inputs,
/// products)` from its transformed inputs, `[C][width]`, to its products,
/// `[O][stride]`, then the output transform through `epilogue`.
#[inline(always)]
unsafe fn transform_multiply<I: Lanes, E: Epilogue>(
    g: &Geometry,
    tiles: &Tiles,
    (image, pad): (&[Element<I>], Element<I>),
    (stride, multiply): (usize, impl Fn(usize, &[Element<I>], &mut [Element<I>])),
    epilogue: &E,
    out: &mut [E::Out],
    patches: &mut Patches<Element<I>>,
) where
    E::L: Lanes<V = I::V>,
{
    let (ci, co) = (g.channels, out.len() / g.positions());
    let Patches {
        padded,
        matrix,
        products,
        ..
    } = patches;
    let inputs = tiles.transform_input::<I>(image, ci, pad, padded, matrix);
    // The output transform's last vector reads up to `VECTOR` past.
    products.resize(POINTS * co * stride + VECTOR, Default::default());
    for (p, v) in inputs.chunks_exact(ci * tiles.width).enumerate() {
        multiply(p, v, &mut products[p * co * stride..][..co * stride]);
    }
    tiles.transform_output((products, stride), epilogue, out);
}

/// The vector arithmetic of the transforms.
trait Lanes {
    type V: Vector;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
}

/// The elements of [`Lanes`].
type Element<L> = <<L as Lanes>::V as Vector>::T;

/// f32 values.
struct Floats;

/// Integer lanes of `BITS` bits in 32-bit words: 16 for the int8
/// activations' pairs of channels, whose transforms stay within ±1,020;
/// 32 for their products' sums.
struct Ints<const BITS: u32>;

type Pairs = Ints<16>;
type Sums = Ints<32>;

impl Lanes for Floats {
    type V = __m256;
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
}

impl<const BITS: u32> Lanes for Ints<BITS> {
    type V = __m256i;
    #[inline(always)]
    unsafe fn add(a: __m256i, b: __m256i) -> __m256i {
        match BITS {
            16 => _mm256_add_epi16(a, b),
            _ => _mm256_add_epi32(a, b),
        }
    }
    #[inline(always)]
    unsafe fn sub(a: __m256i, b: __m256i) -> __m256i {
        match BITS {
            16 => _mm256_sub_epi16(a, b),
            _ => _mm256_sub_epi32(a, b),
        }
    }
}

/// What becomes of a channel's outputs after the output transform.
trait Epilogue {
    /// The products' lanes.
    type L: Lanes;
    type Out: Copy;
    /// Writes row `(left, right)` of output channel `k`'s tiles, the tiles'
    /// left and right outputs, side by side: `n` outputs from `at` in
    /// `out`. Whole vectors where `out` has room: what they write past the
    /// `n` outputs is the next outputs', written after.
    unsafe fn store(
        &self,
        k: usize,
        row: (<Self::L as Lanes>::V, <Self::L as Lanes>::V),
        out: &mut [Self::Out],
        at: usize,
        n: usize,
    );
}

impl Epilogue for Bias<'_> {
    type L = Floats;
    type Out = f32;

    #[inline(always)]
    unsafe fn store(
        &self,
        k: usize,
        (left, right): (__m256, __m256),
        out: &mut [f32],
        at: usize,
        n: usize,
    ) {
        let b = _mm256_set1_ps(self.bias[k]);
        let (left, right) = (
            self.activate(_mm256_add_ps(left, b)),
            self.activate(_mm256_add_ps(right, b)),
        );
        let (lo, hi) = (
            _mm256_unpacklo_ps(left, right),
            _mm256_unpackhi_ps(left, right),
        );
        let pairs = [
            _mm256_permute2f128_ps(lo, hi, 0x20),
            _mm256_permute2f128_ps(lo, hi, 0x31),
        ];
        if at + 2 * VECTOR <= out.len() {
            let dst = out[at..][..2 * VECTOR].as_mut_ptr();
            _mm256_storeu_ps(dst, pairs[0]);
            _mm256_storeu_ps(dst.add(VECTOR), pairs[1]);
        } else {
            let mut lanes = [0.0f32; 2 * VECTOR];
            _mm256_storeu_ps(lanes.as_mut_ptr(), pairs[0]);
            _mm256_storeu_ps(lanes[VECTOR..].as_mut_ptr(), pairs[1]);
            out[at..][..n].copy_from_slice(&lanes[..n]);
        }
    }
}

/// int8 outputs: the transform's sums are four times the convolution's
/// (the weights are `4 G g Gᵀ`), so a shift right by two gives them
/// exactly; then the channel's offset, and requantization.
impl Epilogue for Requantize<'_> {
    type L = Sums;
    type Out = u8;

    #[inline(always)]
    unsafe fn store(
        &self,
        k: usize,
        (left, right): (__m256i, __m256i),
        out: &mut [u8],
        at: usize,
        n: usize,
    ) {
        let offset = _mm256_set1_epi32(self.offsets[k]);
        let (left, right) = (
            self.apply(k, _mm256_add_epi32(_mm256_srai_epi32::<2>(left), offset)),
            self.apply(k, _mm256_add_epi32(_mm256_srai_epi32::<2>(right), offset)),
        );
        let (lo, hi) = (
            _mm256_unpacklo_epi32(left, right),
            _mm256_unpackhi_epi32(left, right),
        );
        let bytes = _mm_unpacklo_epi64(
            self.narrow(_mm256_permute2x128_si256(lo, hi, 0x20)),
            self.narrow(_mm256_permute2x128_si256(lo, hi, 0x31)),
        );
        if at + 2 * VECTOR <= out.len() {
            _mm_storeu_si128(out[at..][..2 * VECTOR].as_mut_ptr().cast(), bytes);
        } else {
            let mut lanes = [0u8; 2 * VECTOR];
            _mm_storeu_si128(lanes.as_mut_ptr().cast(), bytes);
            out[at..][..n].copy_from_slice(&lanes[..n]);
        }
    }
}

/// The tiles of a plane, each two rows and columns of outputs.
struct Tiles {
    /// Tile rows and columns.
    rows: usize,
    columns: usize,
    /// `rows * columns`.
    count: usize,
    /// From one row of the transformed input to the next: the tiles, and
    /// past them the slack that the last vector of tiles writes and that
    /// the last tile of 6 reads ([`multiply_by_tap`]).
    width: usize,
    /// Vectors of tiles across a row of tiles.
    chunks: usize,
}

impl Tiles {
    fn new(g: &Geometry) -> Tiles {
        assert!(g.is_same_3x3_even());
        let (rows, columns) = (g.out_h / 2, g.out_w / 2);
        let chunks = columns.div_ceil(VECTOR);
        Tiles {
            rows,
            columns,
            count: rows * columns,
            width: ((rows - 1) * columns + chunks * VECTOR)
                .max((rows * columns).next_multiple_of(ROWS))
                .next_multiple_of(VECTOR),
            chunks,
        }
    }

    /// `Bᵀ d B` of every tile `d` of `image`, `[C, H, W]` padded by `pad`,
    /// as `[point][C][width]` in `matrix`. Each plane's rows go first to
    /// `split`, their even and odd columns apart (the padding around them);
    /// then for each tile row, a vector of tiles at a time, `Bᵀ d` down the
    /// four rows of the columns each tile starts at and of those one on,
    /// and `(Bᵀ d) B` across from them: no lane shuffles.
    #[inline(always)]
    unsafe fn transform_input<'a, L: Lanes>(
        &self,
        image: &[Element<L>],
        channels: usize,
        pad: Element<L>,
        split: &mut Vec<Element<L>>,
        matrix: &'a mut Vec<Element<L>>,
    ) -> &'a [Element<L>] {
        let (h, w) = (2 * self.rows, 2 * self.columns);
        assert!(image.len() >= channels * h * w);
        // Padded row `r` (image row `r - 1`) is `[even | odd]`, each `half`
        // long: room for the loads one column on.
        let half = VECTOR * self.chunks + VECTOR;
        let row = 2 * half;
        split.clear();
        split.resize((h + 2) * row, pad);
        matrix.resize(POINTS * channels * self.width, Default::default());
        for (c, plane) in image.chunks_exact(h * w).take(channels).enumerate() {
            // Padded column 2j + 1 is image column 2j, and 2j + 2 is 2j + 1.
            // The padding (column 0 and w + 1, rows 0 and h + 1) stays.
            for (y, pixels) in plane.chunks_exact(w).enumerate() {
                let (even, odd) = split[(y + 1) * row..][..row].split_at_mut(half);
                for (j, pair) in pixels.chunks_exact(2).enumerate() {
                    odd[j] = pair[0];
                    even[j + 1] = pair[1];
                }
            }
            for ty in 0..self.rows {
                // SAFETY: the four rows from padded row 2 * ty are in
                // `split`, and the loads end `VECTOR` past their columns.
                let rows = split[2 * ty * row..][..4 * row].as_ptr();
                for q in 0..self.chunks {
                    let at = VECTOR * q;
                    let e0 = down::<L>(rows, row, at);
                    let e1 = down::<L>(rows, row, at + 1);
                    let o0 = down::<L>(rows, row, half + at);
                    let o1 = down::<L>(rows, row, half + at + 1);
                    for i in 0..4 {
                        let across = [
                            L::sub(e0[i], e1[i]),
                            L::add(o0[i], e1[i]),
                            L::sub(e1[i], o0[i]),
                            L::sub(o0[i], o1[i]),
                        ];
                        for (j, v) in across.into_iter().enumerate() {
                            // The last vector of a row ends at `width` at
                            // most; past the row's tiles it writes the next
                            // tile row's, rewritten after, or the slack.
                            let to =
                                ((i * 4 + j) * channels + c) * self.width + ty * self.columns + at;
                            v.store(matrix[to..][..VECTOR].as_mut_ptr());
                        }
                    }
                }
            }
        }
        matrix
    }

    /// `Aᵀ m A` of every tile's products `m`, `[point][O][stride]`, to its
    /// 2x2 outputs in `out`, `[O, 2 * rows, 2 * columns]`, through
    /// `epilogue`.
    #[inline(always)]
    unsafe fn transform_output<E: Epilogue>(
        &self,
        (products, stride): (&[Element<E::L>], usize),
        epilogue: &E,
        out: &mut [E::Out],
    ) {
        let out_w = 2 * self.columns;
        let co = out.len() / (4 * self.count);
        let point = co * stride;
        assert!(stride >= self.count && products.len() >= POINTS * point + VECTOR);
        let zero = <E::L as Lanes>::V::zero();
        for k in 0..co {
            for ty in 0..self.rows {
                // Last vector first: what it writes past the row goes to the
                // next rows' first vectors, written after.
                for q in (0..self.chunks).rev() {
                    let t = k * stride + ty * self.columns + VECTOR * q;
                    let mut m = [zero; POINTS];
                    for (p, m) in m.iter_mut().enumerate() {
                        // SAFETY: the assert above bounds the last vector
                        // of the last channel of the last point, which
                        // ends at most `VECTOR` past the row's tiles.
                        *m = Vector::load(products.as_ptr().add(p * point + t));
                    }
                    // `Aᵀ m` down the columns, then `(Aᵀ m) A` across.
                    let (mut s, mut d) = ([zero; 4], [zero; 4]);
                    for j in 0..4 {
                        (s[j], d[j]) = a_t::<E::L>([m[j], m[4 + j], m[8 + j], m[12 + j]]);
                    }
                    let rows = [a_t::<E::L>(s), a_t::<E::L>(d)];
                    let n = 2 * (self.columns - VECTOR * q).min(VECTOR);
                    for (dy, row) in rows.into_iter().enumerate() {
                        let at = (k * 2 * self.rows + 2 * ty + dy) * out_w + 2 * VECTOR * q;
                        epilogue.store(k, row, out, at, n);
                    }
                }
            }
        }
    }
}

/// `Bᵀ d` down four rows `stride` apart from `rows`, at `at` in each: the
/// rows of the four rows' combinations.
///
/// # Safety
/// `rows` must hold `3 * stride + at + VECTOR` values.
#[inline(always)]
unsafe fn down<L: Lanes>(rows: *const Element<L>, stride: usize, at: usize) -> [L::V; 4] {
    let mut r = [L::V::zero(); 4];
    for (i, r) in r.iter_mut().enumerate() {
        *r = L::V::load(rows.add(i * stride + at));
    }
    [
        L::sub(r[0], r[2]),
        L::add(r[1], r[2]),
        L::sub(r[2], r[1]),
        L::sub(r[1], r[3]),
    ]
}

/// `Aᵀ v`: `(v0 + v1 + v2, v1 - v2 - v3)`.
#[inline(always)]
unsafe fn a_t<L: Lanes>(v: [L::V; 4]) -> (L::V, L::V) {
    (
        L::add(L::add(v[0], v[1]), v[2]),
        L::sub(L::sub(v[1], v[2]), v[3]),
    )
}
