//! The gradients of one noise point, at the current weights: the `full`-batch
//! gradient, `draws` extra minibatch gradients and their `noise` (draw − full,
//! computed in f32 from the recorded values, so it is exactly their difference
//! in the lake), and the per-example gradients of the fixed `examples`. The
//! draws and examples come from [`gradlake_ingest::sampling`], shared with the
//! Python recorder. Used by `record` (at its noise points) and `replay` (at
//! each checkpoint).

use gradlake_ingest::sampling;
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{Kind, LakeWriter};
use tch::Tensor;

use crate::config::RecordConfig;
use crate::data::Dataset;
use crate::error::Result;
use crate::gradients::{batch_gradient, full_gradient, per_sample_gradients};
use crate::model::Network;

#[allow(clippy::too_many_arguments)]
/// Writes the noise-point gradients of `step` (only the params `recorded`).
pub(crate) fn record_noise_point(
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

/// Writes one gradient per param (those `recorded`) as `kind` at `step`.
pub(crate) fn write_all(
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
