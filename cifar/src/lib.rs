//! CIFAR-10 in its official binary layout, read with no heavy dependencies so
//! that the trainer, the runtime and compress share one reader.
//!
//! [`open`] locates the data (a directory holding `cifar-10-batches-bin/`,
//! that directory itself, or `cifar-10-binary.tar.gz` read in place) and
//! [`Source::load`] reads a [`Split`] into a [`Dataset`] whose images are HWC
//! interleaved RGB: the uint8 `[N, 32, 32, 3]` input of every squeezebox model.
//!
//! Never depends on libtorch (`tch`) or tract: `label-image --eval` reads
//! the test batch with it on a board.

mod archive;
mod batch;
mod dataset;
mod error;
mod source;
mod split;

pub use dataset::Dataset;
pub use error::CifarError;
pub use source::{open, Source};
pub use split::Split;

/// Height and width of an image, in pixels.
pub const SIDE: usize = 32;
/// Bytes of one image: 32x32 pixels of 3 channels.
pub const IMAGE_BYTES: usize = SIDE * SIDE * 3;
/// Bytes of one file record: a label byte, then the image as R, G and B planes.
pub const RECORD_BYTES: usize = IMAGE_BYTES + 1;
/// Records in each official batch file.
pub const BATCH_RECORDS: usize = 10_000;
/// Records held out of the training batches for validation (see [`Split::Validation`]).
pub const VALIDATION_SIZE: usize = 5_000;
/// Number of classes; labels run from 0 to 9.
pub const CLASSES: usize = 10;
