//! The passes over rows that max and average pooling share. Each output row
//! folds the input rows under its windows into one row (the maxima or sums
//! down the windows), then folds that row across, padded with the fold's
//! neutral value. The common windows (2x2 and 3x3) read it directly, with
//! their stride and width known to the compiler; any other is split into
//! its `stride` column phases, so that each of the kernel's columns reads
//! one run of a phase for the whole output row. Every fold vectorises, at
//! any stride; picking each window's columns one output at a time, as
//! before, cost an imported ResNet's 3x3 stride-2 pool over 112x112 planes
//! 0.2 ms.

use std::ops::Range;

use super::phases::split_columns;

/// For each of `outputs` positions along one axis, the input positions in
/// bounds under its window: output `o` covers inputs `o * stride - pad` to
/// `o * stride - pad + kernel`, clipped to `0..size`.
pub(super) fn spans(
    outputs: usize,
    stride: usize,
    kernel: usize,
    pad: usize,
    size: usize,
) -> Vec<Range<usize>> {
    (0..outputs)
        .map(|o| {
            let lo = (o * stride).max(pad);
            let hi = (o * stride + kernel).min(pad + size).max(lo);
            lo - pad..hi - pad
        })
        .collect()
}

/// How one output row's columns read a row of the image's width: the row
/// sits in a padded row (of [`Columns::padded_len`], its padding the
/// fold's neutral value), at [`Columns::interior`].
#[derive(Debug, Clone)]
pub(super) struct Columns {
    /// Padding columns before the image's first.
    pad: usize,
    /// The image's width.
    image: usize,
    /// The kernel's width.
    pub width: usize,
    stride: usize,
    pub outputs: usize,
    /// Values in each phase: the outputs and the columns past the last
    /// output's window start that its window reads.
    phase_len: usize,
}

impl Columns {
    pub fn new(pad: usize, image: usize, width: usize, stride: usize, outputs: usize) -> Columns {
        Columns {
            pad,
            image,
            width,
            stride,
            outputs,
            phase_len: outputs + (width - 1) / stride,
        }
    }

    /// A padded row, `neutral` throughout; the folds keep its padding so.
    pub fn padded_row<T: Copy>(&self, neutral: T) -> Vec<T> {
        vec![neutral; (self.phase_len * self.stride).max(self.pad + self.image)]
    }

    /// Where the image's row goes in a padded row.
    pub fn interior<'a, T>(&self, padded: &'a mut [T]) -> &'a mut [T] {
        &mut padded[self.pad..][..self.image]
    }

    /// `out[o] = f` over the values of `padded` under output `o`'s window,
    /// at a stride through its column phases in `phased`.
    #[inline(always)]
    pub fn fold<T: Copy>(
        &self,
        padded: &[T],
        phased: &mut Vec<T>,
        out: &mut [T],
        f: impl Fn(T, T) -> T + Copy,
    ) {
        let (s, len) = (self.stride, self.phase_len);
        let out = &mut out[..self.outputs];
        match (s, self.width) {
            (1, 3) => return windows::<T, 1, 3>(out, padded, f),
            (2, 2) => return windows::<T, 2, 2>(out, padded, f),
            (2, 3) => return windows::<T, 2, 3>(out, padded, f),
            _ => {}
        }
        if s == 1 {
            return fold(out, padded, 0..self.width, f);
        }
        split_columns(&padded[..s * len], (s * len, s), phased);
        fold(out, phased, (0..self.width).map(|k| k % s * len + k / s), f);
    }
}

/// `out[x] = f` over the `K` values of `padded` from `S * x` on: the
/// common windows (3x3 at stride 1, 2x2 and 3x3 at stride 2), whose stride
/// and width the compiler knows, so that it vectorises across outputs
/// (stride-2 loads become shuffles). Through the column phases they took
/// twice as long: the split, and runs whose offsets were computed for each.
#[inline(always)]
fn windows<T: Copy, const S: usize, const K: usize>(
    out: &mut [T],
    padded: &[T],
    f: impl Fn(T, T) -> T + Copy,
) {
    let Some(last) = out.len().checked_sub(1) else {
        return;
    };
    // One check for all windows, so that none is checked in the loop.
    assert!(S * last + K <= padded.len());
    for (x, o) in out.iter_mut().enumerate() {
        let window = &padded[S * x..][..K];
        *o = window[1..].iter().fold(window[0], |a, &v| f(a, v));
    }
}

/// `dst[i] = f(.. f(src[i + o0], src[i + o1]) .., src[i + on])` for every
/// `i`, over `offsets` `o0..on` (one or more).
#[inline(always)]
pub(super) fn fold<T: Copy>(
    dst: &mut [T],
    src: &[T],
    offsets: impl Iterator<Item = usize> + Clone,
    f: impl Fn(T, T) -> T + Copy,
) {
    // Runs of 8 f32 or 16 bytes, whole 128-bit lanes, compile to plain
    // vector loads, folds and stores; shorter rows of bytes take 8.
    match size_of::<T>() {
        1 if dst.len() >= 16 => fold_in_runs::<T, 16>(dst, src, offsets, f),
        _ => fold_in_runs::<T, 8>(dst, src, offsets, f),
    }
}

/// [`fold`] for `RUN` outputs at a time, whose values build up in
/// registers and are stored once: updated in place in memory, a max
/// compiles to masked stores, which are slow.
#[inline(always)]
fn fold_in_runs<T: Copy, const RUN: usize>(
    dst: &mut [T],
    src: &[T],
    offsets: impl Iterator<Item = usize> + Clone,
    f: impl Fn(T, T) -> T + Copy,
) {
    let n = dst.len();
    if n < RUN {
        for (x, d) in dst.iter_mut().enumerate() {
            let values = offsets.clone().map(|o| src[o + x]);
            *d = values.reduce(f).expect("one offset or more");
        }
        return;
    }
    // Runs from the start, and a last one that may overlap the one before.
    for x in (0..n - RUN).step_by(RUN).chain([n - RUN]) {
        let mut taps = offsets.clone();
        let first = taps.next().expect("one offset or more");
        let mut acc: [T; RUN] = src[first + x..][..RUN].try_into().expect("RUN values");
        for o in taps {
            let values: &[T; RUN] = src[o + x..][..RUN].try_into().expect("RUN values");
            for (a, &v) in acc.iter_mut().zip(values) {
                *a = f(*a, v);
            }
        }
        dst[x..][..RUN].copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::{spans, Columns};

    /// Every output of a row folds exactly the values under its window,
    /// whatever the padding, stride and width: against sums taken window
    /// by window.
    #[test]
    fn columns_fold_exactly_each_windows_values() {
        for (w, kernel, stride, pad) in [
            (112usize, 3usize, 2usize, 1usize),
            (9, 3, 2, 0),
            (7, 2, 3, 2),
            (12, 3, 1, 1),
            (5, 4, 4, 0),
            (1, 3, 2, 1),
            (112, 2, 2, 0),
            (9, 2, 2, 0),
            (9, 4, 2, 1),
        ] {
            let outputs = (w + 2 * pad).saturating_sub(kernel) / stride + 1;
            let row: Vec<u64> = (0..w as u64).map(|x| 1 << x.min(60)).collect();
            let columns = Columns::new(pad, w, kernel, stride, outputs);
            let mut padded = columns.padded_row(0);
            columns.interior(&mut padded).copy_from_slice(&row);
            let mut out = vec![u64::MAX; outputs];
            columns.fold(&padded, &mut Vec::new(), &mut out, |a, b| a + b);
            let expected: Vec<u64> = (spans(outputs, stride, kernel, pad, w).into_iter())
                .map(|r| row[r].iter().sum())
                .collect();
            assert_eq!(
                out, expected,
                "width {w}, kernel {kernel}, stride {stride}, pad {pad}"
            );
        }
    }
}
