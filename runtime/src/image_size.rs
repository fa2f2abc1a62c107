//! The size of a model's input pictures, which its file declares: squeezebox's
//! own models take CIFAR-10's 32x32, an imported or foreign one the size it
//! was exported at. A batch of raw pixels is a whole number of such images.

use models::onnx::Contract;
use tract_onnx::prelude::*;

use crate::RuntimeError;

/// Height and width of a model's RGB input pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub height: usize,
    pub width: usize,
}

impl ImageSize {
    /// The size of squeezebox's own models: CIFAR-10's.
    pub const CIFAR: ImageSize = ImageSize {
        height: 32,
        width: 32,
    };

    /// Channels of every picture: RGB.
    pub const CHANNELS: usize = 3;

    /// Bytes of one raw picture, `height x width x 3`.
    pub const fn bytes(self) -> usize {
        self.height * self.width * Self::CHANNELS
    }

    /// How many pictures `pixels` holds: at least one, and whole.
    pub fn images(self, pixels: &[u8]) -> Result<usize, RuntimeError> {
        let n = pixels.len() / self.bytes();
        if n == 0 || n * self.bytes() != pixels.len() {
            return Err(RuntimeError::Input(format!(
                "{} bytes is not a whole number of {self} RGB images",
                pixels.len()
            )));
        }
        Ok(n)
    }

    /// The fact of a batch of `batch` raw pictures, `uint8 [N,H,W,3]`.
    pub(crate) fn nhwc_fact(self, batch: TDim) -> TypedFact {
        let (h, w) = (self.height.into(), self.width.into());
        u8::fact([batch, h, w, Self::CHANNELS.into()])
    }

    /// Raw pictures laid end to end as a `uint8 [N,H,W,3]` tensor.
    pub(crate) fn nhwc(self, pixels: &[u8]) -> Result<Tensor, RuntimeError> {
        let shape = [
            self.images(pixels)?,
            self.height,
            self.width,
            Self::CHANNELS,
        ];
        Tensor::from_shape(&shape, pixels).map_err(|e| RuntimeError::Input(e.to_string()))
    }
}

impl From<&Contract> for ImageSize {
    fn from(c: &Contract) -> ImageSize {
        ImageSize {
            height: c.height,
            width: c.width,
        }
    }
}

/// Width by height, as pictures are named.
impl std::fmt::Display for ImageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}
