//! `replay`: the noise-point gradients of an archived run, recomputed at its checkpoints.

use std::path::{Path, PathBuf};

use gradlake_ingest::{LakeWriter, ParamSpec, RunInfo, WriteStats, WriterOptions, sampling};

use crate::checkpoint;
use crate::config::RecordConfig;
use crate::data::Dataset;
use crate::error::{RecorderError, Result};
use crate::model::Network;
use crate::noise_point::record_noise_point;

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
