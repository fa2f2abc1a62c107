//! What compression steps need of ONNX initializers beyond building and
//! reading them (`models::onnx`): per-channel int8 quantization.

/// Symmetric int8 quantization of a kernel whose first axis is the output
/// channel: one scale per channel ([`channel_scales`]), values in
/// -127..=127.
pub fn quantize_per_channel(data: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let scales = channel_scales(data, channels);
    let per = data.len() / channels;
    let q = data
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[i / per]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scales)
}

/// The int8 scale of each output channel of a kernel: `max |w| / 127`, or
/// 1 for an all-zero channel. Weight sharing measures its levels in these
/// units, so it must be this rule.
pub fn channel_scales(data: &[f32], channels: usize) -> Vec<f32> {
    let per = data.len() / channels;
    data.chunks(per)
        .map(|w| {
            let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max > 0.0 && (max / 127.0).is_normal() {
                max / 127.0
            } else {
                1.0
            }
        })
        .collect()
}
