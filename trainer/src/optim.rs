//! SGD with (Nesterov) momentum, written out in tensor ops rather than
//! tch's optimiser so that its momentum buffers can be checkpointed and its
//! weight decay can skip biases and norms.

use models::ParamRole;
use tch::Tensor;

use crate::Net;

/// A learned tensor with its momentum buffer.
struct Slot {
    name: String,
    param: Tensor,
    momentum: Tensor,
    /// Weight decay for this tensor: the recipe's for kernels, 0 otherwise.
    decay: f64,
}

/// PyTorch's SGD (dampening 0): `g = grad + wd*p; b = mu*b + g;
/// p -= lr * (nesterov ? g + mu*b : b)`.
pub struct Sgd {
    slots: Vec<Slot>,
    momentum: f64,
    nesterov: bool,
}

impl Sgd {
    /// An optimiser for the learned tensors of `net` (running statistics are
    /// left to batch norm), with zeroed momentum buffers.
    pub fn new(net: &Net, momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd {
        let slots = net
            .params()
            .filter(|(spec, _)| spec.role.is_learned())
            .map(|(spec, param)| Slot {
                name: spec.name.clone(),
                param: param.shallow_clone(),
                momentum: param.zeros_like(),
                decay: if spec.role == ParamRole::Weight {
                    weight_decay
                } else {
                    0.0
                },
            })
            .collect();
        Sgd {
            slots,
            momentum,
            nesterov,
        }
    }

    /// Clears the gradients before a backward pass.
    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.param.zero_grad();
        }
    }

    /// Applies one update with learning rate `lr` from the current gradients.
    pub fn step(&mut self, lr: f64) {
        let mu = self.momentum;
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let grad = slot.param.grad();
                if !grad.defined() {
                    continue;
                }
                let mut update = if slot.decay > 0.0 {
                    grad + &slot.param * slot.decay
                } else {
                    grad
                };
                if mu > 0.0 {
                    let _ = slot.momentum.g_mul_scalar_(mu).g_add_(&update);
                    update = if self.nesterov {
                        update + &slot.momentum * mu
                    } else {
                        slot.momentum.shallow_clone()
                    };
                }
                let _ = slot.param.g_sub_(&(update * lr));
            }
        });
    }

    /// The momentum buffers by parameter name, for a checkpoint.
    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.momentum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Net {
        Net::seeded(
            &models::zoo::arch("squeeze1").unwrap().graph(),
            tch::Device::Cpu,
            0,
        )
        .unwrap()
    }

    fn first(net: &Net, role: ParamRole) -> Tensor {
        net.params()
            .find(|(s, _)| s.role == role)
            .unwrap()
            .1
            .shallow_clone()
    }

    #[test]
    fn without_decay_it_matches_tch_sgd() {
        use tch::nn::OptimizerConfig;
        let graph = models::zoo::arch("squeeze1").unwrap().graph();
        tch::manual_seed(5);
        let store = tch::nn::VarStore::new(tch::Device::Cpu);
        let reference = Net::new(&store.root(), &graph).unwrap();
        let ours = Net::fresh(&graph, tch::Device::Cpu).unwrap();
        ours.copy_from(&reference);
        let config = tch::nn::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            wd: 0.0,
            nesterov: true,
        };
        let mut theirs = config.build(&store, 0.05).unwrap();
        let mut sgd = Sgd::new(&ours, 0.9, true, 0.0);
        let x = Tensor::randn([8, 3, 24, 24], (tch::Kind::Float, tch::Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]);
        for _ in 0..3 {
            theirs.backward_step(&reference.forward_t(&x, true).cross_entropy_for_logits(&y));
            sgd.zero_grad();
            ours.forward_t(&x, true)
                .cross_entropy_for_logits(&y)
                .backward();
            sgd.step(0.05);
        }
        // Rounding differs (the update is summed in another order); a wrong
        // formula would differ by about lr * grad, 1e-2.
        for ((spec, a), (_, b)) in ours.params().zip(reference.params()) {
            let diff = f64::try_from((a - b).abs().max()).unwrap();
            assert!(diff < 1e-4, "{} differs by {diff}", spec.name);
        }
    }

    #[test]
    fn decay_shrinks_kernels_only_and_nesterov_looks_ahead() {
        let net = net();
        let (kernel, bias) = (first(&net, ParamRole::Weight), first(&net, ParamRole::Bias));
        let _ = tch::no_grad(|| bias.shallow_clone().fill_(0.5));
        let (k0, b0) = (kernel.copy(), bias.copy());
        let mut sgd = Sgd::new(&net, 0.9, true, 0.1);
        // A zero loss that still gives every tensor a zero gradient.
        let loss = net
            .params()
            .filter(|(s, _)| s.role.is_learned())
            .map(|(_, p)| p.sum(tch::Kind::Float))
            .sum::<Tensor>()
            * 0.0;
        sgd.zero_grad();
        loss.backward();
        sgd.step(1.0);
        // Zero gradient: the kernel shrinks by lr*(wd*p + mu*wd*p), the bias stays.
        let expected = &k0 * (1.0 - 0.1 * 1.9);
        assert!(f64::try_from((&kernel - expected).abs().max()).unwrap() < 1e-6);
        assert!(bias.equal(&b0));
    }
}
