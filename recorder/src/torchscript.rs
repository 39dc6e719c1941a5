//! TorchScript models: networks defined and trained in Python, saved with
//! `torch.jit.script(model).save("model.pt")` (`torch.jit.trace` makes the
//! same kind of file), whose gradients gradlake replays at their checkpoints.
//!
//! The module must take one tensor of flattened examples [batch, features]
//! (cast to the element type of its params) and return class scores
//! [batch, classes]; the loss is the mean cross-entropy of those scores, as
//! for the built-in models. Its params are its `named_parameters()`, in that
//! order and under those names (`fc1.weight`, `encoder.layer.0.bias`, ...), and
//! a checkpoint must hold exactly them (see [`crate::checkpoint`]).
//!
//! The module runs in training mode. Gradients then depend on more than the
//! weights and the examples when it has dropout (a random mask for every
//! forward pass, from libtorch's generator, not Python's) or batch
//! normalisation (statistics of the batch at hand, so a per-sample gradient is
//! that of a batch of one — which batch-norm layers reject — and the full
//! gradient is accumulated over chunks of examples, each normalised on its
//! own). Replays of such modules are not comparable to what Python computed.
//! Nothing is inspected inside the module, so per-sample gradients take one
//! backward pass per example.

use std::path::{Path, PathBuf};

use tch::{CModule, Kind, Tensor};

use crate::data::Dataset;
use crate::error::{RecorderError, Result, torch_message};
use crate::model::Network;

/// A TorchScript module loaded from a file, in training mode.
pub struct TorchScriptModel {
    module: CModule,
    path: PathBuf,
    params: Vec<(String, Tensor)>,
    /// Element type of the params: examples are cast to it before the forward pass.
    input_kind: Kind,
}

impl std::fmt::Debug for TorchScriptModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchScriptModel").field("path", &self.path).field("params", &self.params.len()).finish()
    }
}

impl TorchScriptModel {
    /// Loads the module at `path` (on the CPU) and puts it in training mode.
    pub fn load(path: &Path) -> Result<Self> {
        let error = |message: String| RecorderError::ModelFile { path: path.display().to_string(), message };
        std::fs::metadata(path).map_err(|e| error(format!("cannot open: {e}")))?;
        let mut module = CModule::load(path).map_err(|e| {
            error(format!(
                "not a TorchScript module (make one with torch.jit.script(model).save(path)): {}",
                torch_message(&e)
            ))
        })?;
        module.f_set_train().map_err(|e| error(format!("cannot switch to training mode: {}", torch_message(&e))))?;
        let params = module.named_parameters().map_err(|e| error(torch_message(&e)))?;
        let Some((_, first)) = params.first() else {
            return Err(error("the module has no parameters".into()));
        };
        let input_kind = first.kind();
        if let Some((name, p)) = params.iter().find(|(_, p)| !p.is_floating_point()) {
            return Err(error(format!("parameter {name:?} is {:?}, not floating-point", p.kind())));
        }
        Ok(Self { module, path: path.to_path_buf(), params, input_kind })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_name(&self) -> String {
        self.path.file_name().map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    }

    fn error(&self, message: String) -> RecorderError {
        RecorderError::ModelFile { path: self.path.display().to_string(), message }
    }

    /// Forward pass, with the input's type and shape in the error.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = if x.kind() == self.input_kind { x.shallow_clone() } else { x.f_to_kind(self.input_kind)? };
        self.module.forward_ts(&[&x]).map_err(|e| {
            self.error(format!(
                "the forward pass failed on the dataset's examples, {:?} of shape {:?}: {}",
                x.kind(),
                x.size(),
                torch_message(&e)
            ))
        })
    }
}

impl Network for TorchScriptModel {
    fn name(&self) -> String {
        format!("torchscript:{}", self.file_name())
    }

    fn describe(&self) -> serde_json::Value {
        let absolute = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        serde_json::json!({
            "name": "torchscript",
            "path": self.path.display().to_string(),
            "absolute_path": absolute.display().to_string(),
            "params": self.params.iter().map(|(n, t)| serde_json::json!({ "name": n, "shape": t.size() })).collect::<Vec<_>>(),
        })
    }

    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        crate::checkpoint::load_into(&self.params, path)
    }

    fn check_data(&mut self, data: &Dataset) -> Result<()> {
        if data.is_empty() {
            return Err(RecorderError::InvalidArgument(format!("the dataset {} has no examples", data.name)));
        }
        // A probe of two examples in evaluation mode: batch-norm layers would otherwise
        // update their statistics, and two (not one) since some modules reject a batch of one.
        let x = data.features.narrow(0, 0, data.len().min(2));
        self.module.f_set_eval().map_err(|e| self.error(torch_message(&e)))?;
        let probe = tch::no_grad(|| self.forward(&x));
        self.module.f_set_train().map_err(|e| self.error(torch_message(&e)))?;
        let scores = probe?;
        let shape = scores.size();
        match shape[..] {
            [b, classes] if b == x.size()[0] && scores.is_floating_point() => {
                if classes < data.classes {
                    return Err(self.error(format!(
                        "the module scores {classes} classes, the dataset {} has {} (labels 0..{})",
                        data.name,
                        data.classes,
                        data.classes - 1
                    )));
                }
                Ok(())
            }
            _ => Err(self.error(format!(
                "the module must return class scores [batch, classes]; for a batch of shape {:?} it returned {:?} of shape {shape:?}",
                x.size(),
                scores.kind()
            ))),
        }
    }
}
