//! Pictures to model input: any decodable image becomes the 32x32 RGB bytes
//! (HWC) every squeezebox model takes. The model standardises the pixels
//! itself, so this only fixes size and colour type.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::{imageops, imageops::FilterType, DynamicImage, ImageReader, Rgb, RgbImage};

use crate::RuntimeError;

/// Side of the model's input, in pixels.
const SIDE: u32 = models::graph::RAW_SIZE as u32;

/// The model's input bytes for a picture of any size and colour type.
///
/// Grey becomes three equal channels and 16-bit channels are scaled to 8
/// bits. Alpha is composited on black, so fully transparent pixels read as
/// black whatever colour they happen to store. A non-square picture is
/// centre-cropped to a square first, so objects keep their proportions as in
/// CIFAR, then resized with a triangle filter, which averages the whole
/// footprint of each output pixel when shrinking. A 32x32 RGB picture passes
/// through unchanged.
pub fn to_pixels(image: &DynamicImage) -> Result<Vec<u8>, RuntimeError> {
    let (w, h) = (image.width(), image.height());
    if w == 0 || h == 0 {
        return Err(RuntimeError::Input(format!("the image is {w}x{h}")));
    }
    let rgb = on_black(image);
    let side = w.min(h);
    let square = if w == h {
        rgb
    } else {
        imageops::crop_imm(&rgb, (w - side) / 2, (h - side) / 2, side, side).to_image()
    };
    let sized = if side == SIDE {
        square
    } else {
        imageops::resize(&square, SIDE, SIDE, FilterType::Triangle)
    };
    Ok(sized.into_raw())
}

/// Reads and decodes a PNG, JPEG or BMP file into the model's input bytes.
/// The format comes from the file's content, not its name.
pub fn load_image(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    let fail = |why: String| RuntimeError::File {
        path: path.to_path_buf(),
        why,
    };
    let reader = sniff(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !reader.format().is_some_and(|f| f.reading_enabled()) {
        return Err(fail("not an image (PNG, JPEG or BMP expected)".into()));
    }
    let image = reader
        .decode()
        .map_err(|e| fail(format!("not a readable image: {e}")))?;
    to_pixels(&image).map_err(|e| fail(e.to_string()))
}

/// Whether `path` holds a format [`load_image`] decodes, judged from its
/// first bytes: to pick the images out of a directory.
pub fn is_image(path: &Path) -> bool {
    sniff(path).is_ok_and(|r| r.format().is_some_and(|f| f.reading_enabled()))
}

/// A reader whose format is guessed from the content alone.
fn sniff(path: &Path) -> std::io::Result<ImageReader<BufReader<File>>> {
    ImageReader::new(BufReader::new(File::open(path)?)).with_guessed_format()
}

/// RGB with any alpha composited on black.
fn on_black(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        Rgb([r, g, b].map(|c| ((u16::from(c) * u16::from(a) + 127) / 255) as u8))
    })
}
