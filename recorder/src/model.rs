//! The built-in models: `mlp` (fully connected, ReLU) and `lenet` (LeNet-5).
//!
//! Params are named as PyTorch names them (`fc1.weight`, `conv1.bias`, ...), in
//! the order of the layers, weight before bias, so that a lake recorded here
//! and one recorded from a PyTorch model of the same shape line up.

use std::path::Path;

use tch::nn::{self, Module};
use tch::{Device, Tensor};

use crate::data::Dataset;
use crate::error::{RecorderError, Result};

/// What gradients need of a network: its params in a fixed order, class
/// scores for a batch, and weights from a checkpoint. Implemented by the
/// built-in [`Model`] and by [`crate::torchscript::TorchScriptModel`], so that
/// [`crate::gradients`] and [`crate::replay::replay`] serve both.
pub trait Network {
    /// Its name in `runs.model` (`mlp`, `torchscript:<file name>`, ...).
    fn name(&self) -> String;
    /// What it is, for `runs.config`.
    fn describe(&self) -> serde_json::Value;
    /// (name, tensor) of every param, in the order they are recorded.
    fn params(&self) -> &[(String, Tensor)];
    /// Class scores [batch, classes] of flattened examples [batch, features].
    fn logits(&self, x: &Tensor) -> Result<Tensor>;
    /// Replaces the weights by a checkpoint's (see [`crate::checkpoint`]).
    fn load_checkpoint(&mut self, path: &Path) -> Result<()>;
    /// Checks, before anything is written, that it takes the dataset's
    /// examples and scores at least its classes.
    fn check_data(&mut self, data: &Dataset) -> Result<()>;
    /// The built-in model, whose layers allow vectorised per-sample gradients.
    fn builtin(&self) -> Option<&Model> {
        None
    }
}

/// Which network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Architecture {
    /// Fully connected with ReLU between layers: inputs → hidden... → classes.
    Mlp {
        /// Widths of the hidden layers.
        hidden: Vec<i64>,
    },
    /// LeNet-5 for 28 × 28 single-channel images (conv 5×5 pad 2 → pool →
    /// conv 5×5 → pool → 120 → 84 → classes, ReLU).
    Lenet,
}

impl Architecture {
    /// Its name in `runs`.
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Mlp { .. } => "mlp",
            Architecture::Lenet => "lenet",
        }
    }
}

/// One forward pass, with the inputs and outputs of every layer with weights
/// (what vectorised per-sample gradients need).
pub struct Forward {
    /// Class scores, [batch, classes].
    pub logits: Tensor,
    /// Input of each convolution, [batch, channels, height, width].
    pub conv_inputs: Vec<Tensor>,
    /// Output of each convolution (before the ReLU), [batch, out channels, height, width].
    pub conv_outputs: Vec<Tensor>,
    /// Input of each fully connected layer, [batch, in].
    pub linear_inputs: Vec<Tensor>,
    /// Output of each fully connected layer (before the ReLU), [batch, out].
    pub linear_outputs: Vec<Tensor>,
}

/// Held while libtorch's global random generator is seeded and drawn from, by
/// [`Model::new`] and by any caller that needs the same guarantee.
pub static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A model and its weights.
pub struct Model {
    /// The weights (tch's store; save/load as safetensors).
    pub vs: nn::VarStore,
    arch: Architecture,
    convs: Vec<nn::Conv2D>,
    /// Each convolution's zero padding (stride and dilation are 1).
    conv_padding: Vec<i64>,
    linears: Vec<nn::Linear>,
    /// (name, tensor) of every param, in layer order.
    params: Vec<(String, Tensor)>,
}

impl Model {
    /// A freshly initialised model (PyTorch's default initialisation, seeded).
    ///
    /// libtorch has one global generator: the seeding and the initialisation hold
    /// [`GLOBAL_RNG`], so that models built on several threads at once (tests do)
    /// still get exactly the weights of their seed.
    pub fn new(arch: Architecture, features: i64, image_side: Option<i64>, classes: i64, seed: u64) -> Result<Self> {
        let _rng = GLOBAL_RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut convs = Vec::new();
        let mut conv_padding = Vec::new();
        let mut linears = Vec::new();
        let mut names = Vec::new();
        let widths: Vec<i64> = match &arch {
            Architecture::Mlp { hidden } => {
                if hidden.iter().any(|&w| w < 1) {
                    return Err(RecorderError::InvalidArgument(format!(
                        "mlp: hidden widths must be >= 1, got {hidden:?}"
                    )));
                }
                std::iter::once(features).chain(hidden.iter().copied()).chain([classes]).collect()
            }
            Architecture::Lenet => {
                if image_side != Some(28) || features != 28 * 28 {
                    return Err(RecorderError::InvalidArgument(format!(
                        "lenet needs 28×28 single-channel images; the dataset has {features} features"
                    )));
                }
                let pad = nn::ConvConfig { padding: 2, ..Default::default() };
                convs.push(nn::conv2d(&root / "conv1", 1, 6, 5, pad));
                convs.push(nn::conv2d(&root / "conv2", 6, 16, 5, Default::default()));
                conv_padding.extend([2, 0]);
                names.extend(["conv1", "conv2"].map(String::from));
                vec![16 * 5 * 5, 120, 84, classes]
            }
        };
        for (i, pair) in widths.windows(2).enumerate() {
            let name = format!("fc{}", i + 1);
            linears.push(nn::linear(&root / name.as_str(), pair[0], pair[1], Default::default()));
            names.push(name);
        }
        let variables = vs.variables();
        let mut params = Vec::new();
        for layer in &names {
            for part in ["weight", "bias"] {
                let name = format!("{layer}.{part}");
                let tensor = variables
                    .get(&name)
                    .ok_or_else(|| RecorderError::InvalidArgument(format!("internal: no variable {name}")))?;
                params.push((name, tensor.shallow_clone()));
            }
        }
        Ok(Self { vs, arch, convs, conv_padding, linears, params })
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// (name, tensor) of every param, in layer order.
    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// The convolutions, in layer order (their params come first), each with
    /// its zero padding (stride and dilation are 1).
    pub fn convs(&self) -> impl Iterator<Item = (&nn::Conv2D, i64)> {
        self.convs.iter().zip(self.conv_padding.iter().copied())
    }

    /// The forward pass on a batch of flattened examples [batch, features].
    pub fn forward(&self, x: &Tensor) -> Forward {
        let mut conv_inputs = Vec::with_capacity(self.convs.len());
        let mut conv_outputs = Vec::with_capacity(self.convs.len());
        let mut a = if self.convs.is_empty() {
            x.shallow_clone()
        } else {
            let mut h = x.view([-1, 1, 28, 28]);
            for conv in &self.convs {
                let z = conv.forward(&h);
                conv_inputs.push(h);
                h = z.relu().max_pool2d_default(2);
                conv_outputs.push(z);
            }
            h.flatten(1, -1)
        };
        let mut linear_inputs = Vec::with_capacity(self.linears.len());
        let mut linear_outputs = Vec::with_capacity(self.linears.len());
        let last = self.linears.len() - 1;
        for (i, linear) in self.linears.iter().enumerate() {
            let z = linear.forward(&a);
            linear_inputs.push(a);
            a = if i == last { z.shallow_clone() } else { z.relu() };
            linear_outputs.push(z);
        }
        Forward { logits: a, conv_inputs, conv_outputs, linear_inputs, linear_outputs }
    }
}

impl Network for Model {
    fn name(&self) -> String {
        self.arch.name().into()
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.arch).unwrap_or(serde_json::Value::Null)
    }

    fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward(x).logits)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        crate::checkpoint::load_into(&self.params, path)
    }

    fn check_data(&mut self, data: &Dataset) -> Result<()> {
        // The forward pass panics on a mismatch (tch's infallible layers): compare the sizes instead.
        let inputs = match self.arch {
            Architecture::Mlp { .. } => self.params[0].1.size()[1],
            Architecture::Lenet => 28 * 28,
        };
        let classes = self.params.last().map_or(0, |(_, bias)| bias.size()[0]);
        if data.feature_count() != inputs || data.classes > classes {
            return Err(RecorderError::InvalidArgument(format!(
                "the {} takes {inputs} features and scores {classes} classes; the dataset {} has {} features and {} classes",
                self.arch.name(),
                data.name,
                data.feature_count(),
                data.classes
            )));
        }
        Ok(())
    }

    fn builtin(&self) -> Option<&Model> {
        Some(self)
    }
}
