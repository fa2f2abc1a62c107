//! An exponential moving average of the weights: the study found it worth
//! 2.6 points, and it is what is evaluated and exported.

use tch::Device;

use crate::Net;

/// A shadow copy of a net whose every tensor, batch-norm running statistics
/// included, trails the live net's.
pub struct Ema {
    decay: f64,
    net: Net,
}

impl Ema {
    /// Starts the average at `live`'s current values.
    pub fn new(live: &Net, decay: f64, device: Device) -> Result<Ema, models::ModelError> {
        let net = Net::fresh(live.graph(), device)?;
        net.copy_from(live);
        Ok(Ema { decay, net })
    }

    /// Folds in `live` after its `updates`-th step (from 0). The decay ramps
    /// up as `(1+t)/(10+t)` so that the random start is soon forgotten.
    pub fn update(&self, live: &Net, updates: u64) {
        let t = updates as f64;
        let decay = self.decay.min((1.0 + t) / (10.0 + t));
        tch::no_grad(|| {
            for ((_, avg), (_, now)) in self.net.params().zip(live.params()) {
                let _ = avg.shallow_clone().lerp_(now, 1.0 - decay);
            }
        });
    }

    /// The averaged net.
    pub fn net(&self) -> &Net {
        &self.net
    }
}
