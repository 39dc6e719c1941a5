//! The training loop that records: trains a model with SGD or Adam and writes
//! the gradients the schedule asks for into a lake.
//!
//! At each noise point the gradients are taken at the weights of that step,
//! before the optimizer moves them (`noise_point.rs`). Then the training
//! step: the `minibatch` gradient SGD uses (recorded every `minibatch_every`
//! steps) and the scalars `loss`, `accuracy`, `lr`, `grad_norm` and
//! `grad_norm/<param>` (every step). The configuration is [`crate::config`]'s;
//! `replay` ([`crate::replay`]) recomputes a run's noise points from its checkpoints.

use std::path::Path;

use gradlake_ingest::{Kind, LakeWriter, ParamSpec, RunInfo, WriteStats, WriterOptions, sampling};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use tch::nn::{self, OptimizerConfig};

pub use crate::config::{Optimizer, RecordConfig};
use crate::data::Dataset;
use crate::error::{RecorderError, Result};
use crate::gradients::{batch_loss, read_grads};
use crate::model::Model;
use crate::noise_point::{record_noise_point, write_all};
pub use crate::replay::replay;

/// What one step did, for progress reports.
#[derive(Debug, Clone, Copy)]
pub struct StepReport {
    /// The step just done.
    pub step: u64,
    /// Its minibatch loss.
    pub loss: f64,
    /// Whether it was a noise point.
    pub noise_point: bool,
}

/// Trains `model` on `data` as `cfg` says and records into `lake`.
pub fn record(
    lake: &Path,
    data: &Dataset,
    model: &Model,
    cfg: &RecordConfig,
    options: WriterOptions,
    progress: &mut dyn FnMut(StepReport),
) -> Result<WriteStats> {
    cfg.validate(data)?;
    let pattern = match &cfg.params {
        Some(p) => {
            Some(glob::Pattern::new(p).map_err(|e| RecorderError::InvalidArgument(format!("--params '{p}': {e}")))?)
        }
        None => None,
    };
    let recorded: Vec<bool> =
        model.params().iter().map(|(name, _)| pattern.as_ref().is_none_or(|p| p.matches(name))).collect();
    if !recorded.iter().any(|&r| r) {
        let names: Vec<&str> = model.params().iter().map(|(n, _)| n.as_str()).collect();
        return Err(RecorderError::InvalidArgument(format!(
            "--params '{}' matches none of the model's params: {}",
            cfg.params.as_deref().unwrap_or("*"),
            names.join(", ")
        )));
    }
    let specs: Vec<ParamSpec> = model
        .params()
        .iter()
        .zip(&recorded)
        .filter(|(_, r)| **r)
        .map(|((name, t), _)| ParamSpec::new(name.clone(), t.size().iter().map(|&d| d as usize).collect::<Vec<_>>()))
        .collect();
    let info = RunInfo {
        run: cfg.run.clone(),
        model: cfg.model.name().into(),
        dataset: cfg.dataset.clone(),
        optimizer: cfg.optimizer.name().into(),
        lr: cfg.lr,
        batch_size: cfg.batch_size,
        seed: cfg.seed as i64,
        start_time_us: RunInfo::now_us(),
        config: serde_json::json!({ "record": cfg }),
    };
    let mut writer = LakeWriter::create(lake, &info, specs, options)?;
    let mut optimizer = match cfg.optimizer {
        Optimizer::Sgd { momentum, weight_decay } => {
            nn::Sgd { momentum, dampening: 0.0, wd: weight_decay, nesterov: false }.build(&model.vs, cfg.lr)?
        }
        Optimizer::Adam { weight_decay } => {
            nn::Adam { wd: weight_decay, ..Default::default() }.build(&model.vs, cfg.lr)?
        }
    };
    let mut batches = BatchOrder::new(data.len(), cfg.batch_size, cfg.seed);
    let examples = sampling::sampled_examples(data.len() as usize, cfg.samples as usize, cfg.seed);
    let mut noise_points = cfg.noise_points.clone();
    noise_points.sort_unstable();
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.clone()).collect();

    if let Some(dir) = &cfg.checkpoint_dir {
        std::fs::create_dir_all(dir)?;
    }
    for step in 0..cfg.steps as i64 {
        if let Some(dir) = &cfg.checkpoint_dir
            && cfg.checkpoint_every > 0
            && (step as u64).is_multiple_of(cfg.checkpoint_every)
        {
            save_checkpoint(model, dir, step)?;
        }
        let noise_point = noise_points.binary_search(&step).is_ok();
        if noise_point {
            record_noise_point(&mut writer, model, data, cfg, step, &examples, &recorded, &names)?;
        }
        let index = batches.next_batch();
        let (x, y) = data.select(&index);
        optimizer.zero_grad();
        let (loss, accuracy) = batch_loss(model, &x, &y);
        loss.backward();
        let loss = loss.double_value(&[]);
        // Norms in libtorch: copying every gradient out only pays when it is recorded.
        let mut total = 0.0;
        for (name, (_, p)) in names.iter().zip(model.params()) {
            let g = p.grad();
            let norm = if g.defined() { g.norm().double_value(&[]) } else { 0.0 };
            total += norm * norm;
            writer.write_scalar(step, &format!("grad_norm/{name}"), norm)?;
        }
        writer.write_scalar(step, "loss", loss)?;
        writer.write_scalar(step, "accuracy", accuracy)?;
        writer.write_scalar(step, "lr", cfg.lr)?;
        writer.write_scalar(step, "grad_norm", total.sqrt())?;
        if cfg.minibatch_every > 0 && (step as u64).is_multiple_of(cfg.minibatch_every) {
            write_all(&mut writer, step, Kind::Minibatch, 0, &names, &recorded, read_grads(model)?)?;
        }
        optimizer.step();
        progress(StepReport { step: step as u64, loss, noise_point });
    }
    Ok(writer.finish()?)
}

/// The checkpoint file of `step` in `dir`.
pub fn checkpoint_path(dir: &Path, step: i64) -> std::path::PathBuf {
    dir.join(format!("step-{step:08}.safetensors"))
}

/// Saves the weights atomically: written under a hidden name, then renamed.
fn save_checkpoint(model: &Model, dir: &Path, step: i64) -> Result<()> {
    let path = checkpoint_path(dir, step);
    let partial = dir.join(format!(".step-{step:08}.inprogress.safetensors"));
    model.vs.save(&partial)?;
    std::fs::rename(&partial, &path)?;
    Ok(())
}

/// Epochs of seeded permutations, cut into minibatches (an epoch's last
/// partial batch is completed from the next epoch).
struct BatchOrder {
    n: i64,
    batch: i64,
    order: Vec<i64>,
    at: usize,
    rng: ChaCha8Rng,
}

impl BatchOrder {
    fn new(n: i64, batch: i64, seed: u64) -> Self {
        Self { n, batch, order: Vec::new(), at: 0, rng: ChaCha8Rng::seed_from_u64(seed ^ 0xBA7C_0000) }
    }

    fn next_batch(&mut self) -> Tensor {
        let mut out = Vec::with_capacity(self.batch as usize);
        while out.len() < self.batch as usize {
            if self.at == self.order.len() {
                self.order = (0..self.n).collect();
                self.order.shuffle(&mut self.rng);
                self.at = 0;
            }
            out.push(self.order[self.at]);
            self.at += 1;
        }
        Tensor::from_slice(&out)
    }
}
