//! Convolution over a pruned kernel's nonzero weights alone, as XNNPACK's
//! sparse 1x1 kernels do it (Elsen et al., "Fast Sparse ConvNets", 2020):
//! planes stay channel-major, and for each vector of output positions and
//! each output channel, every nonzero weight is one broadcast and one
//! multiply-add with a vector of its input channel's positions. The dense
//! layouts spend a multiply-add on every weight, zero or not.
//!
//! Kernels larger than 1x1 (squeeze1's 3x3 expands) run the same way on
//! the padded image, without im2col: positions are taken on the grid of
//! the padded planes, where tap `(c, ky, kx)` of the output at `(y, x)`
//! reads input `c * ph * pw + (y + ky) * pw + x + kx`, a fixed offset per
//! tap. The grid's `kw - 1` columns past each output row are computed and
//! dropped: 166 positions for 144 outputs on a 12x12 plane.
//!
//! f32 kernels take one weight per nonzero; int8 ones take the words of
//! the dense layout ([`dot`](super::dot)) that hold a nonzero weight, so
//! that one instruction takes all of a word's nonzeros and the image is
//! packed the same way for both layouts.

use std::sync::Arc;

use super::dot::Dot;
use super::frame::{MultiplyAdd, Sink, Vector};
use super::patches::{Geometry, VECTOR};

/// The most vectors of positions a tile keeps in registers: with the
/// broadcast weight, 9 of the 16.
const MAX_VECTORS: usize = 8;

/// The densest kernels, as a share of nonzero weights (or words of
/// weights), for which the sparse layout is faster than the dense one it
/// would replace: against the panels for 1x1 kernels (`pointwise`) and
/// larger ones (`window`, whose sparse grid computes the padding columns
/// too), and against Winograd's transforms. Measured by the ignored test
/// `sparse_break_even` (docs/kernels.md).
#[derive(Clone, Copy, Debug)]
pub struct Densest {
    pub pointwise: f64,
    pub window: f64,
    pub winograd: f64,
}

impl Densest {
    /// For f32 kernels with FMA.
    pub const F32: Densest = Densest {
        pointwise: 0.5,
        window: 0.4,
        winograd: 0.35,
    };

    /// For int8 kernels with `dot`, in words of its group of channels.
    pub fn for_int8(dot: Dot) -> Densest {
        match dot {
            Dot::Vnni | Dot::AvxVnni => Densest {
                pointwise: 0.75,
                window: 0.45,
                winograd: 0.45,
            },
            Dot::Avx2 => Densest {
                pointwise: 0.8,
                window: 0.6,
                winograd: 0.5,
            },
        }
    }

    /// Against the layout the dense op would take for geometry `g`,
    /// Winograd's or not.
    pub fn against(self, g: &Geometry, winograd: bool) -> f64 {
        if winograd {
            self.winograd
        } else if g.kernel == (1, 1) {
            self.pointwise
        } else {
            self.window
        }
    }
}

/// A kernel's nonzero weights (f32, or words of channels' weights) by
/// output channel, each with where its input starts, for planes of one
/// size.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sparse<T> {
    /// Output channel `o`'s nonzeros are `starts[o]..starts[o + 1]`.
    starts: Arc<Vec<usize>>,
    /// Each nonzero's weight, or word of weights.
    values: Arc<Vec<T>>,
    /// Each nonzero's first input on the padded image.
    offsets: Arc<Vec<usize>>,
    /// The grid the offsets are for: output rows, padded row length,
    /// output row length.
    grid: (usize, usize, usize),
    /// Rows of the padded planes.
    padded_rows: usize,
    /// Inputs of the padded image: every offset plus the grid's length
    /// is within.
    extent: usize,
}

impl<T: Copy + Default + PartialEq> Sparse<T> {
    /// The nonzeros of `weights`, `[O][C][kh][kw]` (f32 values, or words
    /// of channels' weights with `C` the words across channels), for
    /// planes of geometry `g` (whose channels are `C`), where they are at
    /// most `densest` of the weights; `None` where they are more, where
    /// the grid is empty or shorter than one vector, or where windows are
    /// strided.
    pub fn new(weights: &[T], co: usize, g: &Geometry, densest: f64) -> Option<Sparse<T>> {
        let (kh, kw) = g.kernel;
        let (ph, pw) = g.padded_dims();
        let taps = g.channels * kh * kw;
        let nonzero = weights.iter().filter(|&&w| w != T::default()).count();
        let grid = (g.out_h, pw, g.out_w);
        if weights.len() != co * taps || nonzero as f64 > densest * weights.len() as f64 {
            return None;
        }
        if g.out_h == 0 || grid_len(grid) < VECTOR || !g.is_unit_stride() {
            return None;
        }
        let mut starts = Vec::with_capacity(co + 1);
        let (mut values, mut offsets) = (Vec::with_capacity(nonzero), Vec::with_capacity(nonzero));
        starts.push(0);
        for filter in weights.chunks_exact(taps) {
            for (t, &w) in filter
                .iter()
                .enumerate()
                .filter(|(_, &w)| w != T::default())
            {
                let (c, ky, kx) = (t / (kh * kw), t / kw % kh, t % kw);
                values.push(w);
                offsets.push((c * ph + ky) * pw + kx);
            }
            starts.push(values.len());
        }
        Some(Sparse {
            starts: Arc::new(starts),
            values: Arc::new(values),
            offsets: Arc::new(offsets),
            grid,
            padded_rows: ph,
            extent: g.channels * ph * pw,
        })
    }

    /// How many weights (or words) are nonzero.
    pub fn nonzeros(&self) -> usize {
        self.values.len()
    }

    /// Whether these weights serve planes of geometry `g`.
    pub fn serves(&self, g: &Geometry) -> bool {
        let (ph, pw) = g.padded_dims();
        (self.grid, self.padded_rows) == ((g.out_h, pw, g.out_w), ph)
    }
}

/// Positions of the grid from the first output to the last.
fn grid_len((rows, padded, row): (usize, usize, usize)) -> usize {
    (rows - 1) * padded + row
}

/// Writes `out`, `[co, positions]`, through `sink`: the sums of
/// `weights` by `source`, the padded image. Where padded rows are longer
/// than output rows, the sums go first to `grid`, whose rows then move
/// to `out`. Inlined into its callers, which enable the instructions `M`
/// and `S` use.
///
/// # Safety
/// The CPU must have `M`'s and `S`'s instructions.
#[inline(always)]
pub unsafe fn multiply<M: MultiplyAdd, S: Sink<M::V>>(
    weights: &Sparse<<M::V as Vector>::T>,
    source: &[<M::V as Vector>::T],
    out: &mut [S::Out],
    grid: &mut Vec<S::Out>,
    sink: &S,
) where
    S::Out: Copy + Default,
{
    let co = weights.starts.len() - 1;
    let (rows, padded, row) = weights.grid;
    let len = grid_len(weights.grid);
    assert!(source.len() >= weights.extent && len >= VECTOR);
    assert_eq!(out.len(), co * rows * row);
    let direct = padded == row;
    let dst = if direct {
        &mut out[..]
    } else {
        grid.resize(co * len, S::Out::default());
        &mut grid[..]
    };
    let vectors = len.div_ceil(VECTOR);
    let tiles = vectors.div_ceil(MAX_VECTORS);
    for tile in 0..tiles {
        let (from, to) = (vectors * tile / tiles, vectors * (tile + 1) / tiles);
        let first = from * VECTOR;
        // The last vector of the grid ends at its end, over positions the
        // one before it computed too.
        let last = (to * VECTOR).min(len) - VECTOR - first;
        // SAFETY: every nonzero's offset plus the grid's length is within
        // `extent` (`Sparse::new`), and `source` holds that (asserted
        // above); the tile's vectors end at `len` at most, and `dst` holds
        // `co` rows of `len`.
        unsafe {
            let t = (source.as_ptr().add(first), last);
            let dst = (dst.as_mut_ptr().add(first), len);
            match to - from {
                1 => tile_of::<M, S, 1>(weights, t, dst, sink),
                2 => tile_of::<M, S, 2>(weights, t, dst, sink),
                3 => tile_of::<M, S, 3>(weights, t, dst, sink),
                4 => tile_of::<M, S, 4>(weights, t, dst, sink),
                5 => tile_of::<M, S, 5>(weights, t, dst, sink),
                6 => tile_of::<M, S, 6>(weights, t, dst, sink),
                7 => tile_of::<M, S, 7>(weights, t, dst, sink),
                _ => tile_of::<M, S, MAX_VECTORS>(weights, t, dst, sink),
            }
        }
    }
    if !direct {
        let rows_out = out.chunks_exact_mut(row);
        let rows_in = (grid.chunks(len)).flat_map(|plane| plane.chunks(padded).take(rows));
        for (o, i) in rows_out.zip(rows_in) {
            o.copy_from_slice(&i[..row]);
        }
    }
}

/// `V` vectors of positions of every output channel, `weights` by the
/// padded image from `source` on, the last vector `last` on from it.
/// Each output channel's sums go through `sink` to its row of `dst`, rows
/// `stride` apart.
///
/// # Safety
/// As for [`multiply`]: the vectors of every nonzero's input, and of each
/// output row, are within their slices.
#[inline(always)]
unsafe fn tile_of<M: MultiplyAdd, S: Sink<M::V>, const V: usize>(
    weights: &Sparse<<M::V as Vector>::T>,
    (source, last): (*const <M::V as Vector>::T, usize),
    (dst, stride): (*mut S::Out, usize),
    sink: &S,
) {
    let at = |v: usize| if v + 1 == V { last } else { v * VECTOR };
    let (values, offsets) = (weights.values.as_ptr(), weights.offsets.as_ptr());
    for (o, ends) in weights.starts.windows(2).enumerate() {
        let mut acc = [sink.start(o); V];
        for j in ends[0]..ends[1] {
            // SAFETY: `j` is below `starts`' last, the nonzeros' count.
            unsafe {
                let a = M::broadcast(values.add(j));
                let src = source.add(*offsets.add(j));
                for (v, sum) in acc.iter_mut().enumerate() {
                    *sum = M::multiply_add(*sum, a, M::V::load(src.add(at(v))));
                }
            }
        }
        for (v, &sum) in acc.iter().enumerate() {
            sink.store(o, sum, dst.add(o * stride + at(v)), VECTOR);
        }
    }
}

#[cfg(test)]
mod tests;
