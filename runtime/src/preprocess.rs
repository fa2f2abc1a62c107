//! Pictures to model input: any decodable image becomes the RGB bytes (HWC)
//! at the size the model takes (32x32 for squeezebox's own). The model, or
//! [`crate::foreign`] for another tool's, standardises the pixels, so this
//! only fixes size and colour type.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::{imageops, imageops::FilterType, DynamicImage, ImageReader, Rgb, RgbImage};

use crate::{ImageSize, RuntimeError};

/// The input bytes, at `size`, for a picture of any size and colour type.
///
/// Grey becomes three equal channels and 16-bit channels are scaled to 8
/// bits. Alpha is composited on black, so fully transparent pixels read as
/// black whatever colour they happen to store. A picture of another shape
/// is centre-cropped to the model's shape first (a square for CIFAR's), so
/// objects keep their proportions, then resized with a triangle filter,
/// which averages the whole footprint of each output pixel when shrinking.
/// An RGB picture of the model's size passes through unchanged.
pub fn to_pixels(image: &DynamicImage, size: ImageSize) -> Result<Vec<u8>, RuntimeError> {
    let (w, h) = (image.width(), image.height());
    if w == 0 || h == 0 {
        return Err(RuntimeError::Input(format!("the image is {w}x{h}")));
    }
    let (mw, mh) = (size.width as u64, size.height as u64);
    // The largest centred region of the model's shape, rounded to pixels.
    let (cw, ch) = if w as u64 * mh > h as u64 * mw {
        (((h as u64 * mw + mh / 2) / mh).clamp(1, w as u64) as u32, h)
    } else {
        (w, ((w as u64 * mh + mw / 2) / mw).clamp(1, h as u64) as u32)
    };
    let rgb = on_black(image);
    let cropped = if (cw, ch) == (w, h) {
        rgb
    } else {
        imageops::crop_imm(&rgb, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image()
    };
    let (tw, th) = (size.width as u32, size.height as u32);
    let sized = if (cw, ch) == (tw, th) {
        cropped
    } else {
        imageops::resize(&cropped, tw, th, FilterType::Triangle)
    };
    Ok(sized.into_raw())
}

/// Reads a picture as the input of squeezebox's own 32x32 models.
pub fn load_image(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    load_image_sized(path, ImageSize::CIFAR)
}

/// Reads and decodes a PNG, JPEG or BMP file into the input bytes of a
/// model of pictures of `size`. The format comes from the file's content,
/// not its name.
pub fn load_image_sized(path: &Path, size: ImageSize) -> Result<Vec<u8>, RuntimeError> {
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
    to_pixels(&image, size).map_err(|e| fail(e.to_string()))
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
