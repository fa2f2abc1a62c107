//! The latency figures of the report: a first run, then timed runs at batch
//! 1 and, for several pictures, as one batch.

use runtime::timing::{measure, timed};
use runtime::Model;

use crate::report::{ms, BatchLatency, Latency, Millis};

/// Times `pixels` (one or more pictures) through `model`. The first run is
/// taken before any warm-up, so it includes what tract does once per plan.
pub fn latency(
    model: &Model,
    pixels: &[u8],
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Latency> {
    let first = &pixels[..model.image_bytes().min(pixels.len())];
    let (result, first_run) = timed(|| model.run(first));
    result?;
    let batch1 = measure(model, first, warmup, runs)?;
    let gmacs = |seconds: f64| model.macs().map(|m| m as f64 / seconds / 1e9);
    let size = pixels.len() / model.image_bytes();
    let batch = if size > 1 {
        let whole = measure(model, pixels, warmup, runs)?;
        let per_image = whole.per_item(size);
        Some(BatchLatency {
            size,
            whole: Millis::from(&whole),
            per_image: Millis::from(&per_image),
            gmac_per_s: gmacs(per_image.median.as_secs_f64()),
        })
    } else {
        None
    };
    Ok(Latency {
        warmup,
        runs,
        first_run_ms: ms(first_run),
        batch1: Millis::from(&batch1),
        batch1_gmac_per_s: gmacs(batch1.median.as_secs_f64()),
        batch,
    })
}
