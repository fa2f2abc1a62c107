//! Intermediate values of a model: any named ONNX value becomes an output, so
//! that tools can calibrate quantization ranges or compare two versions of a
//! model layer by layer.

use std::sync::Arc;

use models::onnx;
use tract_onnx::prelude::*;

use crate::{kernels, ImageSize, RuntimeError};

/// A model whose outputs are the named values, for any batch size.
pub struct Probe {
    names: Vec<String>,
    size: ImageSize,
    plan: Arc<TypedRunnableModel>,
}

/// One value for a whole batch: its shape (batch axis first) and its
/// elements as f32. Integer tensors come back as their raw integers
/// (a quantized value is not dequantized here).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// Whether the model holds this value as integers.
    pub integer: bool,
}

impl Probe {
    /// Loads a squeezebox model (the same contract as [`crate::Model`]) with
    /// `values`, ONNX value names, as its outputs.
    pub fn from_bytes(bytes: &[u8], values: &[String]) -> Result<Probe, RuntimeError> {
        let size = ImageSize::from(&onnx::decode(bytes)?.contract);
        if values.is_empty() {
            return Err(RuntimeError::Model(
                "a probe needs at least one value".into(),
            ));
        }
        let tract_err =
            |e: TractError| RuntimeError::Model(format!("tract cannot probe this model: {e:#}"));
        let mut model = crate::onnx_ops::reader()
            .model_for_read(&mut &bytes[..])
            .map_err(tract_err)?;
        model.select_outputs_by_name(values).map_err(tract_err)?;
        let batch = model.sym("N");
        let plan = kernels::runnable(model, size.nhwc_fact(batch.into())).map_err(tract_err)?;
        Ok(Probe {
            names: values.to_vec(),
            size,
            plan,
        })
    }

    /// The probed value names, in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Bytes of one raw picture the model takes.
    pub fn image_bytes(&self) -> usize {
        self.size.bytes()
    }

    /// Runs a batch of raw pictures of the model's size; one [`Value`] per
    /// name.
    pub fn run(&self, pixels: &[u8]) -> Result<Vec<Value>, RuntimeError> {
        let fail = |e: TractError| RuntimeError::Model(format!("inference failed: {e}"));
        let input = tvec!(self.size.nhwc(pixels)?.into());
        let outputs = self.plan.run(input).map_err(fail)?;
        outputs
            .iter()
            .map(|t| {
                let integer = t.datum_type().unquantized().is_integer();
                let plain = t.clone().into_tensor();
                let as_f32 = plain.cast_to::<f32>().map_err(fail)?;
                let view = as_f32.to_plain_array_view::<f32>().map_err(fail)?;
                Ok(Value {
                    shape: t.shape().to_vec(),
                    data: view.iter().copied().collect(),
                    integer,
                })
            })
            .collect()
    }
}
