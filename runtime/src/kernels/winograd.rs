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
//! With `d` a tile, `g` a filter and `Y` the tile's outputs:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, the matrices as in Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks" (2015).

use std::arch::x86_64::*;

use super::conv::{multiply, multiply_by_tap, Product};
use super::patches::{by_tap, pack_panels, Geometry, Patches, ROWS, VECTOR};

/// Points of the transform domain: one 4x4 tile.
const POINTS: usize = 16;

/// Input channels from which the transforms pay: with fewer, the matrix
/// products are too short to outweigh them (squeeze1's first convolution
/// has 3).
const MIN_CHANNELS: usize = 8;

/// How the 16 matrix products take their operands: as [`multiply`] (panels
/// of output channels by vectors of tiles) or as [`multiply_by_tap`]
/// (vectors of channels by a few tiles), whichever fills its lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// `weights`, `[O][C][3][3]`, as `G g Gᵀ` for each filter: `[point][O, C]`,
/// each point's matrix packed as [`pack_panels`] does for `C` taps, or
/// `[C][O]` for [`Products::ByTap`]. Computed in f64, so that the weights
/// carry no rounding of their own.
pub fn transform_weights(weights: &[f32], co: usize, ci: usize, products: Products) -> Vec<f32> {
    const G: [[f64; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    assert_eq!(weights.len(), co * ci * 9);
    let mut points = vec![vec![0.0f32; co * ci]; POINTS];
    for (filter, g) in weights.chunks_exact(9).enumerate() {
        for (point, u) in points.iter_mut().enumerate() {
            let (i, j) = (point / 4, point % 4);
            let mut sum = 0.0;
            for (a, row) in g.chunks_exact(3).enumerate() {
                for (b, &w) in row.iter().enumerate() {
                    sum += G[i][a] * f64::from(w) * G[j][b];
                }
            }
            u[filter] = sum as f32;
        }
    }
    (points.iter())
        .flat_map(|u| match products {
            Products::Panels => pack_panels::<f32, 1>(u, ci),
            Products::ByTap => by_tap(u, ci),
        })
        .collect()
}

/// One image, `[C, H, W]`, into `out`, `[O, H, W]`: the input transform,
/// the 16 matrix products with `weights` (from [`transform_weights`] for
/// `products`), then the output transform with `bias` (one per channel, in
/// whole panels) and ReLU if asked.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `g` must be [`Geometry::is_same_3x3_even`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn convolve(
    g: &Geometry,
    image: &[f32],
    (products, weights): (Products, &[f32]),
    (bias, relu): (&[f32], bool),
    out: &mut [f32],
    patches: &mut Patches<f32>,
) {
    assert!(g.is_same_3x3_even());
    let (ci, co) = (g.channels, out.len() / g.positions());
    let tiles = Tiles::new(g);
    // Panels store whole vectors of tiles, rows `width` apart; by tap, rows
    // of `count` tiles.
    let (stride, panels) = match products {
        Products::Panels => (tiles.width, co.div_ceil(ROWS) * ROWS),
        Products::ByTap => (tiles.count, co),
    };
    assert_eq!(weights.len(), POINTS * panels * ci);
    let Patches {
        padded,
        matrix,
        products: point_products,
    } = patches;
    let inputs = tiles.transform_input(image, ci, padded, matrix);
    // The output transform's last vector reads up to `VECTOR` past.
    point_products.resize(POINTS * co * stride + VECTOR, 0.0);
    let point_weights = weights.chunks_exact(weights.len() / POINTS);
    let point_inputs = inputs.chunks_exact(ci * tiles.width);
    for (p, (u, v)) in point_weights.zip(point_inputs).enumerate() {
        let m = &mut point_products[p * co * stride..][..co * stride];
        let product = Product {
            source: v,
            taps: ci,
            width: tiles.width,
            bias: None,
            relu: false,
        };
        match products {
            Products::Panels => multiply(u, &product, m, co),
            Products::ByTap => multiply_by_tap(u, &product, m, co),
        }
    }
    tiles.transform_output((point_products, stride), (bias, relu), out);
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

    /// `Bᵀ d B` of every tile `d` of the padded `image`, `[C, H, W]`, as
    /// `[point][C][width]` in `matrix`. Each plane's rows go first to
    /// `split`, their even and odd columns apart (the padding's zeros
    /// around them); then for each tile row, a vector of tiles at a time,
    /// `Bᵀ d` down the four rows of the columns each tile starts at and of
    /// those one on, and `(Bᵀ d) B` across from them: no lane shuffles.
    #[inline(always)]
    unsafe fn transform_input<'a>(
        &self,
        image: &[f32],
        channels: usize,
        split: &mut Vec<f32>,
        matrix: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        let (h, w) = (2 * self.rows, 2 * self.columns);
        assert!(image.len() >= channels * h * w);
        // Padded row `r` (image row `r - 1`) is `[even | odd]`, each `half`
        // long: room for the loads one column on.
        let half = VECTOR * self.chunks + VECTOR;
        let row = 2 * half;
        split.clear();
        split.resize((h + 2) * row, 0.0);
        matrix.resize(POINTS * channels * self.width, 0.0);
        for (c, plane) in image.chunks_exact(h * w).take(channels).enumerate() {
            // Padded column 2j + 1 is image column 2j, and 2j + 2 is 2j + 1.
            // The padding (column 0 and w + 1, rows 0 and h + 1) stays zero.
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
                    let e0 = down(rows, row, at);
                    let e1 = down(rows, row, at + 1);
                    let o0 = down(rows, row, half + at);
                    let o1 = down(rows, row, half + at + 1);
                    for i in 0..4 {
                        let across = [
                            _mm256_sub_ps(e0[i], e1[i]),
                            _mm256_add_ps(o0[i], e1[i]),
                            _mm256_sub_ps(e1[i], o0[i]),
                            _mm256_sub_ps(o0[i], o1[i]),
                        ];
                        for (j, v) in across.into_iter().enumerate() {
                            // The last vector of a row ends at `width` at
                            // most; past the row's tiles it writes the next
                            // tile row's, rewritten after, or the slack.
                            let to =
                                ((i * 4 + j) * channels + c) * self.width + ty * self.columns + at;
                            _mm256_storeu_ps(matrix[to..][..VECTOR].as_mut_ptr(), v);
                        }
                    }
                }
            }
        }
        matrix
    }

    /// `Aᵀ m A` of every tile's products `m`, `[point][O][stride]`, plus the
    /// channel's bias and ReLU if asked, to its 2x2 outputs in `out`,
    /// `[O, 2 * rows, 2 * columns]`.
    #[inline(always)]
    unsafe fn transform_output(
        &self,
        (products, stride): (&[f32], usize),
        (bias, relu): (&[f32], bool),
        out: &mut [f32],
    ) {
        let out_w = 2 * self.columns;
        let co = out.len() / (4 * self.count);
        let point = co * stride;
        assert!(stride >= self.count && products.len() >= POINTS * point + VECTOR);
        assert!(bias.len() >= co);
        let zero = _mm256_setzero_ps();
        for (k, &bias) in bias[..co].iter().enumerate() {
            let b = _mm256_set1_ps(bias);
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
                        *m = _mm256_loadu_ps(products.as_ptr().add(p * point + t));
                    }
                    // `Aᵀ m`: the sums and differences down the columns.
                    let (mut s, mut d) = ([zero; 4], [zero; 4]);
                    for j in 0..4 {
                        s[j] = sum3(m[j], m[4 + j], m[8 + j]);
                        d[j] = diff3(m[4 + j], m[8 + j], m[12 + j]);
                    }
                    let rows = [
                        (sum3(s[0], s[1], s[2]), diff3(s[1], s[2], s[3])),
                        (sum3(d[0], d[1], d[2]), diff3(d[1], d[2], d[3])),
                    ];
                    let n = 2 * (self.columns - VECTOR * q).min(VECTOR);
                    for (dy, (left, right)) in rows.into_iter().enumerate() {
                        let (left, right) = (finish(left, b, relu), finish(right, b, relu));
                        let (lo, hi) = (
                            _mm256_unpacklo_ps(left, right),
                            _mm256_unpackhi_ps(left, right),
                        );
                        let pairs = [
                            _mm256_permute2f128_ps(lo, hi, 0x20),
                            _mm256_permute2f128_ps(lo, hi, 0x31),
                        ];
                        let at = (k * 2 * self.rows + 2 * ty + dy) * out_w + 2 * VECTOR * q;
                        if at + 2 * VECTOR <= out.len() {
                            // Whole vectors: what they write past the `n`
                            // outputs is the next outputs', written after.
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
unsafe fn down(rows: *const f32, stride: usize, at: usize) -> [__m256; 4] {
    let mut r = [_mm256_setzero_ps(); 4];
    for (i, r) in r.iter_mut().enumerate() {
        *r = _mm256_loadu_ps(rows.add(i * stride + at));
    }
    [
        _mm256_sub_ps(r[0], r[2]),
        _mm256_add_ps(r[1], r[2]),
        _mm256_sub_ps(r[2], r[1]),
        _mm256_sub_ps(r[1], r[3]),
    ]
}

/// `a + b + c`.
#[inline(always)]
unsafe fn sum3(a: __m256, b: __m256, c: __m256) -> __m256 {
    _mm256_add_ps(_mm256_add_ps(a, b), c)
}

/// `a - b - c`.
#[inline(always)]
unsafe fn diff3(a: __m256, b: __m256, c: __m256) -> __m256 {
    _mm256_sub_ps(_mm256_sub_ps(a, b), c)
}

/// `v + bias`, then ReLU if asked.
#[inline(always)]
unsafe fn finish(v: __m256, bias: __m256, relu: bool) -> __m256 {
    let v = _mm256_add_ps(v, bias);
    if relu {
        _mm256_max_ps(v, _mm256_setzero_ps())
    } else {
        v
    }
}
