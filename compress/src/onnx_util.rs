//! What compression steps need of ONNX initializers beyond building and
//! reading them (`models::onnx`): per-channel int8 quantization.

/// Symmetric int8 quantization of a kernel whose first axis is the output
/// channel: one scale per channel (`max |w| / 127`), values in -127..=127.
/// An all-zero channel gets scale 1.
pub fn quantize_per_channel(data: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = data.len() / channels;
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(channels);
    for c in 0..channels {
        let w = &data[c * per..(c + 1) * per];
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 && (max / 127.0).is_normal() {
            max / 127.0
        } else {
            1.0
        };
        scales.push(scale);
        q.extend(
            w.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}
