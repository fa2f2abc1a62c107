//! squeezebox's own ops, swapped into tract's optimised plan where tract's
//! generic ones are slow for the shapes of the zoo. Each gives tract's
//! answers (pooling exactly, LRN to within float rounding), as the tests
//! below check against tract's op on the same input.

mod lrn;
mod max_pool;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{MaxPool, OptMaxPool};
use tract_onnx_opl::lrn::Lrn;

pub use lrn::PlaneLrn;
pub use max_pool::PlaneMaxPool;

/// Replaces, in an optimised model, every op a squeezebox op does faster.
/// Each replacement has the same inputs and output facts, so the graph
/// around it is untouched.
pub(crate) fn swap_in(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes().len() {
        if let Some(op) = faster(model, model.node(id))? {
            model.node_mut(id).op = op;
        }
    }
    Ok(())
}

/// The squeezebox op for `node`, if there is one for its op and types.
fn faster(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Box<dyn TypedOp>>> {
    let pool = (node.op_as::<OptMaxPool>())
        .map(|p| (&p.pool_spec, p.with_index_outputs))
        .or_else(|| (node.op_as::<MaxPool>()).map(|p| (&p.pool_spec, p.with_index_outputs)));
    if let Some((spec, None)) = pool {
        return Ok(PlaneMaxPool::for_spec(spec).map(|op| Box::new(op) as _));
    }
    if let Some(lrn) = node.op_as::<Lrn>() {
        let dt = model.outlet_fact(node.inputs[0])?.datum_type;
        return Ok(PlaneLrn::for_op(lrn, dt).map(|op| Box::new(op) as _));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::internal::*;
    use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec, PoolSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;
    use tract_onnx_opl::lrn::Lrn;

    use super::{PlaneLrn, PlaneMaxPool};

    /// Deterministic values in [-4, 4): the same every run.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut uniform = models::weights::uniform(seed);
        (0..len).map(|_| uniform() * 4.0).collect()
    }

    fn run(op: &dyn TypedOp, input: &Tensor) -> Tensor {
        let outputs = op.eval_out_of_plan(tvec!(input.clone().into_tvalue()));
        outputs.unwrap().unwrap().remove(0).into_tensor()
    }

    fn spec(kernel: usize, stride: usize, padding: PaddingSpec, c: usize) -> PoolSpec {
        PoolSpec::new(
            DataFormat::NCHW,
            tvec![kernel, kernel],
            padding,
            None,
            Some(tvec![stride, stride]),
            c,
            c,
        )
    }

    #[test]
    fn max_pool_gives_tracts_values_for_every_padding_stride_and_type() {
        let explicit = |before: usize, after: usize| {
            PaddingSpec::Explicit(tvec![before, before], tvec![after, after])
        };
        let cases = [
            // The zoo's 3x3 stride-2 SAME pool, 24 -> 12 and 12 -> 6.
            (3, 2, explicit(0, 1), [1, 64, 24, 24]),
            (3, 2, PaddingSpec::SameUpper, [2, 5, 12, 12]),
            (2, 2, PaddingSpec::Valid, [1, 3, 8, 6]),
            (4, 4, PaddingSpec::Valid, [1, 2, 8, 8]),
            (3, 1, explicit(1, 1), [1, 2, 7, 5]),
            (3, 2, explicit(1, 1), [1, 2, 7, 7]),
            (3, 2, PaddingSpec::SameLower, [1, 2, 8, 8]),
            // Odd sizes, padding on one side only, windows past the edge.
            (3, 2, explicit(0, 2), [2, 3, 9, 7]),
            (
                2,
                3,
                PaddingSpec::ExplicitOnnxPool(tvec![1, 2], tvec![1, 2], true),
                [1, 2, 6, 7],
            ),
        ];
        for (i, (kernel, stride, padding, shape)) in cases.into_iter().enumerate() {
            let spec = spec(kernel, stride, padding, shape[1]);
            let ours = PlaneMaxPool::for_spec(&spec).expect("a 2-D NCHW pool");
            let tracts = MaxPool::new(spec.clone(), None);
            let len = shape.iter().product();
            let floats = Tensor::from_shape(&shape, &values(len, i as u64)).unwrap();
            let bytes = floats.cast_to::<u8>().unwrap().into_owned();
            let signed = floats.cast_to::<i8>().unwrap().into_owned();
            let quantized = {
                let mut t = bytes.clone();
                unsafe {
                    t.set_datum_type(u8::datum_type().quantize(QParams::ZpScale {
                        zero_point: 3,
                        scale: 0.1,
                    }))
                };
                t
            };
            for input in [floats, bytes, signed, quantized] {
                let expected = run(&tracts, &input);
                let got = run(&ours, &input);
                assert_eq!(got.datum_type(), input.datum_type(), "case {i}");
                assert_eq!(
                    got,
                    expected,
                    "case {i}: {spec:?} on {:?}",
                    input.datum_type()
                );
            }
        }
    }

    #[test]
    fn max_pool_leaves_dilated_and_channel_last_pools_to_tract() {
        let mut dilated = spec(3, 1, PaddingSpec::Valid, 4);
        dilated.dilations = Some(tvec![2, 2]);
        assert!(PlaneMaxPool::for_spec(&dilated).is_none());
        let mut nhwc = spec(3, 1, PaddingSpec::Valid, 4);
        nhwc.data_format = DataFormat::NHWC;
        assert!(PlaneMaxPool::for_spec(&nhwc).is_none());
    }

    #[test]
    fn lrn_matches_tracts_within_float_rounding() {
        let cases = [
            // tuto's: size 9, beta 0.75 (the square-root path).
            (9, 0.001, 0.75, 1.0, [1, 64, 12, 12]),
            (5, 0.0001, 0.75, 2.0, [2, 7, 3, 5]),
            // Even sizes put the extra channel after; other betas use powf.
            (4, 0.5, 0.5, 1.0, [1, 6, 4, 4]),
            (1, 1.0, 1.3, 0.5, [3, 2, 5, 1]),
            (12, 0.01, 0.75, 1.0, [1, 3, 2, 2]),
        ];
        for (i, (size, alpha, beta, bias, shape)) in cases.into_iter().enumerate() {
            let tracts = Lrn {
                alpha,
                beta,
                bias,
                size,
            };
            let ours = PlaneLrn::for_op(&tracts, f32::datum_type()).unwrap();
            let input =
                Tensor::from_shape(&shape, &values(shape.iter().product(), 10 + i as u64)).unwrap();
            let expected = run(&tracts, &input);
            let got = run(&ours, &input);
            assert_eq!(got.shape(), expected.shape());
            let got = got.to_plain_array_view::<f32>().unwrap();
            let expected = expected.to_plain_array_view::<f32>().unwrap();
            for (g, e) in got.iter().zip(expected) {
                assert!(
                    (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "case {i}: {g} vs {e}"
                );
            }
        }
        let op = Lrn {
            alpha: 0.1,
            beta: 0.75,
            bias: 1.0,
            size: 3,
        };
        assert!(PlaneLrn::for_op(&op, f16::datum_type()).is_none());
    }
}
