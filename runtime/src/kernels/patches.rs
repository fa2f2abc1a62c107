//! The operands of a convolution as a matrix product, laid out for
//! register-blocked micro-kernels: the patch matrix (im2col) of one image,
//! and the weights packed into panels of output channels. An element of
//! the patch matrix is one f32, or for int8 dot products a 32-bit word of
//! four channels' bytes, whose `G = 4` weights sit together in the panels.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::phases::split_row;

/// Outputs per 256-bit vector of f32 or i32.
pub const VECTOR: usize = 8;
/// Output channels a micro-kernel computes together: one broadcast weight
/// (or group of taps) each per step.
pub const ROWS: usize = 6;

/// Whether `conv` is a 2-D, undilated, ungrouped convolution of channel
/// planes with an OIHW kernel, of any stride: the kind these layouts serve.
pub fn is_plain(conv: &Conv) -> bool {
    conv.group == 1 && is_planar(conv)
}

/// Whether `conv` is a 2-D, undilated convolution of channel planes with
/// an OIHW kernel, of any stride and grouping.
pub fn is_planar(conv: &Conv) -> bool {
    let spec = &conv.pool_spec;
    conv.kernel_fmt == KernelFormat::OIHW
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && spec.rank() == 2
        && spec.strides().iter().all(|&s| s >= 1)
        && spec.dilations().iter().all(|&d| d == 1)
}

/// One image's sizes, padding and stride, for a 2-D, undilated
/// convolution.
pub struct Geometry {
    pub channels: usize,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel: (usize, usize),
    /// Rows and columns between one window and the next.
    pub stride: (usize, usize),
}

impl Geometry {
    /// The geometry of `spec` on an input of `shape` (`[N, C, H, W]` or
    /// `[C, H, W]`).
    pub fn new(spec: &PoolSpec, shape: &[usize]) -> TractResult<Geometry> {
        let shape = spec.data_format.shape(shape)?;
        let (h, w) = (shape.hw_dims()[0], shape.hw_dims()[1]);
        let padding = spec.computed_padding(shape.hw_dims());
        let (rows, columns) = (&padding[0], &padding[1]);
        let strides = spec.strides();
        Ok(Geometry {
            channels: spec.input_channels,
            h,
            w,
            top: rows.pad_before,
            left: columns.pad_before,
            out_h: rows.convoluted,
            out_w: columns.convoluted,
            kernel: (spec.kernel_shape[0], spec.kernel_shape[1]),
            stride: (strides[0], strides[1]),
        })
    }

    /// This geometry, where weights take it: `serve` says whether they do.
    /// Winograd's and sparse layouts serve the planes they were chosen for
    /// alone.
    pub fn served(self, serve: impl FnOnce(&Geometry) -> bool) -> TractResult<Geometry> {
        ensure!(
            serve(&self),
            "weights laid out for other planes do not take {}x{} planes",
            self.h,
            self.w
        );
        Ok(self)
    }

    pub fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    pub fn taps(&self) -> usize {
        self.channels * self.kernel.0 * self.kernel.1
    }

    /// Whether the patch matrix of a 1x1 kernel is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1)
            && self.stride == (1, 1)
            && self.out_h == self.h
            && self.out_w == self.w
    }

    /// Whether windows are one row and one column apart.
    pub fn is_unit_stride(&self) -> bool {
        self.stride == (1, 1)
    }

    /// Whether the kernel is 3x3 and padded by one on every side, over
    /// planes of even height and width: the convolutions that
    /// [`winograd`](super::winograd) does.
    pub fn is_same_3x3_even(&self) -> bool {
        self.kernel == (3, 3)
            && self.is_unit_stride()
            && (self.top, self.left) == (1, 1)
            && (self.out_h, self.out_w) == (self.h, self.w)
            && self.h > 0
            && self.w > 0
            && self.h.is_multiple_of(2)
            && self.w.is_multiple_of(2)
    }

    /// The same windows over one channel's plane.
    pub fn one_plane(&self) -> Geometry {
        Geometry {
            channels: 1,
            ..*self
        }
    }

    /// The same convolution over an image whose channels are packed `g` to
    /// an element.
    pub fn in_groups(self, g: usize) -> Geometry {
        Geometry {
            channels: self.channels.div_ceil(g),
            ..self
        }
    }

    /// The planes of a padded image: the rows and columns that the
    /// convolution's windows cover, the image's and the padding's.
    pub fn padded_dims(&self) -> (usize, usize) {
        let (sh, sw) = self.stride;
        (
            (self.out_h * sh + self.kernel.0).saturating_sub(sh),
            (self.out_w * sw + self.kernel.1).saturating_sub(sw),
        )
    }

    /// `image` with `pad` around each plane, as planes of [`padded_dims`]
    /// (`image` itself where it needs no padding). Each element is written
    /// once: the padding rows and columns with `pad`, the rest copied.
    ///
    /// [`padded_dims`]: Geometry::padded_dims
    #[inline(always)]
    pub fn pad<'a, T: Copy>(&self, image: &'a [T], pad: T, padded: &'a mut Vec<T>) -> &'a [T] {
        let (ph, pw) = self.padded_dims();
        if (self.top, self.left, ph, pw) == (0, 0, self.h, self.w) {
            return image;
        }
        // Every write is of whole spans of `SPAN` elements, which may run
        // on past their end into what is written after them: the next part
        // of the row, the next row or plane, or the slack. A loop of short
        // fills or copies made a call to memset or memcpy for each, which
        // took longer than the copies.
        padded.resize(self.channels * ph * pw + SPAN, pad);
        let columns = self.w.min(pw.saturating_sub(self.left));
        let rows = self.h.min(ph.saturating_sub(self.top));
        let fill = |padded: &mut [T], len: usize| {
            for at in (0..len).step_by(SPAN) {
                padded[at..][..SPAN].copy_from_slice(&[pad; SPAN]);
            }
        };
        for c in 0..self.channels {
            let (plane, out) = (c * self.h * self.w, c * ph * pw);
            fill(&mut padded[out..], self.top * pw);
            for y in 0..rows {
                let (src, dst) = (plane + y * self.w, out + (self.top + y) * pw);
                fill(&mut padded[dst..], self.left);
                let dst = dst + self.left;
                if src + columns.next_multiple_of(SPAN) <= image.len() {
                    for at in (0..columns).step_by(SPAN) {
                        copy_n::<T, SPAN>(&mut padded[dst + at..], &image[src + at..]);
                    }
                } else {
                    // The image's last row, which spans would read past.
                    copy_short(&mut padded[dst..][..columns], &image[src..][..columns]);
                }
                fill(&mut padded[dst + columns..], pw - self.left - columns);
            }
            let below = out + (self.top + rows) * pw;
            fill(&mut padded[below..], out + ph * pw - below);
        }
        padded
    }

    /// The patch matrix of `image`, `[taps][width]`: tap `(c, ky, kx)` is
    /// row `(c * kh + ky) * kw + kx`, and taps in the padding are `pad`.
    /// Positions past the last, up to `width`, hold stale values: their
    /// products are never read. Inlined, so that it compiles for the
    /// vector instructions of the kernel that calls it.
    #[inline(always)]
    pub fn im2col<'a, T: Copy>(
        &self,
        image: &[T],
        width: usize,
        pad: T,
        patches: &'a mut Patches<T>,
    ) -> &'a [T] {
        if self.is_unpadded_subsample() {
            return self.subsample(image, width, pad, &mut patches.matrix);
        }
        let (kh, kw) = self.kernel;
        let (ph, pw) = self.padded_dims();
        let Patches {
            padded,
            matrix,
            phases,
            ..
        } = patches;
        let (sh, sw) = self.stride;
        // Phase planes are this wide: phase `p` holds columns `p`, `p + sw`..
        let qw = pw.div_ceil(sw);
        // A strided convolution reads its planes' column phases; a plane is
        // `plane_len` long in `padded` (or for strides, `phases`).
        let (padded, plane_len) = if self.is_unit_stride() {
            (self.pad(image, pad, padded), ph * pw)
        } else {
            let plane_len = self.split_padded(image, pad, padded, phases);
            (&phases[..], plane_len)
        };
        let (positions, out_w) = (self.positions(), self.out_w);
        // Every row's positions are written below; what lies past them may
        // keep old contents. The slack takes the last copy's overrun.
        matrix.resize(self.taps() * width + SPAN, pad);
        let spans = out_w.div_ceil(SPAN);
        let mut row = 0;
        for plane in (0..self.channels).map(|c| c * plane_len) {
            for (ky, kx) in (0..kh).flat_map(|ky| (0..kw).map(move |kx| (ky, kx))) {
                let start = plane + ky * pw + kx;
                let last = (self.out_h - 1) * pw + spans * SPAN;
                if !self.is_unit_stride() {
                    // Every `sw`-th column from `kx` on is a run of phase
                    // `kx % sw`; every `sh`-th row from `ky` on.
                    let phase = &padded[plane + (kx % sw) * ph * qw + ky * qw + kx / sw..];
                    let rows = matrix[row..].chunks_exact_mut(out_w).take(self.out_h);
                    for (out, src) in rows.zip(phase.chunks(sh * qw)) {
                        copy_short(out, &src[..out_w]);
                    }
                } else if out_w == pw {
                    // Whole rows of the plane: one run.
                    copy_short(
                        &mut matrix[row..][..positions],
                        &padded[start..][..positions],
                    );
                } else if start + last <= padded.len() {
                    // Each output row in whole spans of `SPAN` elements,
                    // which run on into the next row (rewritten after) or
                    // past the positions, into the slack or the next tap.
                    let (src, dst) = (&padded[start..], &mut matrix[row..]);
                    assert!(dst.len() >= (self.out_h - 1) * out_w + spans * SPAN);
                    for y in 0..self.out_h {
                        for i in (0..spans).map(|i| i * SPAN) {
                            // SAFETY: the two checks above bound the last
                            // span of the last row, of both slices.
                            unsafe {
                                let from = src.as_ptr().add(y * pw + i);
                                let to = dst.as_mut_ptr().add(y * out_w + i);
                                std::ptr::copy_nonoverlapping(from, to, SPAN);
                            }
                        }
                    }
                } else {
                    // The last rows of the image, which spans would read
                    // past: row by row, exactly.
                    let rows = matrix[row..].chunks_exact_mut(out_w).take(self.out_h);
                    for (out, src) in rows.zip(padded[start..].chunks(pw)) {
                        copy_short(out, &src[..out_w]);
                    }
                }
                row += width;
            }
        }
        matrix
    }
}

impl Geometry {
    /// Each channel's padded plane split into its `sw` column phases
    /// ([`split_columns`](super::phases::split_columns)'s layout), a plane
    /// after another in `phases`, padded row by row in `row`: the padded
    /// image is never written whole, which cost a strided stem a pass over
    /// it. Returns the length of a channel's phases.
    #[inline(always)]
    fn split_padded<T: Copy>(
        &self,
        image: &[T],
        pad: T,
        row: &mut Vec<T>,
        phases: &mut Vec<T>,
    ) -> usize {
        let (ph, pw) = self.padded_dims();
        let (sw, qw) = (self.stride.1, pw.div_ceil(self.stride.1));
        let plane_len = sw * ph * qw;
        if plane_len == 0 {
            return plane_len;
        }
        if phases.len() < self.channels * plane_len {
            phases.resize(self.channels * plane_len, pad);
        }
        row.clear();
        row.resize(pw, pad);
        let columns = self.w.min(pw.saturating_sub(self.left));
        let (image_len, phases) = (self.h * self.w, phases.chunks_exact_mut(plane_len));
        for (c, phases) in phases.take(self.channels).enumerate() {
            let plane = &image[c * image_len..][..image_len];
            for r in 0..ph {
                let y = r.checked_sub(self.top).filter(|&y| y < self.h);
                match y {
                    Some(y) => {
                        row[..self.left].fill(pad);
                        row[self.left..][..columns]
                            .copy_from_slice(&plane[y * self.w..][..columns]);
                        row[self.left + columns..].fill(pad);
                    }
                    None => row.fill(pad),
                }
                split_row(row, sw, phases, r * qw);
            }
        }
        plane_len
    }

    /// Whether the kernel is 1x1 at a stride, over an unpadded image whose
    /// rows and columns hold every window.
    fn is_unpadded_subsample(&self) -> bool {
        let (sh, sw) = self.stride;
        self.kernel == (1, 1)
            && !self.is_unit_stride()
            && (self.top, self.left) == (0, 0)
            && self.out_h > 0
            && self.out_w > 0
            && (self.out_h - 1) * sh < self.h
            && (self.out_w - 1) * sw < self.w
    }

    /// The patch matrix of a 1x1 convolution at a stride, unpadded: every
    /// `sh`-th row of each channel, every `sw`-th value of it. The general
    /// path padded and split every row into its column phases first, and
    /// an imported ResNet's 1x1 stride-2 shortcut spent longer on its
    /// patches than on its products.
    #[inline(always)]
    fn subsample<'a, T: Copy>(
        &self,
        image: &[T],
        width: usize,
        pad: T,
        matrix: &'a mut Vec<T>,
    ) -> &'a [T] {
        let (sh, sw) = self.stride;
        let (w, out_w) = (self.w, self.out_w);
        matrix.resize(self.channels * width, pad);
        let planes = image
            .chunks_exact(self.h * w)
            .zip(matrix.chunks_exact_mut(width));
        for (plane, row) in planes {
            let outs = row.chunks_exact_mut(out_w).take(self.out_h);
            for (out, src) in outs.zip(plane.chunks(sh * w)) {
                let src = &src[..w];
                if sw == 2 {
                    // Pairs of values, which compile to vector shuffles.
                    let pairs = (w / 2).min(out_w);
                    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
                        *o = pair[0];
                    }
                    for (x, o) in out.iter_mut().enumerate().skip(pairs) {
                        *o = src[2 * x];
                    }
                } else {
                    for (o, &v) in out.iter_mut().zip(src.iter().step_by(sw)) {
                        *o = v;
                    }
                }
            }
        }
        matrix
    }
}

/// Elements [`Geometry::im2col`] copies as one move.
const SPAN: usize = 8;

/// Buffers for [`Geometry::im2col`] and [`winograd`](super::winograd),
/// kept from one evaluation to the next so that a run does not allocate
/// them anew.
#[derive(Default)]
pub struct Patches<T> {
    /// The image with its padding, or for Winograd its rows' even and odd
    /// columns.
    pub(super) padded: Vec<T>,
    /// The patch matrix, the transformed tiles, or an f32 sparse kernel's
    /// outputs on the padded planes' grid.
    pub(super) matrix: Vec<T>,
    /// The products in the transform domain.
    pub(super) products: Vec<T>,
    /// A strided convolution's plane split into its column phases.
    pub(super) phases: Vec<T>,
}

/// `dst = src` in moves of 8, 4, 2 and 1 elements, inlined: the rows of a
/// CIFAR-10 plane are a dozen elements, for which a call to `memcpy` costs
/// more than the copy.
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len());
    let mut dst = dst.chunks_exact_mut(8);
    let mut src = src.chunks_exact(8);
    for (d, s) in (&mut dst).zip(&mut src) {
        copy_n::<T, 8>(d, s);
    }
    let (mut dst, mut src) = (dst.into_remainder(), src.remainder());
    if dst.len() >= 4 {
        copy_n::<T, 4>(dst, src);
        (dst, src) = (&mut dst[4..], &src[4..]);
    }
    if dst.len() >= 2 {
        copy_n::<T, 2>(dst, src);
        (dst, src) = (&mut dst[2..], &src[2..]);
    }
    if let (Some(d), Some(s)) = (dst.first_mut(), src.first()) {
        *d = *s;
    }
}

/// The first `N` elements of `src` into `dst`, as one fixed-size move.
#[inline(always)]
fn copy_n<T: Copy, const N: usize>(dst: &mut [T], src: &[T]) {
    let src: &[T; N] = src[..N].try_into().expect("N elements");
    let dst: &mut [T; N] = (&mut dst[..N]).try_into().expect("N elements");
    *dst = *src;
}

/// `weights`, `[O, taps]`, packed as `[panel][tap / G][ROWS][G]`: panel `i`
/// holds output channels `i * ROWS..`, and taps and channels past the last
/// are zero.
pub fn pack_panels<T: Copy + Default, const G: usize>(weights: &[T], taps: usize) -> Vec<T> {
    let co = weights.len() / taps;
    let groups = taps.div_ceil(G);
    let panel_len = groups * ROWS * G;
    let mut panels = vec![T::default(); co.div_ceil(ROWS) * panel_len];
    for (o, filter) in weights.chunks_exact(taps).enumerate() {
        let panel = &mut panels[o / ROWS * panel_len..][..panel_len];
        for (t, &w) in filter.iter().enumerate() {
            panel[(t / G * ROWS + o % ROWS) * G + t % G] = w;
        }
    }
    panels
}

/// `weights`, `[O, taps]`, as `[taps][O]`: for tiles that take a vector
/// of output channels per tap.
pub fn by_tap<T: Copy + Default>(weights: &[T], taps: usize) -> Vec<T> {
    let co = weights.len() / taps;
    let mut by_tap = vec![T::default(); weights.len()];
    for (o, filter) in weights.chunks_exact(taps).enumerate() {
        for (t, &w) in filter.iter().enumerate() {
            by_tap[t * co + o] = w;
        }
    }
    by_tap
}

/// One value per output channel, from a scalar or a vector of `co` cast to
/// `T`, padded with `T::default()` to whole panels.
pub fn per_channel<T: Datum + Copy + Default>(values: &Tensor, co: usize) -> TractResult<Vec<T>> {
    let values = values.cast_to::<T>()?;
    let values = values.to_plain_array_view::<T>()?;
    let mut padded = vec![T::default(); co.next_multiple_of(ROWS)];
    match values.len() {
        1 => padded[..co].fill(*values.iter().next().expect("one value")),
        n if n == co => padded[..co]
            .iter_mut()
            .zip(values.iter())
            .for_each(|(p, &v)| *p = v),
        n => bail!("{n} values for {co} output channels"),
    }
    Ok(padded)
}
