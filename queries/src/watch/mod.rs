//! Following a run while it is recorded (`gradlake watch`).
//!
//! A [`Watcher`] polls the run's directories for newly published files and
//! reads each exactly once, in the order the writer published them (part
//! numbers), folding its gradients into a [`WatchState`]. A file is read
//! through a lake *view*: a temporary directory whose `runs`, `params` and one
//! `grads` (or the new `scalars`) entries are symbolic links to the real
//! files, opened as a lake, so the same `grad_vectors` operator that serves
//! `gradlake analyze` reassembles its tensors, and old files are never read
//! again. Hidden `.inprogress` files are not published yet and are skipped.
//!
//! A lake in an object store is followed the same way: see [`source`].
//!
//! The run is finished when its `run_finished` scalar appears: the writer
//! logs it after its last gradient file is published.

mod source;
mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use futures::StreamExt;
use gradlake_ingest::RUN_FINISHED_SCALAR;
use gradlake_ingest::layout::run_dir;
use gradlake_ingest::schema::Table;
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, PipelineError, SessionOptions};
use source::{LocalFile, Source};

pub use state::{DimensionTest, Latest, MODEL, Rate, SpectrumRow, WatchOptions, WatchState};

/// Errors while watching.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Opening or querying a file failed.
    #[error("{path}: {source}")]
    Query {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store answered with an error.
    #[error("{url}: {source}")]
    Store {
        /// The object.
        url: String,
        /// What the store answered.
        source: object_store::Error,
    },
    /// A sketch could not take a tensor (e.g. a param changed length).
    #[error("{path}: {source}")]
    Spectrum {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: gradlake_stats::spectrum::SpectrumError,
    },
}

/// What one [`Watcher::poll`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollResult {
    /// Gradient files read in this poll.
    pub grads_files: usize,
    /// Scalar files read in this poll.
    pub scalars_files: usize,
    /// Gradient tensors folded in.
    pub tensors: u64,
}

/// Follows one run of a lake.
pub struct Watcher {
    source: Source,
    lake: PathBuf,
    run: String,
    state: Option<WatchState>,
    options: WatchOptions,
    seen_grads: BTreeSet<u64>,
    seen_scalars: BTreeSet<u64>,
    finished: bool,
    files: u64,
    bytes: u64,
    tensors: u64,
}

impl Watcher {
    /// A watcher of `run` in the directory `lake`; nothing is read until [`Watcher::poll`].
    pub fn new(lake: &Path, run: &str, options: WatchOptions) -> Self {
        Self::on(Source::Disk(lake.to_path_buf()), run, options)
    }

    /// A watcher of `run` in `lake`, a directory or a prefix in an object
    /// store (whose objects are copied to a temporary directory one at a time).
    pub fn open(lake: LakeLocation, run: &str, options: WatchOptions) -> Result<Self, WatchError> {
        Ok(Self::on(Source::new(lake)?, run, options))
    }

    fn on(source: Source, run: &str, options: WatchOptions) -> Self {
        Self {
            lake: source.name(),
            source,
            run: run.to_string(),
            state: None,
            options,
            seen_grads: BTreeSet::new(),
            seen_scalars: BTreeSet::new(),
            finished: false,
            files: 0,
            bytes: 0,
            tensors: 0,
        }
    }

    /// Reads every file published since the last poll. Before the run's
    /// `runs` and `params` files exist it reads nothing.
    pub async fn poll(&mut self) -> Result<PollResult, WatchError> {
        self.poll_with(&mut |_| {}).await
    }

    /// [`Watcher::poll`], calling `progress` with the watcher after every
    /// batch of tensors folded in, so a live view can move while a large
    /// file is read.
    pub async fn poll_with(&mut self, progress: &mut (dyn FnMut(&Watcher) + Send)) -> Result<PollResult, WatchError> {
        let mut result = PollResult::default();
        if self.finished {
            return Ok(result);
        }
        let Some((run_file, params_file)) = self.source.run_files(&self.run).await? else {
            return Ok(result);
        };
        if self.state.is_none() {
            let names = self.param_names(&run_file, &params_file).await?;
            self.state = Some(WatchState::new(self.options, names));
        }
        // Scalars first: the finish marker is logged after the last grads file
        // is published, so every grads file listed below is then complete.
        let mut finishing = false;
        let scalars = self.source.new_parts(Table::Scalars, &self.run, |p| self.seen_scalars.contains(&p)).await?;
        for (part, at) in scalars {
            let file = self.source.local(Table::Scalars, &self.run, at).await?;
            finishing |= self.read_scalars(&run_file, &params_file, &file).await?;
            self.seen_scalars.insert(part);
            result.scalars_files += 1;
        }
        let grads = self.source.new_parts(Table::Grads, &self.run, |p| self.seen_grads.contains(&p)).await?;
        for (part, at) in grads {
            let file = self.source.local(Table::Grads, &self.run, at).await?;
            result.tensors += self.read_grads(&run_file, &params_file, &file, progress).await?;
            self.seen_grads.insert(part);
            result.grads_files += 1;
        }
        if finishing {
            let state = self.state.as_mut().expect("made above");
            state.close().map_err(|source| WatchError::Spectrum { path: self.lake.clone(), source })?;
            self.finished = true;
        }
        Ok(result)
    }

    /// Whether the run's finish marker has been read (every file is then read too).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Closes the open groups without the finish marker (e.g. on Ctrl-C), so
    /// the last step's tests and the open sketches are reported too.
    pub fn close(&mut self) -> Result<(), WatchError> {
        match &mut self.state {
            Some(state) => state.close().map_err(|source| WatchError::Spectrum { path: self.lake.clone(), source }),
            None => Ok(()),
        }
    }

    /// The running state (None until the run's first files exist).
    pub fn state(&self) -> Option<&WatchState> {
        self.state.as_ref()
    }

    /// Files read so far and their bytes.
    pub fn files_read(&self) -> (u64, u64) {
        (self.files, self.bytes)
    }

    /// Gradient tensors folded in so far (also of a file still being read).
    pub fn tensors_read(&self) -> u64 {
        self.tensors
    }

    async fn param_names(&self, run_file: &Path, params_file: &Path) -> Result<Vec<String>, WatchError> {
        let view = View::new(&self.lake, &self.run, run_file, params_file, None)?;
        let batches = view.query(params_file, "SELECT param_id, param FROM params ORDER BY param_id").await?;
        let mut names = Vec::new();
        for b in &batches {
            let ids = b.column(0).as_primitive::<Int32Type>();
            let params = cast_utf8(b.column(1), params_file)?;
            for i in 0..b.num_rows() {
                let id = ids.value(i) as usize;
                if names.len() <= id {
                    names.resize(id + 1, String::new());
                }
                names[id] = params.as_string::<i32>().value(i).to_string();
            }
        }
        Ok(names)
    }

    /// Folds in a scalars file; true when it holds the run's finish marker.
    async fn read_scalars(
        &mut self,
        run_file: &Path,
        params_file: &Path,
        file: &LocalFile,
    ) -> Result<bool, WatchError> {
        let path = &file.path;
        let view = View::new(&self.lake, &self.run, run_file, params_file, Some((Table::Scalars, path)))?;
        let batches = view.query(path, "SELECT step, name, value FROM scalars").await?;
        let state = self.state.as_mut().expect("made before reading");
        let mut marker = false;
        for b in &batches {
            let steps = b.column(0).as_primitive::<Int64Type>();
            let names = cast_utf8(b.column(1), path)?;
            let names = names.as_string::<i32>();
            let values = b.column(2).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                marker |= names.value(i) == RUN_FINISHED_SCALAR;
                state.scalar(steps.value(i), names.value(i), values.value(i));
            }
        }
        self.note_file(path);
        Ok(marker)
    }

    async fn read_grads(
        &mut self,
        run_file: &Path,
        params_file: &Path,
        file: &LocalFile,
        progress: &mut (dyn FnMut(&Watcher) + Send),
    ) -> Result<u64, WatchError> {
        let path = &file.path;
        let view = View::new(&self.lake, &self.run, run_file, params_file, Some((Table::Grads, path)))?;
        let sql = "SELECT step, CAST(kind AS VARCHAR) AS kind, param_id, \"values\" FROM grad_vectors";
        let err =
            |e: Box<dyn std::error::Error + Send + Sync>| WatchError::Query { path: path.to_path_buf(), source: e };
        let session = view.session().await?;
        let df = session.context().sql(sql).await.map_err(|e| err(e.into()))?;
        let mut stream = df.execute_stream().await.map_err(|e| err(e.into()))?;
        let mut tensors = 0;
        while let Some(batch) = stream.next().await {
            let b = batch.map_err(|e| err(e.into()))?;
            let state = self.state.as_mut().expect("made before reading");
            let steps = b.column(0).as_primitive::<Int64Type>();
            let kinds = cast_utf8(b.column(1), path)?;
            let kinds = kinds.as_string::<i32>();
            let ids = b.column(2).as_primitive::<Int32Type>();
            let lists = b.column(3).as_list::<i32>();
            for i in 0..b.num_rows() {
                let values = lists.value(i);
                let values = values.as_primitive::<arrow::datatypes::Float32Type>();
                state
                    .tensor(kinds.value(i), steps.value(i), ids.value(i) as usize, values.values())
                    .map_err(|source| WatchError::Spectrum { path: path.to_path_buf(), source })?;
                tensors += 1;
            }
            self.tensors += b.num_rows() as u64;
            progress(self);
        }
        self.note_file(path);
        Ok(tensors)
    }

    fn note_file(&mut self, path: &Path) {
        self.files += 1;
        self.bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    }
}

fn cast_utf8(array: &arrow::array::ArrayRef, path: &Path) -> Result<arrow::array::ArrayRef, WatchError> {
    arrow::compute::cast(array, &DataType::Utf8)
        .map_err(|e| WatchError::Query { path: path.to_path_buf(), source: Box::new(e) })
}

/// A temporary lake of symbolic links: the run's `runs` and `params` files and
/// at most one more file, so a session over it reads nothing else.
struct View {
    dir: tempfile::TempDir,
}

impl View {
    fn new(
        lake: &Path,
        run: &str,
        run_file: &Path,
        params_file: &Path,
        extra: Option<(Table, &Path)>,
    ) -> Result<Self, WatchError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WatchError::Io { path, source }
        };
        let dir = tempfile::Builder::new().prefix("gradlake-watch-").tempdir().map_err(io(lake))?;
        let mut links = vec![(Table::Runs, run_file), (Table::Params, params_file)];
        links.extend(extra);
        for (table, target) in links {
            let target = std::path::absolute(target).map_err(io(target))?;
            let link_dir = run_dir(dir.path(), table, run);
            std::fs::create_dir_all(&link_dir).map_err(io(&link_dir))?;
            let name = target.file_name().expect("a file");
            #[cfg(unix)]
            std::os::unix::fs::symlink(&target, link_dir.join(name)).map_err(io(&target))?;
            #[cfg(not(unix))]
            std::fs::hard_link(&target, link_dir.join(name)).map_err(io(&target))?;
        }
        Ok(Self { dir })
    }

    async fn session(&self) -> Result<LakeSession, WatchError> {
        // One partition: tensors come out in file order, which closing groups relies on.
        let options = SessionOptions { target_partitions: Some(1), ..SessionOptions::default() };
        LakeSession::open(self.dir.path(), &options)
            .await
            .map_err(|e: PipelineError| WatchError::Query { path: self.dir.path().to_path_buf(), source: Box::new(e) })
    }

    async fn query(&self, path: &Path, sql: &str) -> Result<Vec<arrow::array::RecordBatch>, WatchError> {
        let err =
            |e: datafusion::error::DataFusionError| WatchError::Query { path: path.to_path_buf(), source: Box::new(e) };
        let session = self.session().await?;
        session.context().sql(sql).await.map_err(err)?.collect().await.map_err(err)
    }
}
