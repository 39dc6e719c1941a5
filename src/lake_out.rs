//! Where `synth`, `record`, `replay` and `import` write: `--out`, a lake directory or a
//! lake URL (see [`gradlake_pipeline::output`]).

use anyhow::Context;
use gradlake_ingest::WriterOptions;
use gradlake_pipeline::output::OutputLake;
use gradlake_pipeline::store::LakeLocation;

/// Prepares `--out` for run `run`; for a store, `options` then uploads every finished file.
pub fn prepare(out: &str, run: &str, options: &mut WriterOptions) -> anyhow::Result<OutputLake> {
    let lake = LakeLocation::parse(out).context("--out")?;
    Ok(OutputLake::prepare(&lake, run, options)?)
}
