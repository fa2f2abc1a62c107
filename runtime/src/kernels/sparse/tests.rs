//! The sparse layouts give the dense ones' outputs: f32 within float
//! rounding of tract's convolution, int8 bit for bit with the dense
//! [`PlaneQConv`] (and so within one step of tract's). One test per kernel
//! variant, each skipped where the CPU lacks its instructions.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::Conv;

use super::Densest;
use crate::kernels::dot::Dot;
use crate::kernels::tests::{
    assert_close, assert_within_one_step, conv_cases, f32_case, int8_case, run,
};
use crate::kernels::{Activation, PlaneConv, PlaneQConv};

/// Sparse weights however dense the kernel.
const ALWAYS: Densest = Densest {
    pointwise: 1.0,
    window: 1.0,
    winograd: 1.0,
};

/// Dense weights, unless the kernel is all zeros.
const NEVER: Densest = Densest {
    pointwise: 0.0,
    window: 0.0,
    winograd: 0.0,
};

/// The share of zeros in the test kernels: between squeeze1.p75's and
/// squeeze1.p90's.
const ZEROS: f32 = 0.8;

/// Whether `op`, printed, runs sparse weights.
fn is_sparse(op: &impl std::fmt::Debug) -> bool {
    format!("{op:?}").contains("sparse")
}

/// The cases that keep the dense layout: those whose grid is shorter than
/// one vector (1x1 planes), and strided ones.
fn dense_only(conv: &Conv, shape: &[usize; 4]) -> bool {
    shape[2] * shape[3] < 8 || conv.pool_spec.strides().iter().any(|&s| s > 1)
}

#[test]
fn sparse_f32_conv_matches_tracts_within_float_rounding() {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        eprintln!("skipped: no AVX2 and FMA on this CPU, tract keeps the f32 convolutions");
        return;
    }
    for (i, case) in conv_cases().iter().enumerate() {
        let (conv, shape, activation) = case;
        let (input, consts, expected) = f32_case(i, case, ZEROS);
        let f32 = f32::datum_type();
        let op = PlaneConv::with_densest(conv, f32, &consts, *activation, Some(shape), ALWAYS);
        let op = op.unwrap().expect("an f32 conv");
        assert_eq!(is_sparse(&op), !dense_only(conv, shape), "case {i}: {op:?}");
        assert_close(&run(&op, &input), &expected, &format!("case {i}: {op:?}"));
    }
}

/// Each case's sparse int8 convolution with `dot` gives the dense one's
/// bytes.
fn sparse_int8_gives_the_dense_bytes(dot: Dot) {
    if !Dot::available().any(|d| d == dot) {
        eprintln!("skipped: no {dot:?} on this CPU");
        return;
    }
    for (i, case) in conv_cases().iter().enumerate() {
        let shape = Some(&case.1[..]);
        let (conv, input, consts, expected) = int8_case(i, case, ZEROS);
        let [sparse, dense] = [ALWAYS, NEVER].map(|densest| {
            PlaneQConv::with_dot(&conv, input.datum_type(), &consts, shape, dot, densest)
                .unwrap()
                .expect("an int8 conv")
        });
        assert_eq!(
            is_sparse(&sparse),
            !dense_only(&conv, &case.1),
            "case {i}: {sparse:?}"
        );
        assert!(!is_sparse(&dense), "case {i}: {dense:?}");
        let got = run(&sparse, &input);
        assert_eq!(got, run(&dense, &input), "case {i}: {sparse:?}");
        assert_within_one_step(&got, &expected, &format!("case {i}, {dot:?}"));
    }
}

#[test]
fn sparse_int8_gives_the_dense_bytes_with_avx512_vnni() {
    sparse_int8_gives_the_dense_bytes(Dot::Vnni);
}

#[test]
fn sparse_int8_gives_the_dense_bytes_with_avx_vnni() {
    sparse_int8_gives_the_dense_bytes(Dot::AvxVnni);
}

#[test]
fn sparse_int8_gives_the_dense_bytes_with_avx2() {
    sparse_int8_gives_the_dense_bytes(Dot::Avx2);
}

/// Prints, for squeeze1's convolutions and kernels of several shares of
/// zeros, how long the dense and the sparse layouts take (best of five
/// means): where the sparse one starts to pay, which [`Densest`] holds.
/// `cargo test -p runtime --release sparse_break_even -- --ignored
/// --nocapture`, on a quiet machine.
#[test]
#[ignore]
fn sparse_break_even() {
    use tract_onnx::tract_core::ops::cnn::{KernelFormat, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;
    let same = |k: usize| PaddingSpec::Explicit(tvec![k / 2, k / 2], tvec![k / 2, k / 2]);
    let convs = [
        (64, 32, 1, 12),
        (128, 32, 1, 12),
        (32, 64, 1, 12),
        (32, 64, 3, 12),
        (256, 32, 1, 6),
        (32, 128, 1, 6),
        (32, 128, 3, 6),
        (3, 64, 3, 24),
    ];
    let time = |op: &dyn TypedOp, input: &Tensor| {
        let runs = 300;
        (0..5)
            .map(|_| {
                let start = std::time::Instant::now();
                for _ in 0..runs {
                    std::hint::black_box(run(op, input));
                }
                start.elapsed().as_secs_f64() * 1e6 / runs as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let dots: Vec<Dot> = Dot::available().collect();
    println!("conv, zeros, f32 dense/sparse us, then per dot int8 dense/sparse us");
    for (ci, co, k, side) in convs {
        let pool_spec = PoolSpec::new(DataFormat::NCHW, tvec![k, k], same(k), None, None, ci, co);
        let conv = Conv {
            pool_spec,
            kernel_fmt: KernelFormat::OIHW,
            group: 1,
            q_params: None,
        };
        let case = (conv, [1, ci, side, side], Activation::RELU);
        for zeros in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
            let mut line = format!("{ci}->{co} {k}x{k} {side}x{side}, {zeros:.1}:");
            let (input, consts, _) = f32_case(0, &case, zeros);
            let [sparse, dense] = [ALWAYS, NEVER].map(|densest| {
                let op = PlaneConv::with_densest(
                    &case.0,
                    f32::datum_type(),
                    &consts,
                    Activation::RELU,
                    Some(&case.1),
                    densest,
                );
                op.unwrap().expect("an f32 conv")
            });
            line += &format!(
                " f32 {:.2}/{:.2}",
                time(&dense, &input),
                time(&sparse, &input)
            );
            let (conv, input, consts, _) = int8_case(0, &case, zeros);
            for &dot in &dots {
                let [sparse, dense] = [ALWAYS, NEVER].map(|densest| {
                    let dt = input.datum_type();
                    let op = PlaneQConv::with_dot(&conv, dt, &consts, Some(&case.1), dot, densest);
                    op.unwrap().expect("an int8 conv")
                });
                line += &format!(
                    " {dot:?} {:.2}/{:.2}",
                    time(&dense, &input),
                    time(&sparse, &input)
                );
            }
            println!("{line}");
        }
    }
}
