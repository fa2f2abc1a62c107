//! A squeezebox file whose pictures are not CIFAR's 32x32: the runtime takes
//! the size from the file, checks batches against it and gives
//! onnxruntime's answers. The file is export_nets.py's ResNet behind
//! squeezebox's contract (tests/python/squeezebox_net.py), 64 wide and 48
//! high.

mod common;

use common::{onnxruntime_probabilities, squeezebox_64x48};
use runtime::probe::Probe;
use runtime::{ImageSize, Model, IMAGE_BYTES};

#[test]
fn a_64x48_squeezebox_file_runs_at_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = squeezebox_64x48(dir.path());
    let model = Model::load(&path).unwrap();
    let size = ImageSize {
        height: 48,
        width: 64,
    };
    assert_eq!(model.image_size(), size);
    assert_eq!((model.height(), model.width()), (48, 64));
    assert_eq!(model.image_bytes(), 48 * 64 * 3);
    assert!(model.normalise().is_none());

    let pixels: Vec<u8> = (0..2 * size.bytes()).map(|i| (i * 7 % 251) as u8).collect();
    let got = model.run(&pixels).unwrap();
    assert_eq!(got.len(), 2);
    let want = onnxruntime_probabilities(&path, &pixels, (48, 64), None);
    for (i, want) in want.iter().enumerate() {
        for (g, w) in got.probabilities_of(i).iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "image {i}: {g} vs onnxruntime's {w}");
        }
    }

    // CIFAR-sized pixels are not a whole number of its pictures.
    let err = model.run(&[0; IMAGE_BYTES]).unwrap_err().to_string();
    assert!(err.contains("not a whole number of 64x48"), "{err}");

    // Probes (quantization's calibration) take the same size.
    let bytes = std::fs::read(&path).unwrap();
    let probe = Probe::from_bytes(&bytes, &["logits".to_string()]).unwrap();
    assert_eq!(probe.image_bytes(), size.bytes());
    let logits = probe.run(&pixels).unwrap();
    assert_eq!(logits[0].shape, [2, 10]);
    assert!(probe.run(&[0; IMAGE_BYTES]).is_err());
}
