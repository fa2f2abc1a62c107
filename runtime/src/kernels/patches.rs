//! The operands of a convolution as a matrix product, laid out for
//! register-blocked micro-kernels: the patch matrix (im2col) of one image,
//! and the weights packed into panels of output channels. An element of
//! the patch matrix is one f32, or for int8 dot products a 32-bit word of
//! four channels' bytes, whose `G = 4` weights sit together in the panels.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PoolSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Outputs per 256-bit vector of f32 or i32.
pub const VECTOR: usize = 8;
/// Output channels a micro-kernel computes together: one broadcast weight
/// (or group of taps) each per step.
pub const ROWS: usize = 6;

/// Whether `conv` is a 2-D, stride-1, undilated, ungrouped convolution of
/// channel planes with an OIHW kernel: the kind these layouts serve.
pub fn is_plain(conv: &Conv) -> bool {
    let spec = &conv.pool_spec;
    conv.group == 1
        && conv.kernel_fmt == KernelFormat::OIHW
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && spec.rank() == 2
        && spec.strides().iter().all(|&s| s == 1)
        && spec.dilations().iter().all(|&d| d == 1)
}

/// One image's sizes and padding, for a 2-D, stride-1, undilated
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
}

impl Geometry {
    /// The geometry of `spec` on an input of `shape` (`[N, C, H, W]` or
    /// `[C, H, W]`).
    pub fn new(spec: &PoolSpec, shape: &[usize]) -> TractResult<Geometry> {
        let shape = spec.data_format.shape(shape)?;
        let (h, w) = (shape.hw_dims()[0], shape.hw_dims()[1]);
        let padding = spec.computed_padding(shape.hw_dims());
        let (rows, columns) = (&padding[0], &padding[1]);
        Ok(Geometry {
            channels: spec.input_channels,
            h,
            w,
            top: rows.pad_before,
            left: columns.pad_before,
            out_h: rows.convoluted,
            out_w: columns.convoluted,
            kernel: (spec.kernel_shape[0], spec.kernel_shape[1]),
        })
    }

    pub fn image_len(&self) -> usize {
        self.channels * self.h * self.w
    }

    pub fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    pub fn taps(&self) -> usize {
        self.channels * self.kernel.0 * self.kernel.1
    }

    /// Whether the patch matrix of a 1x1 kernel is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.out_h == self.h && self.out_w == self.w
    }

    /// The same convolution over an image whose channels are packed `g` to
    /// an element.
    pub fn in_groups(self, g: usize) -> Geometry {
        Geometry {
            channels: self.channels.div_ceil(g),
            ..self
        }
    }

    /// The patch matrix of `image` into `patches`, `[taps][width]`: tap
    /// `(c, ky, kx)` is row `(c * kh + ky) * kw + kx`. Taps in the padding
    /// are `pad`, and so are positions past the last up to `width`.
    pub fn im2col<T: Copy>(&self, image: &[T], width: usize, pad: T, patches: &mut Vec<T>) {
        let (kh, kw) = self.kernel;
        // Every element is written below, so old contents may stay.
        patches.resize(self.taps() * width, pad);
        let mut rows = patches.chunks_exact_mut(width);
        for plane in image.chunks_exact(self.h * self.w) {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = rows.next().expect("a row per tap");
                    self.fill(plane, (ky, kx), pad, row);
                }
            }
        }
    }

    /// Tap `(ky, kx)` of `plane` for every output position.
    fn fill<T: Copy>(&self, plane: &[T], (ky, kx): (usize, usize), pad: T, row: &mut [T]) {
        // Output columns whose tap lands inside the image.
        let lo = self.left.saturating_sub(kx).min(self.out_w);
        let hi = (self.w + self.left)
            .saturating_sub(kx)
            .clamp(lo, self.out_w);
        for (oy, out) in row
            .chunks_exact_mut(self.out_w)
            .take(self.out_h)
            .enumerate()
        {
            match (oy + ky).checked_sub(self.top).filter(|&iy| iy < self.h) {
                Some(iy) => {
                    let first = iy * self.w + lo + kx - self.left;
                    out[..lo].fill(pad);
                    out[lo..hi].copy_from_slice(&plane[first..][..hi - lo]);
                    out[hi..].fill(pad);
                }
                None => out.fill(pad),
            }
        }
        row[self.positions()..].fill(pad);
    }
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

/// The micro-kernel's tiles across `width` output positions, a multiple of
/// [`VECTOR`]: `(first position, vectors)`, two vectors wide, then one for
/// an odd vector at the end.
pub fn tiles(width: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..width)
        .step_by(2 * VECTOR)
        .map(move |column| (column, ((width - column) / VECTOR).min(2)))
}

/// Has `multiply` compute one image's product for whole panels of [`ROWS`]
/// channels and whole vectors of positions, rows `width` apart, and puts
/// it in `out`, `[channels, positions]`: straight into `out` where the two
/// shapes agree, else through `products` and a copy of each row's
/// positions.
pub fn write_product<T: Copy + Default>(
    out: &mut [T],
    (channels, positions, width): (usize, usize, usize),
    products: &mut Vec<T>,
    multiply: impl FnOnce(&mut [T]),
) {
    if channels % ROWS == 0 && width == positions {
        multiply(out);
        return;
    }
    products.resize(channels.next_multiple_of(ROWS) * width, T::default());
    multiply(products);
    for (plane, row) in out
        .chunks_exact_mut(positions)
        .zip(products.chunks_exact(width))
    {
        plane.copy_from_slice(&row[..positions]);
    }
}
