//! Any picture becomes the 32x32 RGB bytes the model takes.

mod common;

use std::path::Path;

use image::{
    DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, LumaA, Rgb, RgbImage, Rgba, RgbaImage,
};
use runtime::preprocess::{is_image, load_image, load_image_sized, to_pixels};
use runtime::{ImageSize, IMAGE_BYTES};

fn save(dir: &Path, name: &str, image: DynamicImage) -> std::path::PathBuf {
    let path = dir.join(name);
    image.save(&path).unwrap();
    path
}

#[test]
fn a_32x32_png_passes_through_byte_for_byte() {
    let path = common::sample("cat.png");
    let decoded = image::open(&path).unwrap();
    assert_eq!(decoded.color(), image::ColorType::Rgb8);
    assert_eq!(load_image(&path).unwrap(), decoded.to_rgb8().into_raw());
}

#[test]
fn a_256_jpeg_shrinks_to_look_like_the_32x32_original() {
    let big = load_image(&common::sample("cat-256.jpg")).unwrap();
    let small = load_image(&common::sample("cat.png")).unwrap();
    assert_eq!(big.len(), IMAGE_BYTES);
    let mean_diff = big
        .iter()
        .zip(&small)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / IMAGE_BYTES as f64;
    // 2.7 levels with the triangle filter; JPEG and the upscale cost some.
    assert!(
        mean_diff < 8.0,
        "mean absolute difference {mean_diff:.1} levels"
    );
}

#[test]
fn grey_pictures_become_three_equal_channels() {
    let dir = tempfile::tempdir().unwrap();
    let grey = GrayImage::from_fn(32, 32, |x, y| image::Luma([(x * 8 + y) as u8]));
    let pixels = load_image(&save(dir.path(), "grey.png", grey.clone().into())).unwrap();
    let expected: Vec<u8> = grey.into_raw().into_iter().flat_map(|v| [v; 3]).collect();
    assert_eq!(pixels, expected);
}

#[test]
fn alpha_is_composited_on_black() {
    let dir = tempfile::tempdir().unwrap();
    // Left half opaque orange, right half transparent white; grey at half alpha.
    let rgba = RgbaImage::from_fn(32, 32, |x, _| {
        if x < 16 {
            Rgba([255, 128, 0, 255])
        } else {
            Rgba([255, 255, 255, 0])
        }
    });
    let pixels = load_image(&save(dir.path(), "rgba.png", rgba.into())).unwrap();
    assert_eq!(&pixels[..3], &[255, 128, 0]);
    assert_eq!(&pixels[16 * 3..16 * 3 + 3], &[0, 0, 0]);

    let grey_alpha = GrayAlphaImage::from_pixel(32, 32, LumaA([200, 128]));
    let pixels = load_image(&save(dir.path(), "la.png", grey_alpha.into())).unwrap();
    assert!(pixels.iter().all(|&v| v == 100), "{:?}", &pixels[..6]);
}

#[test]
fn sixteen_bit_pictures_scale_to_eight_bits() {
    let dir = tempfile::tempdir().unwrap();
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_pixel(64, 64, Rgb([0xffff, 0x8080, 0x0000]));
    let pixels = load_image(&save(
        dir.path(),
        "deep.png",
        DynamicImage::ImageRgb16(deep),
    ))
    .unwrap();
    assert_eq!(pixels.len(), IMAGE_BYTES);
    assert!(
        pixels.chunks(3).all(|p| p == [255, 128, 0]),
        "{:?}",
        &pixels[..3]
    );
}

#[test]
fn wide_pictures_are_centre_cropped_not_squashed() {
    // Red | green (the middle 32 columns) | blue: the crop keeps only green.
    let wide = RgbImage::from_fn(64, 32, |x, _| match x {
        0..16 => Rgb([255, 0, 0]),
        16..48 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    });
    let pixels = to_pixels(&wide.into(), ImageSize::CIFAR).unwrap();
    assert!(pixels.chunks(3).all(|p| p == [0, 255, 0]));
}

#[test]
fn pictures_take_the_models_size_and_shape() {
    let size = ImageSize {
        height: 48,
        width: 64,
    };
    // A square picture for a 4:3 model: the middle 3/4 of its rows, where
    // the top and bottom eighths are red and the rest green.
    let square = RgbImage::from_fn(96, 96, |_, y| match y {
        0..12 | 84.. => Rgb([255, 0, 0]),
        _ => Rgb([0, 255, 0]),
    });
    let pixels = to_pixels(&square.into(), size).unwrap();
    assert_eq!(pixels.len(), size.bytes());
    assert!(pixels.chunks(3).all(|p| p == [0, 255, 0]));
    // A picture of the model's size passes through unchanged.
    let exact = RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8, y as u8, 7]));
    let pixels = to_pixels(&exact.clone().into(), size).unwrap();
    assert_eq!(pixels, exact.into_raw());
    // A file is read at the size asked for.
    let cat = load_image_sized(&common::sample("cat-256.jpg"), size).unwrap();
    assert_eq!(cat.len(), size.bytes());
}

#[test]
fn files_that_are_not_pictures_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not a picture, whatever the name says").unwrap();
    assert!(!is_image(&text));
    assert!(is_image(&common::sample("cat-256.jpg")));
    let err = load_image(&text).unwrap_err().to_string();
    assert!(
        err.contains("notes.png") && err.contains("not an image"),
        "{err}"
    );

    let missing = dir.path().join("missing.png");
    let err = load_image(&missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.png") && err.contains("cannot read"),
        "{err}"
    );

    let truncated = dir.path().join("truncated.png");
    std::fs::write(
        &truncated,
        &std::fs::read(common::sample("cat.png")).unwrap()[..100],
    )
    .unwrap();
    let err = load_image(&truncated).unwrap_err().to_string();
    assert!(
        err.contains("truncated.png")
            && err.contains("not a readable image")
            && !err.contains('\n'),
        "{err}"
    );
}
