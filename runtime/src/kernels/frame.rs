//! What the convolutions' micro-kernels share, apart from any instruction
//! set: the traits a kernel is written against (a vector, its multiply-add,
//! where sums start and how they leave) and the drivers that walk the
//! tiles of a matrix product with them. The instructions behind the traits
//! are in [`x86_64`](super::x86_64).

use super::patches::ROWS;

/// A register of [`Vector::LANES`] elements: f32 values, or 32-bit words
/// of channels. 256-bit ones for every kernel, 512-bit f32 ones for the
/// panels of f32 convolutions on AVX-512.
pub trait Vector: Copy {
    type T: Copy + Default;
    /// Elements in one register.
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn load(from: *const Self::T) -> Self;
    unsafe fn store(self, to: *mut Self::T);
}

/// The most elements a [`Vector`] holds: 16 f32 in 512 bits.
const MAX_LANES: usize = 16;

/// The multiply-add a micro-kernel repeats: f32 FMA, or a dot product of
/// words of channels' bytes or 16-bit values.
pub trait MultiplyAdd {
    type V: Vector;
    unsafe fn broadcast(from: *const <Self::V as Vector>::T) -> Self::V;
    /// `sum + a * v`, `a` a broadcast value. For dot products `v` holds the
    /// activations, which VNNI's `vpdpbusd` takes unsigned.
    unsafe fn multiply_add(sum: Self::V, a: Self::V, v: Self::V) -> Self::V;
}

/// `acc` plus, for each of `steps` steps, its `ROWS` values at
/// `broadcasts` times its `V` vectors at `vectors`, each operand's pointer
/// moving by its step from one step to the next. With `V = 2` the twelve
/// accumulators, two vectors and one broadcast value fit the sixteen
/// registers, so nothing spills in the loop. Inlined into its callers,
/// which enable the instructions `M` uses.
///
/// # Safety
/// The CPU must have `M`'s instructions; both operands must hold their
/// values for `steps` steps.
#[inline(always)]
unsafe fn accumulate<M: MultiplyAdd, const V: usize>(
    mut acc: [[M::V; V]; ROWS],
    steps: usize,
    (broadcasts, b_step): (*const <M::V as Vector>::T, usize),
    (vectors, v_step): (*const <M::V as Vector>::T, usize),
) -> [[M::V; V]; ROWS] {
    for step in 0..steps {
        let src = vectors.add(step * v_step);
        let mut b = [M::V::zero(); V];
        for (i, v) in b.iter_mut().enumerate() {
            *v = M::V::load(src.add(i * M::V::LANES));
        }
        let w = broadcasts.add(step * b_step);
        for (r, row) in acc.iter_mut().enumerate() {
            let a = M::broadcast(w.add(r));
            for (sum, &v) in row.iter_mut().zip(&b) {
                *sum = M::multiply_add(*sum, a, v);
            }
        }
    }
    acc
}

/// The micro-kernel's tiles across `width` output positions, a multiple of
/// `lanes`: `(first position, vectors)`, two vectors wide, then one for an
/// odd vector at the end.
fn tiles(width: usize, lanes: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..width)
        .step_by(2 * lanes)
        .map(move |column| (column, ((width - column) / lanes).min(2)))
}

/// What a panel's tile does with each output channel's sums: where they
/// start and how they leave. f32 convolutions start from the bias and end
/// with ReLU, int8 ones start from the offset and requantize, and
/// Winograd's products keep the sums as they are ([`RawSums`]).
pub trait Sink<V: Vector> {
    type Out;
    /// Output channel `k`'s sums start from this, in every lane.
    unsafe fn start(&self, k: usize) -> V;
    /// Stores the first `n` (at most [`Vector::LANES`]) of output channel `k`'s
    /// `sums` at `dst`.
    ///
    /// # Safety
    /// The CPU must have the sink's instructions; `dst` must hold `n`
    /// outputs.
    unsafe fn store(&self, k: usize, sums: V, dst: *mut Self::Out, n: usize);
}

/// The sums as they are, from zero.
pub struct RawSums;

impl<V: Vector> Sink<V> for RawSums {
    type Out = V::T;

    #[inline(always)]
    unsafe fn start(&self, _: usize) -> V {
        V::zero()
    }

    #[inline(always)]
    unsafe fn store(&self, _: usize, sums: V, dst: *mut V::T, n: usize) {
        if n == V::LANES {
            sums.store(dst);
        } else {
            let mut lanes = [V::T::default(); MAX_LANES];
            sums.store(lanes.as_mut_ptr());
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, n);
        }
    }
}

/// Writes `ROWS` output channels at a time into `out`, `[co, positions]`:
/// the products of `panels` (from
/// [`pack_panels`](super::patches::pack_panels)) and `source`, `steps`
/// rows `width` apart of positions (f32 taps, or words of taps), through
/// `sink`. Inlined into its callers, which enable the instructions `M`
/// and `S` use.
///
/// # Safety
/// The CPU must have `M`'s and `S`'s instructions.
#[inline(always)]
pub unsafe fn multiply<M: MultiplyAdd, S: Sink<M::V>>(
    panels: &[<M::V as Vector>::T],
    source: &[<M::V as Vector>::T],
    (steps, width): (usize, usize),
    out: &mut [S::Out],
    co: usize,
    sink: &S,
) {
    let positions = out.len() / co;
    assert!(
        source.len() >= steps * width && width >= positions && width.is_multiple_of(M::V::LANES)
    );
    assert_eq!(out.len(), co * positions);
    // Every panel over one column of tiles before the next column, so that
    // all but the first panel read the column's rows of the source from L1
    // (L2 for deep kernels): a stem's patch matrix (27 rows of 12,544
    // positions at 224x224) overflows a 1 MB L2, and panel by panel it
    // streamed from L3 once a panel.
    let lanes = M::V::LANES;
    for (column, vectors) in tiles(width, lanes) {
        let valid = (positions - column).min(vectors * lanes);
        for (panel, weights) in panels.chunks_exact(steps * ROWS).enumerate() {
            let t = Tile {
                width,
                stride: positions,
                first: panel * ROWS,
                rows: (co - panel * ROWS).min(ROWS),
            };
            // SAFETY: the CPU has the instructions (this function's
            // contract); the asserts above keep every read of a tile in
            // bounds, and it writes only its rows and positions that exist.
            unsafe {
                let w = weights.as_ptr();
                let src = source.as_ptr().add(column);
                let dst = out[panel * ROWS * positions..].as_mut_ptr().add(column);
                match vectors {
                    2 => t.run::<M, S, 2>(w, src, steps, sink, dst, valid),
                    _ => t.run::<M, S, 1>(w, src, steps, sink, dst, valid),
                }
            }
        }
    }
}

/// How a tile reads and writes one panel.
struct Tile {
    /// From one step's row of the source to the next.
    width: usize,
    /// From one output channel's row to the next.
    stride: usize,
    /// The panel's first output channel.
    first: usize,
    /// The output channels of the panel that exist.
    rows: usize,
}

impl Tile {
    /// `ROWS x (V * LANES)` outputs: the sink's starts, plus for each step
    /// its `ROWS` weights times its `V * LANES` inputs; of these, the first `valid`
    /// of each of `self.rows` rows go through `sink` to `dst`. `V = 1`
    /// does the last, narrower tile.
    ///
    /// # Safety
    /// As for [`multiply`]; `weights` must hold `steps * ROWS` elements,
    /// `source` `V * LANES` at each of `steps` rows `self.width` apart, and
    /// `dst` `valid` outputs at each of `self.rows` rows `self.stride`
    /// apart.
    #[inline(always)]
    unsafe fn run<M: MultiplyAdd, S: Sink<M::V>, const V: usize>(
        &self,
        weights: *const <M::V as Vector>::T,
        source: *const <M::V as Vector>::T,
        steps: usize,
        sink: &S,
        dst: *mut S::Out,
        valid: usize,
    ) {
        let mut acc = [[M::V::zero(); V]; ROWS];
        for (r, row) in acc.iter_mut().enumerate() {
            *row = [sink.start(self.first + r); V];
        }
        let acc = accumulate::<M, V>(acc, steps, (weights, ROWS), (source, self.width));
        for (r, row) in acc.iter().enumerate().take(self.rows) {
            for (i, &v) in row.iter().enumerate() {
                let lanes = M::V::LANES;
                let n = valid.saturating_sub(i * lanes).min(lanes);
                if n > 0 {
                    sink.store(self.first + r, v, dst.add(r * self.stride + i * lanes), n);
                }
            }
        }
    }
}

/// What a by-tap tile does with its sums, whose lanes are output channels:
/// where they start, and what they become before they are stored.
pub trait Across<V: Vector> {
    /// Output channels `k` to `k + LANES` start from these.
    unsafe fn starts(&self, k: usize) -> V;
    /// The outputs of `sums`, the same for every channel.
    unsafe fn finish(&self, sums: V) -> V;
}

impl<V: Vector> Across<V> for RawSums {
    #[inline(always)]
    unsafe fn starts(&self, _: usize) -> V {
        V::zero()
    }

    #[inline(always)]
    unsafe fn finish(&self, sums: V) -> V {
        sums
    }
}

/// Writes `ROWS` output positions by 16 channels at a time into `out`,
/// `[co, positions]`, from `source`, `steps` rows `width` apart (`width`
/// at least `positions` rounded up to `ROWS`), and the weights `by_tap`
/// (from [`by_tap`](super::patches::by_tap)), through `across`. Channels
/// go across, so that each tile's weights stay in the cache while it walks
/// the positions: the layout for planes whose positions fill no vector but
/// whose channels do. Inlined into its callers, which enable the
/// instructions `M` and `A` use.
///
/// # Safety
/// The CPU must have `M`'s and `A`'s instructions.
#[inline(always)]
pub unsafe fn multiply_by_tap<M: MultiplyAdd, A: Across<M::V>>(
    by_tap: &[<M::V as Vector>::T],
    (source, steps, width): (&[<M::V as Vector>::T], usize, usize),
    out: &mut [<M::V as Vector>::T],
    co: usize,
    across: &A,
) {
    let positions = out.len() / co;
    assert!(source.len() >= steps * width && width >= positions.next_multiple_of(ROWS));
    let vector = M::V::LANES;
    assert!(by_tap.len() == steps * co && co.is_multiple_of(2 * vector));
    assert_eq!(out.len(), co * positions);
    let mut lanes = [<M::V as Vector>::T::default(); 2 * MAX_LANES];
    for channel in (0..co).step_by(2 * vector) {
        let starts = [across.starts(channel), across.starts(channel + vector)];
        for position in (0..positions).step_by(ROWS) {
            // SAFETY: the asserts above bound both operands' reads and the
            // writes, `valid` positions of 16 channels.
            unsafe {
                let acc = accumulate::<M, 2>(
                    [starts; ROWS],
                    steps,
                    (source.as_ptr().add(position), width),
                    (by_tap.as_ptr().add(channel), co),
                );
                let dst = out.as_mut_ptr().add(channel * positions + position);
                let valid = (positions - position).min(ROWS);
                for (p, row) in acc.iter().enumerate().take(valid) {
                    for (i, &v) in row.iter().enumerate() {
                        across.finish(v).store(lanes[i * vector..].as_mut_ptr());
                    }
                    for (c, &v) in lanes[..2 * vector].iter().enumerate() {
                        *dst.add(c * positions + p) = v;
                    }
                }
            }
        }
    }
}
