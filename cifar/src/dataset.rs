//! Images and labels in memory.

use crate::SIDE;

/// Labelled images: CIFAR-10's 32x32 ones, or pictures of another size read
/// for an imported model. Images are HWC interleaved RGB, not CIFAR's file
/// planes, because that is the input layout of every squeezebox model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * image_bytes()` bytes: channel `c` of pixel (`x`, `y`) of
    /// image `i` is at `i * image_bytes() + (y * width + x) * 3 + c`.
    pub images: Vec<u8>,
    /// The class of each image, an index into `classes`.
    pub labels: Vec<u8>,
    /// The class names in label order, from `batches.meta.txt` for CIFAR-10.
    pub classes: Vec<String>,
    /// Height and width of every image: 32 for CIFAR-10.
    pub height: usize,
    pub width: usize,
}

impl Dataset {
    /// An empty dataset of `height x width` images with room for `len` of
    /// them.
    pub fn with_capacity(classes: Vec<String>, height: usize, width: usize, len: usize) -> Dataset {
        Dataset {
            images: Vec::with_capacity(len * height * width * 3),
            labels: Vec::with_capacity(len),
            classes,
            height,
            width,
        }
    }

    /// An empty dataset of CIFAR-10's 32x32 images.
    pub(crate) fn cifar(classes: Vec<String>, len: usize) -> Dataset {
        Dataset::with_capacity(classes, SIDE, SIDE, len)
    }

    /// Bytes of one image, `height x width x 3`.
    pub fn image_bytes(&self) -> usize {
        self.height * self.width * 3
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The HWC bytes of image `i`. Panics if `i >= len()`, like indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let bytes = self.image_bytes();
        &self.images[i * bytes..(i + 1) * bytes]
    }

    /// The images at `indices`, in that order: a shuffled mini-batch, a
    /// calibration sample. Panics on an index `>= len()`, like indexing.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut subset =
            Dataset::with_capacity(self.classes.clone(), self.height, self.width, indices.len());
        for &i in indices {
            subset.images.extend_from_slice(self.image(i));
            subset.labels.push(self.labels[i]);
        }
        subset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IMAGE_BYTES;

    #[test]
    fn subset_gathers_images_and_labels_in_order() {
        let data = Dataset {
            images: (0..3).flat_map(|i| [i as u8; IMAGE_BYTES]).collect(),
            labels: vec![7, 8, 9],
            ..Dataset::cifar(vec!["c".into(); 10], 0)
        };
        let subset = data.subset(&[2, 0, 2]);
        assert_eq!(subset.labels, [9, 7, 9]);
        assert_eq!(subset.len(), 3);
        assert!(subset.image(1).iter().all(|&b| b == 0));
        assert!(subset.image(2).iter().all(|&b| b == 2));
        assert!(data.subset(&[]).is_empty());
        let wide = Dataset {
            images: (0..2).flat_map(|i| [i as u8; 2 * 5 * 3]).collect(),
            labels: vec![0, 1],
            ..Dataset::with_capacity(vec!["c".into(); 2], 2, 5, 0)
        };
        assert_eq!(wide.subset(&[1]).images, [1; 30]);
    }
}
