//! Rows split into their column phases: phase `p` of a row holds its
//! columns `p`, `p + stride`, .., so that a window's column at a stride
//! reads one run of a phase for every output of the row. Strided
//! convolutions' patches and pools read them.

/// The `sw` column phases of a plane of rows `pw` wide into `phases`:
/// phase `p` is `[rows][pw.div_ceil(sw)]`, columns `p`, `p + sw`.. of each
/// row (a shorter phase's last column keeps a stale value). A strided
/// convolution's or pool's taps then read runs: one pass over the plane,
/// where picking every `sw`-th value for each tap took a pass per tap, one
/// value at a time; two phases compile to vector shuffles.
#[inline(always)]
pub(super) fn split_columns<T: Copy>(plane: &[T], (pw, sw): (usize, usize), phases: &mut Vec<T>) {
    let (rows, qw) = (plane.len() / pw, pw.div_ceil(sw));
    if phases.len() < sw * rows * qw {
        phases.resize(sw * rows * qw, plane[0]);
    }
    for (r, row) in plane.chunks_exact(pw).enumerate() {
        split_row(row, sw, &mut phases[..sw * rows * qw], r * qw);
    }
}

/// One row of [`split_columns`]: its `sw` column phases at `at` in each of
/// the `sw` equal phase planes of `phases`.
#[inline(always)]
pub(super) fn split_row<T: Copy>(row: &[T], sw: usize, phases: &mut [T], at: usize) {
    let (pw, qw) = (row.len(), row.len().div_ceil(sw));
    let phase_len = phases.len() / sw;
    if sw == 2 {
        let (even, odd) = phases.split_at_mut(phase_len);
        let (even, odd) = (&mut even[at..][..qw], &mut odd[at..][..qw]);
        for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
            *e = pair[0];
            *o = pair[1];
        }
        if pw % 2 == 1 {
            even[qw - 1] = row[pw - 1];
        }
        return;
    }
    for (p, phase) in phases.chunks_exact_mut(phase_len).take(sw).enumerate() {
        for (o, &v) in phase[at..][..qw]
            .iter_mut()
            .zip(row[p..].iter().step_by(sw))
        {
            *o = v;
        }
    }
}
