//! Per-image latency of every shipped model through the runtime, one thread,
//! batch 1, on a real sample picture; and the preprocessing a user's picture
//! goes through before it (decode, resize to the 32x32 contract).
//! `cargo bench --bench runtime`.

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{criterion_group, criterion_main, Criterion};
use runtime::preprocess::load_image;
use runtime::Model;
use squeezebox::{shared_dir, shipped_models};

fn latency(c: &mut Criterion) {
    let pixels = load_image(&shared_dir().join("images/cat.png")).expect("sample picture");
    let one = NonZeroUsize::MIN;
    let mut group = c.benchmark_group("batch1");
    for path in shipped_models() {
        let model = Model::load_with_threads(&path, one).expect("shipped model loads");
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        group.bench_function(name, |b| {
            b.iter(|| model.run(black_box(&pixels)).expect("runs"))
        });
    }
    group.finish();
}

fn preprocessing(c: &mut Criterion) {
    let mut group = c.benchmark_group("preprocess");
    // A CIFAR-sized PNG and a larger JPEG that must be cropped and resized.
    for file in ["cat.png", "cat-256.jpg"] {
        let path = shared_dir().join("images").join(file);
        group.bench_function(file, |b| {
            b.iter(|| load_image(black_box(&path)).expect("decodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, latency, preprocessing);
criterion_main!(benches);
