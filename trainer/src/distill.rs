//! Knowledge distillation (Hinton, Vinyals and Dean, 2015): a trained
//! teacher's class probabilities, softened at a temperature, are a second
//! target beside the labels, so that a small or pruned student learns
//! which wrong classes are nearly right. The teacher is any model file of
//! the same classes that takes the same pictures the same way: the dense
//! parent of a pruned net, or a larger net for a small one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor};

use models::graph::{Normalise, Preprocess};
use models::Graph;

use crate::error::TrainError;
use crate::Net;

/// The settings of a distilled run; part of its recipe, so a checkpoint
/// resumes only under the same teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distillation {
    /// The teacher's model file.
    pub teacher: PathBuf,
    /// Share of the loss that is the soft targets', in (0, 1]; the labels
    /// have the rest.
    pub weight: f64,
    /// Softmax temperature of both nets' soft targets.
    pub temperature: f64,
}

impl Distillation {
    /// Refuses a weight outside (0, 1] or a temperature that is not positive.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.weight > 0.0 && self.weight <= 1.0) {
            return Err(TrainError::Invalid(format!(
                "distillation weight {} is outside (0, 1]",
                self.weight
            )));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(TrainError::Invalid(format!(
                "distillation temperature {} is not positive",
                self.temperature
            )));
        }
        Ok(())
    }
}

/// A loaded teacher, in eval mode.
pub struct Teacher {
    net: Net,
    weight: f64,
    temperature: f64,
}

impl Teacher {
    /// Loads the teacher of `settings` for a student of `student` trained
    /// on images of `classes`. A file that is not a model, predicts other
    /// classes or takes its pictures another way is one line naming it.
    pub fn load(
        settings: &Distillation,
        student: &Graph,
        classes: &[String],
        device: Device,
    ) -> Result<Teacher, TrainError> {
        settings.validate()?;
        let path = &settings.teacher;
        let refuse =
            |why: String| TrainError::Invalid(format!("teacher {}: {why}", path.display()));
        let bytes = std::fs::read(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
        let model = models::onnx::decode(&bytes).map_err(|e| refuse(e.to_string()))?;
        if model.meta.labels != classes {
            return Err(refuse(format!(
                "it predicts {} classes ({}), the data has {} ({})",
                model.meta.labels.len(),
                model.meta.labels.join(", "),
                classes.len(),
                classes.join(", ")
            )));
        }
        let graph = model.layer_graph().map_err(|e| refuse(e.to_string()))?;
        if graph.preprocess != student.preprocess {
            return Err(refuse(format!(
                "it takes {}, the student {}",
                pictures(&graph.preprocess),
                pictures(&student.preprocess)
            )));
        }
        let weights =
            models::onnx::read_weights(&model.proto, &graph).map_err(|e| refuse(e.to_string()))?;
        let mut net = Net::fresh(&graph, device).map_err(|e| refuse(e.to_string()))?;
        net.load_weights(&weights)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Teacher {
            net,
            weight: settings.weight,
            temperature: settings.temperature,
        })
    }

    /// The distilled loss of a student's `logits` on `images` with `labels`:
    /// `(1 - w) CE(labels) + w T^2 KL(teacher_T || student_T)`. The `T^2`
    /// keeps the soft targets' gradients as large at any temperature.
    pub fn loss(&self, images: &Tensor, logits: &Tensor, hard: Tensor) -> Tensor {
        let t = self.temperature;
        let teacher = tch::no_grad(|| self.net.forward_t(images, false));
        let target = (teacher / t).log_softmax(-1, Kind::Float);
        let student = (logits / t).log_softmax(-1, Kind::Float);
        // KL divergence with the target as log-probabilities, per image.
        let soft = student.kl_div(&target, Reduction::Mean, true) * logits.size()[1] as f64;
        hard * (1.0 - self.weight) + soft * (self.weight * t * t)
    }
}

/// How a model takes its pictures, for a message.
fn pictures(p: &Preprocess) -> String {
    let crop = p
        .crop
        .map_or_else(String::new, |c| format!(" cropped to {c}x{c}"));
    let normalise = match p.normalise {
        Normalise::PerImage => "each picture standardised",
        _ => "channels normalised",
    };
    format!("{}x{} pictures{crop}, {normalise}", p.width, p.height)
}

/// Distillation on the command line of every command that trains.
#[derive(Debug, Clone, clap::Args)]
pub struct DistillArgs {
    /// Distil from this trained model: its soft targets beside the labels.
    /// It must predict the same classes from the same pictures (a dense
    /// parent, or a larger net of the zoo).
    #[arg(long, value_name = "FILE")]
    pub teacher: Option<PathBuf>,
    /// Share of the loss that is the teacher's soft targets, in (0, 1].
    #[arg(long, default_value_t = 0.5, requires = "teacher")]
    pub distill_weight: f64,
    /// Softmax temperature of the soft targets.
    #[arg(long, default_value_t = 4.0, requires = "teacher")]
    pub temperature: f64,
}

impl DistillArgs {
    /// The recipe's distillation, if a teacher was given.
    pub fn distillation(&self) -> Option<Distillation> {
        self.teacher.as_ref().map(|teacher| Distillation {
            teacher: teacher.clone(),
            weight: self.distill_weight,
            temperature: self.temperature,
        })
    }
}
