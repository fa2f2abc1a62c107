//! One training step of squeeze1 through libtorch: forward, backward and the
//! trainer's SGD update on a batch of 128 real CIFAR-10 images. `cargo bench --bench training`.

use criterion::{criterion_group, criterion_main, Criterion};
use squeezebox::test_images;
use tch::{Device, Kind, Reduction, Tensor};
use trainer::optim::Sgd;
use trainer::Net;

const BATCH: usize = 128;

fn training_step(c: &mut Criterion) {
    let graph = models::zoo::arch("squeeze1")
        .expect("squeeze1 is in the zoo")
        .graph();
    let net = Net::seeded(&graph, Device::Cpu, 1).expect("squeeze1 builds");
    let (pixels, _) = test_images(BATCH);
    let pixels = Tensor::from_slice(&pixels).view([BATCH as i64, 32, 32, 3]);
    // The 24x24 centre crop squeeze1 trains on, standardised per image.
    let crop = pixels
        .narrow(1, 4, 24)
        .narrow(2, 4, 24)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float);
    let images = trainer::net::standardise(&crop);
    let labels = Tensor::arange(BATCH as i64, (Kind::Int64, Device::Cpu)).remainder(10);
    let mut sgd = Sgd::new(&net, 0.9, true, 5e-4);
    c.bench_function("squeeze1 training step, batch 128", |b| {
        b.iter(|| {
            sgd.zero_grad();
            let logits = net.forward_t(&images, true);
            logits
                .cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.1)
                .backward();
            sgd.step(0.01);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = training_step
}
criterion_main!(benches);
