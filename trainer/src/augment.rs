//! Training-time distortions, done in Rust on the raw bytes: a few
//! microseconds an image, so that batches are ready before libtorch asks.

use models::graph::RAW_CHANNELS;
use models::Graph;
use rand::Rng;

/// Zero padding around the image before the random crop, as a share of
/// its side: 4 pixels for CIFAR-10's 32, as in the ResNet recipes.
const PAD_SHARE: usize = 8;
/// The study's brightness jitter: a uniform shift of up to this many levels.
const MAX_BRIGHTNESS: f32 = 63.0;
/// The study's contrast factor range: 1 plus or minus this.
const MAX_CONTRAST: f32 = 0.8;

/// How training images are distorted, chosen from the model's input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Height and width of the pictures read (the model's raw input).
    src: (usize, usize),
    /// Height and width of the network input.
    crop: (usize, usize),
    /// Zero padding above and below, left and right of the picture before
    /// the random crop.
    pad: (usize, usize),
    /// The brightness and contrast jitter, as a multiple of the study's
    /// ranges; 0 for none.
    jitter: f32,
    /// Side of the zeroed square; 0 for none.
    cutout: usize,
}

impl Augment {
    /// The study's recipe for models that crop (24x24 of CIFAR's 32x32:
    /// random crop, flip, brightness and contrast jitter, its ranges scaled
    /// by `jitter`); a random crop after padding by an eighth of the side,
    /// and flip, for models that take the whole picture. Either can add a
    /// cutout square of side `cutout`.
    pub fn for_graph(graph: &Graph, cutout: usize, jitter: f32) -> Augment {
        let pre = &graph.preprocess;
        let crop = pre.input_size();
        let small = crop.0 < pre.height || crop.1 < pre.width;
        Augment {
            src: (pre.height, pre.width),
            crop,
            pad: if small {
                (0, 0)
            } else {
                (pre.height / PAD_SHARE, pre.width / PAD_SHARE)
            },
            jitter: if small { jitter } else { 0.0 },
            cutout,
        }
    }

    /// Floats in one augmented image, `[3, crop height, crop width]`.
    pub fn image_len(&self) -> usize {
        RAW_CHANNELS * self.crop.0 * self.crop.1
    }

    /// Writes a distorted copy of the HWC image `src` into `out` as CHW
    /// floats on the 0-255 scale, drawing its randomness from `rng` in a
    /// fixed order so that a seeded epoch is reproducible.
    pub fn image(&self, src: &[u8], out: &mut [f32], rng: &mut impl Rng) {
        let ((height, width), (rows, cols)) = (self.src, self.crop);
        let top = rng.gen_range(0..=height + 2 * self.pad.0 - rows) as isize - self.pad.0 as isize;
        let left = rng.gen_range(0..=width + 2 * self.pad.1 - cols) as isize - self.pad.1 as isize;
        let flip: bool = rng.gen();
        let plane_len = rows * cols;
        for (c, plane) in out.chunks_exact_mut(plane_len).enumerate() {
            for (y, row) in plane.chunks_exact_mut(cols).enumerate() {
                let sy = top + y as isize;
                for (x, v) in row.iter_mut().enumerate() {
                    let sx = left + if flip { cols - 1 - x } else { x } as isize;
                    *v = if (0..height as isize).contains(&sy) && (0..width as isize).contains(&sx)
                    {
                        src[(sy as usize * width + sx as usize) * RAW_CHANNELS + c] as f32
                    } else {
                        0.0
                    };
                }
            }
        }
        if self.jitter > 0.0 {
            let (brightness, contrast) = (MAX_BRIGHTNESS * self.jitter, MAX_CONTRAST * self.jitter);
            let delta = rng.gen_range(-brightness..brightness);
            let factor = rng.gen_range(1.0 - contrast..1.0 + contrast).max(0.0);
            // Clamped to the pixel range, as a camera would: without the clamp
            // per-image standardisation would cancel the brightness shift.
            for plane in out.chunks_exact_mut(plane_len) {
                let mean = plane.iter().sum::<f32>() / plane.len() as f32;
                for v in plane {
                    *v = ((*v - mean) * factor + mean + delta).clamp(0.0, 255.0);
                }
            }
        }
        if self.cutout > 0 {
            // The square's centre is anywhere in the image, so it may be clipped.
            let zeroed_rows = clipped_span(rng.gen_range(0..rows), self.cutout, rows);
            let zeroed_cols = clipped_span(rng.gen_range(0..cols), self.cutout, cols);
            for plane in out.chunks_exact_mut(plane_len) {
                for row in plane
                    .chunks_exact_mut(cols)
                    .skip(zeroed_rows.start)
                    .take(zeroed_rows.len())
                {
                    row[zeroed_cols.clone()].fill(0.0);
                }
            }
        }
    }
}

/// The part of a `len`-long span centred on `centre` that lies in `0..side`.
fn clipped_span(centre: usize, len: usize, side: usize) -> std::ops::Range<usize> {
    let start = centre.saturating_sub(len / 2);
    start..(centre + len - len / 2).min(side)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn graph(arch: &str) -> Graph {
        models::zoo::arch(arch).unwrap().graph()
    }

    /// An image whose every byte says where it came from.
    fn gradient() -> Vec<u8> {
        (0..32 * 32 * RAW_CHANNELS)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    #[test]
    fn a_24_crop_is_a_window_of_the_image_and_reproducible() {
        let aug = Augment {
            jitter: 0.0,
            ..Augment::for_graph(&graph("squeeze1"), 0, 1.0)
        };
        let src = gradient();
        let mut a = vec![0.0; aug.image_len()];
        let mut b = vec![0.0; aug.image_len()];
        aug.image(&src, &mut a, &mut ChaCha8Rng::seed_from_u64(3));
        aug.image(&src, &mut b, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
        // Every value is some source byte of the right channel: no padding.
        for (c, plane) in a.chunks_exact(24 * 24).enumerate() {
            let channel: Vec<f32> = src.iter().skip(c).step_by(3).map(|&v| v as f32).collect();
            assert!(plane.iter().all(|v| channel.contains(v)));
        }
    }

    #[test]
    fn jitter_stays_in_pixel_range_and_cutout_zeroes_a_square() {
        let src = gradient();
        let jittered = Augment::for_graph(&graph("squeeze1"), 0, 1.0);
        let mut out = vec![0.0; jittered.image_len()];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            jittered.image(&src, &mut out, &mut rng);
            assert!(out.iter().all(|v| (0.0..=255.0).contains(v)));
        }
        let cut = Augment::for_graph(&graph("resnet9"), 8, 1.0);
        let white = vec![255u8; src.len()];
        let mut out = vec![0.0; cut.image_len()];
        cut.image(&white, &mut out, &mut rng);
        let zeros = out.iter().filter(|&&v| v == 0.0).count();
        // Some zeros (padding and the square), never more than both together.
        assert!(
            zeros > 0 && zeros <= 3 * (8 * 8 + 2 * 4 * 32),
            "{zeros} zeros"
        );
    }

    #[test]
    fn a_whole_picture_of_another_size_is_padded_by_an_eighth_of_its_sides() {
        let mut wide = graph("resnet9");
        (
            wide.preprocess.crop,
            wide.preprocess.height,
            wide.preprocess.width,
        ) = (None, 40, 48);
        let aug = Augment::for_graph(&wide, 0, 1.0);
        assert_eq!((aug.crop, aug.pad, aug.jitter), ((40, 48), (5, 6), 0.0));
        let src: Vec<u8> = (0..40 * 48 * 3).map(|i| (i % 3) as u8 + 1).collect();
        let mut out = vec![0.0; aug.image_len()];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..10 {
            aug.image(&src, &mut out, &mut rng);
            // Each plane holds its channel's value, or the padding's zero.
            for (c, plane) in out.chunks_exact(40 * 48).enumerate() {
                assert!(plane.iter().all(|&v| v == 0.0 || v == c as f32 + 1.0));
            }
        }
    }

    #[test]
    fn spans_clip_at_the_edges() {
        assert_eq!(clipped_span(0, 8, 24), 0..4);
        assert_eq!(clipped_span(10, 8, 24), 6..14);
        assert_eq!(clipped_span(23, 8, 24), 19..24);
    }
}
