//! The training loop that records: trains a model with SGD or Adam and writes
//! the gradients the schedule asks for into a lake.
//!
//! At each noise point the gradients are taken at the weights of that step,
//! before the optimizer moves them: the `full`-batch gradient, `draws` extra
//! minibatch gradients and their `noise` (draw − full, computed in f32 from the
//! recorded values, so it is exactly their difference in the lake), and the
//! per-example gradients of a fixed set of `samples` examples (`sample` =
//! their index in the dataset). Then the training step: the `minibatch`
//! gradient SGD uses (recorded every `minibatch_every` steps) and the scalars
//! `loss`, `accuracy`, `lr`, `grad_norm` and `grad_norm/<param>` (every step).

use std::path::{Path, PathBuf};

use gradlake_ingest::sampling;
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{Kind, LakeWriter, ParamSpec, RunInfo, WriteStats, WriterOptions};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use tch::nn::{self, OptimizerConfig};

use crate::checkpoint;
use crate::data::Dataset;
use crate::error::{RecorderError, Result};
use crate::gradients::{batch_gradient, batch_loss, full_gradient, per_sample_gradients, read_grads};
use crate::model::{Architecture, Model, Network};

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
    fn name(&self) -> &'static str {
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

    fn validate(&self, data: &Dataset) -> Result<()> {
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

/// Recomputes the noise-point gradients (full, draws and their noise,
/// per-sample) of an archived run at each checkpoint in `checkpoints`
/// (`step-<step>.safetensors` files, as `record` writes them), with the same
/// draws and examples as `record` would have used for `cfg.seed`.
///
/// `model` is the built-in [`Model`] of the run or a
/// [`crate::torchscript::TorchScriptModel`]; `runs.model` is its
/// [`Network::name`], and `cfg.model` is replaced by its description in
/// `runs.config`. Every checkpoint is checked against the model's params, and
/// the model against the dataset, before the lake is created.
pub fn replay(
    lake: &Path,
    data: &Dataset,
    model: &mut dyn Network,
    checkpoints: &Path,
    cfg: &RecordConfig,
    options: WriterOptions,
    progress: &mut dyn FnMut(i64),
) -> Result<WriteStats> {
    // Any number of digits (`step-7` as well as `record`'s `step-00000007`): files saved elsewhere count too.
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(checkpoints)
        .map_err(|e| RecorderError::InvalidArgument(format!("{}: {e}", checkpoints.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let digits = name.strip_prefix("step-")?.strip_suffix(".safetensors")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((digits.parse().ok()?, e.path()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(RecorderError::InvalidArgument(format!(
            "{}: no step-<N>.safetensors checkpoint",
            checkpoints.display()
        )));
    }
    if let Some(pair) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(RecorderError::InvalidArgument(format!(
            "two checkpoints of step {}: {} and {}",
            pair[0].0,
            pair[0].1.display(),
            pair[1].1.display()
        )));
    }
    let steps: Vec<i64> = files.iter().map(|(s, _)| *s).collect();
    let replay_cfg =
        RecordConfig { steps: steps[steps.len() - 1] as u64 + 1, noise_points: steps.clone(), ..cfg.clone() };
    replay_cfg.validate(data)?;
    // A bad checkpoint or a model that does not fit the data is found before the lake is made.
    let expected = checkpoint::shapes(model.params());
    for (_, path) in &files {
        checkpoint::check_tensors(path, &expected, &checkpoint::read_header(path)?)?;
    }
    model.check_data(data)?;
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.clone()).collect();
    let specs = model
        .params()
        .iter()
        .map(|(n, t)| ParamSpec::new(n.clone(), t.size().iter().map(|&d| d as usize).collect::<Vec<_>>()))
        .collect();
    let mut record = serde_json::to_value(cfg).map_err(|e| RecorderError::InvalidArgument(e.to_string()))?;
    record["model"] = model.describe();
    let info = RunInfo {
        run: cfg.run.clone(),
        model: model.name(),
        dataset: cfg.dataset.clone(),
        optimizer: "replay".into(),
        lr: cfg.lr,
        batch_size: cfg.batch_size,
        seed: cfg.seed as i64,
        start_time_us: RunInfo::now_us(),
        config: serde_json::json!({ "replay": { "checkpoints": checkpoints.display().to_string(), "steps": steps, "record": record } }),
    };
    let mut writer = LakeWriter::create(lake, &info, specs, options)?;
    let examples = sampling::sampled_examples(data.len() as usize, cfg.samples as usize, cfg.seed);
    let recorded = vec![true; names.len()];
    for (step, path) in files {
        model.load_checkpoint(&path)?;
        record_noise_point(&mut writer, &*model, data, &replay_cfg, step, &examples, &recorded, &names)?;
        progress(step);
    }
    Ok(writer.finish()?)
}

#[allow(clippy::too_many_arguments)]
fn record_noise_point(
    writer: &mut LakeWriter,
    model: &dyn Network,
    data: &Dataset,
    cfg: &RecordConfig,
    step: i64,
    examples: &[i64],
    recorded: &[bool],
    names: &[String],
) -> Result<()> {
    let full = full_gradient(model, data, cfg.full_batch_chunk)?;
    write_all(writer, step, Kind::Full, 0, names, recorded, full.clone())?;
    let draws =
        sampling::noise_point_draws(cfg.seed, step, data.len() as usize, cfg.batch_size as usize, cfg.draws as usize);
    for (draw, index) in draws.iter().enumerate() {
        let grads = batch_gradient(model, data, &Tensor::from_slice(index))?;
        let noise: Vec<Vec<f32>> =
            grads.iter().zip(&full).map(|(g, f)| g.iter().zip(f).map(|(a, b)| a - b).collect()).collect();
        write_all(writer, step, Kind::Draw, draw as i64, names, recorded, grads)?;
        write_all(writer, step, Kind::Noise, draw as i64, names, recorded, noise)?;
    }
    per_sample_gradients(model, data, examples, &mut |pos, param, values| {
        if recorded[param] {
            let key = GradKey { step, kind: Kind::Sample, sample: examples[pos], param: &names[param] };
            writer.write_grad_blocking(key, values)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_all(
    writer: &mut LakeWriter,
    step: i64,
    kind: Kind,
    sample: i64,
    names: &[String],
    recorded: &[bool],
    grads: Vec<Vec<f32>>,
) -> Result<()> {
    for ((name, g), &keep) in names.iter().zip(grads).zip(recorded) {
        if keep {
            writer.write_grad_blocking(GradKey { step, kind, sample, param: name }, g)?;
        }
    }
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
