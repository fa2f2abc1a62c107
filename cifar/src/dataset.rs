//! Images and labels in memory.

use crate::IMAGE_BYTES;

/// CIFAR-10 images with their labels. Images are HWC interleaved RGB, not the
/// file's planes, because that is the input layout of every squeezebox model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `len() * IMAGE_BYTES` bytes: channel `c` of pixel (`x`, `y`) of image
    /// `i` is at `i * 3072 + (y * 32 + x) * 3 + c`.
    pub images: Vec<u8>,
    /// The class of each image, 0 to 9.
    pub labels: Vec<u8>,
    /// The class names in label order, from `batches.meta.txt`.
    pub classes: Vec<String>,
}

impl Dataset {
    /// An empty dataset with room for `len` images.
    pub(crate) fn with_capacity(classes: Vec<String>, len: usize) -> Dataset {
        Dataset {
            images: Vec::with_capacity(len * IMAGE_BYTES),
            labels: Vec::with_capacity(len),
            classes,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 3,072 HWC bytes of image `i`. Panics if `i >= len()`, like indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// The images at `indices`, in that order: a shuffled mini-batch, a
    /// calibration sample. Panics on an index `>= len()`, like indexing.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut subset = Dataset::with_capacity(self.classes.clone(), indices.len());
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

    #[test]
    fn subset_gathers_images_and_labels_in_order() {
        let data = Dataset {
            images: (0..3).flat_map(|i| [i as u8; IMAGE_BYTES]).collect(),
            labels: vec![7, 8, 9],
            classes: vec!["c".into(); 10],
        };
        let subset = data.subset(&[2, 0, 2]);
        assert_eq!(subset.labels, [9, 7, 9]);
        assert_eq!(subset.len(), 3);
        assert!(subset.image(1).iter().all(|&b| b == 0));
        assert!(subset.image(2).iter().all(|&b| b == 2));
        assert!(data.subset(&[]).is_empty());
    }
}
