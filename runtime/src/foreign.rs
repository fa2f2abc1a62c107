//! Other tools' image classifiers (what `torch.onnx.export` writes), run
//! without importing them: their preprocessing is not in the graph, so the
//! runtime does it here, torchvision's way: pixels scaled to 0..1, then
//! `(x - mean) / std` per channel, as float `[N,3,H,W]`.

use models::onnx::ForeignModel;
use tract_onnx::prelude::*;

use crate::{onnx_ops, ImageSize, RuntimeError};

/// Parses the file `bytes` of `model` into a tract model whose outputs are
/// the logits and, where the graph ends in Softmax, the probabilities.
/// The shapes the file gives its intermediate values and outputs are left
/// to tract to infer: exporters name the batch axis there (`batch`), which
/// tract would hold against the batch of each plan.
pub(crate) fn parse(mut bytes: &[u8], model: &ForeignModel) -> TractResult<InferenceModel> {
    let (onnx, reader) = onnx_ops::foreign_reader();
    let mut proto = onnx.proto_model_for_read(&mut bytes)?;
    if let Some(graph) = proto.graph.as_mut() {
        onnx_ops::check_ops(&onnx, graph, reader)?;
        graph.value_info.clear();
        graph.output.iter_mut().for_each(|o| o.r#type = None);
    }
    let mut parsed = onnx.model_for_proto_model(&proto)?;
    if let Some((logits, probabilities)) = &model.softmax {
        parsed.select_outputs_by_name([logits, probabilities])?;
    }
    Ok(parsed)
}

/// Per-channel mean and standard deviation, on a 0..1 scale, in RGB order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalise {
    mean: [f32; 3],
    std: [f32; 3],
}

impl Normalise {
    /// Three finite means and three finite, positive deviations.
    pub fn new(mean: &[f32], std: &[f32]) -> Result<Normalise, RuntimeError> {
        let three = |what: &str, values: &[f32]| -> Result<[f32; 3], RuntimeError> {
            let values: [f32; 3] = values.try_into().map_err(|_| {
                RuntimeError::Model(format!(
                    "{} {what} values for the 3 channels (R,G,B) of the model's pictures",
                    values.len()
                ))
            })?;
            match values.iter().find(|v| !v.is_finite()) {
                Some(v) => Err(RuntimeError::Model(format!("{what} {v} is not a number"))),
                None => Ok(values),
            }
        };
        let (mean, std) = (three("mean", mean)?, three("std", std)?);
        if let Some(s) = std.iter().find(|&&s| s <= 0.0) {
            return Err(RuntimeError::Model(format!(
                "std {s}: each channel's std must be above 0"
            )));
        }
        Ok(Normalise { mean, std })
    }

    /// The means, R, G and B.
    pub fn mean(&self) -> [f32; 3] {
        self.mean
    }

    /// The standard deviations, R, G and B.
    pub fn std(&self) -> [f32; 3] {
        self.std
    }

    /// Raw pictures of `size`, laid end to end, as the normalised float
    /// `[N,3,H,W]` input.
    pub(crate) fn nchw(&self, size: ImageSize, pixels: &[u8]) -> Result<Tensor, RuntimeError> {
        let n = size.images(pixels)?;
        let plane = size.height * size.width;
        let mut out = vec![0f32; n * size.bytes()];
        for (image, out) in pixels
            .chunks_exact(size.bytes())
            .zip(out.chunks_exact_mut(size.bytes()))
        {
            for (c, plane_out) in out.chunks_exact_mut(plane).enumerate() {
                let (mean, std) = (self.mean[c], self.std[c]);
                let values = image[c..].iter().step_by(ImageSize::CHANNELS);
                for (o, &v) in plane_out.iter_mut().zip(values) {
                    *o = (v as f32 / 255.0 - mean) / std;
                }
            }
        }
        let shape = [n, ImageSize::CHANNELS, size.height, size.width];
        Tensor::from_shape(&shape, &out).map_err(|e| RuntimeError::Input(e.to_string()))
    }
}

/// Each row of `logits` (`classes` wide) through a softmax, for graphs that
/// end in logits.
pub(crate) fn softmax(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let start = out.len();
        out.extend(row.iter().map(|&x| (x - max).exp()));
        let sum: f32 = out[start..].iter().sum();
        out[start..].iter_mut().for_each(|p| *p /= sum);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_become_normalised_planes() {
        let size = ImageSize {
            height: 1,
            width: 2,
        };
        let n = Normalise::new(&[0.0, 0.5, 1.0], &[1.0, 0.5, 2.0]).unwrap();
        let t = n.nchw(size, &[0, 255, 51, 255, 0, 102]).unwrap();
        assert_eq!(t.shape(), [1, 3, 1, 2]);
        let got = t.try_as_plain_ram().unwrap();
        let got = got.as_slice::<f32>().unwrap();
        let want = [0.0, 1.0, 1.0, -1.0, (0.2 - 1.0) / 2.0, (0.4 - 1.0) / 2.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn bad_means_and_deviations_are_refused() {
        let err = |m: &[f32], s: &[f32]| Normalise::new(m, s).unwrap_err().to_string();
        assert!(err(&[0.5; 2], &[1.0; 3]).contains("2 mean values"));
        assert!(err(&[0.5; 3], &[1.0; 4]).contains("4 std values"));
        assert!(err(&[0.5; 3], &[1.0, 0.0, 1.0]).contains("above 0"));
        assert!(err(&[0.5; 3], &[1.0, -1.0, 1.0]).contains("above 0"));
        assert!(err(&[f32::NAN, 0.5, 0.5], &[1.0; 3]).contains("not a number"));
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0, 1000.0, 0.0, 0.0], 3);
        assert!((p[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        assert!((p[3] - 1.0).abs() < 1e-6);
    }
}
