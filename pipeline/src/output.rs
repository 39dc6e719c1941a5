//! Writing a run into a lake named by a path or a URL.
//!
//! [`gradlake_ingest::LakeWriter`] writes files on a local disk and knows
//! nothing of object stores. For a lake in a store, the writer writes into a
//! local staging directory and a [`crate::store::uploader`] publishes every
//! finished file to the store (one PUT, or a multipart upload completed only
//! when the file is whole) and removes its local copy, so the staging
//! directory holds at most the file being written. [`OutputLake`] sets that up
//! for code that creates its own writer; [`UrlLakeWriter`] is a whole writer.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

use gradlake_ingest::{LakeWriter, ParamSpec, RunInfo, WriteStats, WriterOptions};

use crate::error::{PipelineError, Result};
use crate::store::{LakeLocation, run_exists, uploader};

/// Where a writer writes for a lake: the lake's own directory, or a staging
/// directory whose finished files go to the store. The staging directory is
/// removed when this is dropped.
#[derive(Debug)]
pub struct OutputLake {
    dir: PathBuf,
    staging: bool,
}

impl OutputLake {
    /// Prepares `lake` for the new run `run`: for a store, checks that the run
    /// is not there yet and makes `options` upload every finished file. Blocks
    /// on the store (from a thread of its own, so it may be called inside an
    /// async runtime).
    pub fn prepare(lake: &LakeLocation, run: &str, options: &mut WriterOptions) -> Result<Self> {
        let store = match lake {
            LakeLocation::Local(dir) => return Ok(Self { dir: dir.clone(), staging: false }),
            LakeLocation::Store(store) => store,
        };
        let exists = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                        PipelineError::InvalidArgument(format!("{}: cannot start a runtime: {e}", store.url()))
                    })?;
                    runtime.block_on(run_exists(store, run))
                })
                .join()
                .map_err(|_| PipelineError::InvalidArgument(format!("{}: listing the lake failed", store.url())))?
        })?;
        if exists {
            return Err(PipelineError::InvalidArgument(format!(
                "run {run:?} already exists in {}; choose another run id",
                store.url()
            )));
        }
        let dir = std::env::temp_dir().join(format!("gradlake-staging-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| PipelineError::InvalidArgument(format!("staging directory {}: {e}", dir.display())))?;
        options.publish = Some(uploader(store, &dir)?);
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

/// A [`LakeWriter`] for a lake named by a path or a URL; everything else is
/// the wrapped writer's (through `Deref`). Every file it finishes is in the
/// lake whole, or not at all, as with a local lake.
pub struct UrlLakeWriter {
    // Dropped before `output`: the writer flushes (and uploads) what is queued
    // before the staging directory goes.
    writer: LakeWriter,
    output: OutputLake,
}

impl UrlLakeWriter {
    /// Starts run `info.run` in `lake`; fails if the run already exists there.
    pub fn create(
        lake: &LakeLocation,
        info: &RunInfo,
        params: Vec<ParamSpec>,
        mut options: WriterOptions,
    ) -> Result<Self> {
        let output = OutputLake::prepare(lake, &info.run, &mut options)?;
        let writer = LakeWriter::create(output.dir(), info, params, options)?;
        Ok(Self { writer, output })
    }

    /// Writes what is queued, closes the run and reports what was written (see
    /// [`LakeWriter::finish`]); the staging directory is removed.
    pub fn finish(self) -> Result<WriteStats> {
        let Self { writer, output } = self;
        let stats = writer.finish()?;
        drop(output);
        Ok(stats)
    }
}

impl Deref for UrlLakeWriter {
    type Target = LakeWriter;

    fn deref(&self) -> &LakeWriter {
        &self.writer
    }
}

impl DerefMut for UrlLakeWriter {
    fn deref_mut(&mut self) -> &mut LakeWriter {
        &mut self.writer
    }
}
