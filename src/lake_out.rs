//! Where `synth`, `record` and `replay` write: a lake directory, or a lake URL in an
//! object store, written through a local staging directory whose finished files are
//! uploaded one by one (each appears whole) and removed.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gradlake_ingest::WriterOptions;
use gradlake_pipeline::store::{LakeLocation, run_exists, uploader};

/// The directory a writer writes into; a staging directory is removed when dropped.
pub struct OutputLake {
    dir: PathBuf,
    staging: bool,
}

impl OutputLake {
    /// Prepares `out` for run `run`: for a store, checks that the run is new there and
    /// makes `options` upload every finished file.
    pub fn prepare(out: &str, run: &str, options: &mut WriterOptions) -> anyhow::Result<Self> {
        let lake = match LakeLocation::parse(out).context("--out")? {
            LakeLocation::Local(dir) => return Ok(Self { dir, staging: false }),
            LakeLocation::Store(lake) => lake,
        };
        let exists = crate::runtime()?.block_on(run_exists(&lake, run))?;
        if exists {
            bail!("run {run:?} already exists in {out}; choose another --run");
        }
        let dir = std::env::temp_dir().join(format!("gradlake-staging-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("staging directory {}", dir.display()))?;
        options.publish = Some(uploader(&lake, &dir)?);
        Ok(Self { dir, staging: true })
    }

    /// The directory to hand to the writer.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for OutputLake {
    fn drop(&mut self) {
        if self.staging {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
