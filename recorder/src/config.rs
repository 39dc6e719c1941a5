//! What `record` trains and records, and the checks of it against a dataset.

use crate::data::Dataset;
use crate::error::{RecorderError, Result};
use crate::model::Architecture;

/// The optimizer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Optimizer {
    /// SGD with momentum and (L2) weight decay.
    Sgd {
        /// Momentum (0: plain SGD).
        momentum: f64,
        /// Weight decay.
        weight_decay: f64,
    },
    /// Adam with (L2) weight decay.
    Adam {
        /// Weight decay.
        weight_decay: f64,
    },
}

impl Optimizer {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }
}

/// What to train and what to record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordConfig {
    /// Run id.
    pub run: String,
    /// The model.
    pub model: Architecture,
    /// Dataset name (recorded in `runs`).
    pub dataset: String,
    /// Optimizer steps.
    pub steps: u64,
    /// Minibatch size.
    pub batch_size: i64,
    /// Learning rate.
    pub lr: f64,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Seed of the initialisation, the batch order, the draws and the sampled examples.
    pub seed: u64,
    /// Record the minibatch gradient every this many steps (0: never).
    pub minibatch_every: u64,
    /// Steps at which full, draw, noise and sample gradients are recorded.
    pub noise_points: Vec<i64>,
    /// Extra minibatch draws (and their noise) at each noise point.
    pub draws: u64,
    /// Examples whose per-sample gradients are recorded at each noise point.
    pub samples: u64,
    /// Only params whose name matches this glob are recorded (`None`: all).
    pub params: Option<String>,
    /// Examples per forward pass when computing the full-batch gradient.
    pub full_batch_chunk: i64,
    /// Save the weights (safetensors) every this many steps (0: never), into `checkpoint_dir`.
    pub checkpoint_every: u64,
    /// Where checkpoints go: `step-<step>.safetensors`, the weights at which that step's gradients are taken.
    pub checkpoint_dir: Option<std::path::PathBuf>,
}

impl RecordConfig {
    /// Defaults that record every kind at the start, middle and end.
    pub fn new(run: impl Into<String>, model: Architecture, dataset: impl Into<String>, steps: u64) -> Self {
        let last = steps.saturating_sub(1) as i64;
        let mut noise_points = vec![0, last / 2, last];
        noise_points.dedup();
        Self {
            run: run.into(),
            model,
            dataset: dataset.into(),
            steps,
            batch_size: 64,
            lr: 0.05,
            optimizer: Optimizer::Sgd { momentum: 0.9, weight_decay: 0.0 },
            seed: 0,
            minibatch_every: 1,
            noise_points,
            draws: 16,
            samples: 64,
            params: None,
            full_batch_chunk: 1024,
            checkpoint_every: 0,
            checkpoint_dir: None,
        }
    }

    /// Checks the configuration against `data` (sizes, steps, noise points).
    pub(crate) fn validate(&self, data: &Dataset) -> Result<()> {
        let bad = |m: String| Err(RecorderError::InvalidArgument(m));
        if self.steps == 0 {
            return bad("--steps must be at least 1".into());
        }
        if self.batch_size < 1 || self.batch_size > data.len() {
            return bad(format!(
                "--batch-size must be in 1..={} (the dataset's size), got {}",
                data.len(),
                self.batch_size
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if self.samples as i64 > data.len() {
            return bad(format!("--samples {} is more than the dataset's {} examples", self.samples, data.len()));
        }
        if let Some(p) = self.noise_points.iter().find(|&&p| p < 0 || p as u64 >= self.steps) {
            return bad(format!("noise point {p} is outside the steps 0..{}", self.steps));
        }
        if self.full_batch_chunk < 1 {
            return bad("the full-batch chunk must be at least 1".into());
        }
        if self.checkpoint_every > 0 && self.checkpoint_dir.is_none() {
            return bad("--checkpoint-every needs --checkpoints DIR".into());
        }
        Ok(())
    }
}
