//! [`LakeWriter`]: streams whole gradient tensors of one run into a lake.
//!
//! The producer (a training loop) validates each tensor and hands it to a
//! background thread ([`worker`]) through a queue bounded in bytes
//! ([`queue`]: a mutex and two condition variables, so any thread may
//! produce, inside an async runtime or not); it waits only when the queue is
//! full. Row groups are encoded on their own threads ([`encoders`]). The background thread chunks, sorts, compresses and writes
//! row groups sized in bytes, rolls files by size (and by age, with a
//! [`PublishLag`]), and publishes each file atomically. Dropping the writer
//! without [`LakeWriter::finish`] still writes everything queued so far.

mod encoders;
mod queue;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use parquet::basic::Compression;

use crate::error::{IngestError, Result};
use crate::layout;
use crate::meta::{ParamSpec, ParamTable, RunInfo};
use crate::parquet_file::{write_whole_file, zstd};
use crate::publish_lag::PublishLag;
use crate::schema::{CHUNK_LEN, Kind, RUN_FINISHED_SCALAR, Table};
use queue::ByteQueue;
use worker::Worker;

/// Sizes and codec settings of a [`LakeWriter`]. Memory use is about
/// `queue_bytes + (2 + 2 × encoder_threads) × row_group_bytes` whatever the size of the run.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most tensor bytes waiting in the queue before the producer waits.
    pub queue_bytes: usize,
    /// Gradient payload per row group (uncompressed, padding included).
    pub row_group_bytes: usize,
    /// A `grads` file is closed once its encoded size passes this.
    pub file_bytes: usize,
    /// Scalars are written to a new part after this many rows (and whenever a grads file closes).
    pub scalar_rows_per_file: usize,
    /// ZSTD level of the gradient files (1 is fastest), with [`GradCompression::Zstd`].
    pub zstd_level: i32,
    /// Codec of the gradient files.
    pub compression: GradCompression,
    /// Threads that encode and compress row groups while the writer thread
    /// assembles the next ones and writes finished ones, in order (0: the writer
    /// thread encodes). The files are the same bytes whatever the number.
    pub encoder_threads: usize,
    /// Called with every file the writer finishes, once it is whole and in place.
    pub publish: Option<FilePublisher>,
    /// Also close and publish the open files once their oldest data is this
    /// old, so a follower sees the run progress (None: by size only).
    pub publish_lag: Option<PublishLag>,
}

/// A hook that receives every finished file of a [`LakeWriter`] (its final path),
/// on the thread that finished it, e.g. to copy it to an object store and remove
/// the local copy. Files come in the order that keeps the lake consistent
/// (`params` before `runs`, gradients before the scalars that describe them). An
/// error stops the writer as a failed write would.
#[derive(Clone)]
pub struct FilePublisher(pub Arc<PublishFn>);

/// What a [`FilePublisher`] calls with each finished file's path.
pub type PublishFn = dyn Fn(&Path) -> std::io::Result<()> + Send + Sync;

impl std::fmt::Debug for FilePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilePublisher")
    }
}

impl FilePublisher {
    fn publish(&self, path: &Path) -> Result<()> {
        (self.0)(path).map_err(|e| IngestError::io(path, e))
    }
}

/// Codec of the `grads` files (the small `runs`, `params` and `scalars` files are always ZSTD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GradCompression {
    /// ZSTD at [`WriterOptions::zstd_level`] (the default).
    #[default]
    Zstd,
    /// No compression: larger files (random-mantissa gradients compress to
    /// about 0.85 of their size with ZSTD), less CPU per value.
    Uncompressed,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            queue_bytes: 64 << 20,
            // Readers hold about a row group per partition (its column chunk, and
            // `grad_vectors` its tensors in flight): 4 MiB keeps that small and
            // pruning fine-grained; 32 MiB took twice the reader memory (measured).
            row_group_bytes: 4 << 20,
            file_bytes: 512 << 20,
            scalar_rows_per_file: 1 << 16,
            zstd_level: 1,
            compression: GradCompression::Zstd,
            encoder_threads: 2,
            publish: None,
            publish_lag: None,
        }
    }
}

/// What a writer wrote, returned by [`LakeWriter::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Gradient tensors accepted.
    pub tensors: u64,
    /// Chunk rows written to `grads`.
    pub grad_rows: u64,
    /// Gradient values written (padding excluded).
    pub values: u64,
    /// NaN or infinite gradient values among them (kept as they are).
    pub non_finite: u64,
    /// Rows written to `scalars`.
    pub scalar_rows: u64,
    /// Files published, runs and params included.
    pub files: u64,
    /// Bytes of all published files.
    pub bytes: u64,
}

/// Identifies a gradient tensor: which step, kind, sample and param.
#[derive(Debug, Clone, Copy)]
pub struct GradKey<'a> {
    /// Optimizer step.
    pub step: i64,
    /// What gradient this is.
    pub kind: Kind,
    /// Example index (`sample`), draw index (`draw`/`noise`), else 0.
    pub sample: i64,
    /// Param name, as declared to [`LakeWriter::create`].
    pub param: &'a str,
}

/// What the producer sends the background thread.
enum Msg {
    /// A tensor, counted as `bytes` against the queue until it is buffered.
    Grad {
        step: i64,
        kind: Kind,
        sample: i64,
        param_id: i32,
        data: Vec<f32>,
        bytes: usize,
    },
    Scalar {
        step: i64,
        name: String,
        value: f64,
    },
    Flush(mpsc::SyncSender<Result<()>>),
}

/// Writes one run into a lake. See the module docs.
pub struct LakeWriter {
    lake: PathBuf,
    run: String,
    params: ParamTable,
    last_step: [Option<i64>; Kind::ALL.len()],
    queue: Arc<ByteQueue<Msg>>,
    worker: Option<JoinHandle<Result<WriteStats>>>,
    tensors: u64,
}

impl LakeWriter {
    /// Starts run `info.run` in `lake`: writes its `runs` and `params` files
    /// and starts the background writer. Fails if the run already exists.
    pub fn create(lake: &Path, info: &RunInfo, params: Vec<ParamSpec>, options: WriterOptions) -> Result<Self> {
        layout::validate_run_id(&info.run)?;
        if options.row_group_bytes == 0 || options.file_bytes == 0 || options.queue_bytes == 0 {
            return Err(IngestError::InvalidArgument("writer sizes (queue, row group, file) must be positive".into()));
        }
        let compression = match options.compression {
            GradCompression::Zstd => zstd(options.zstd_level)?,
            GradCompression::Uncompressed => Compression::UNCOMPRESSED,
        };
        let params = ParamTable::new(params)?;
        for table in Table::ALL {
            if layout::run_dir(lake, table, &info.run).exists() {
                return Err(IngestError::RunExists { run: info.run.clone(), lake: lake.to_path_buf() });
            }
        }
        let mut stats = WriteStats::default();
        // params before runs: a reader that sees a run can always find its params.
        for (table, batch) in [(Table::Params, params.to_batch()), (Table::Runs, info.to_batch())] {
            let path = layout::single_file(lake, table, &info.run);
            stats.bytes += write_whole_file(path.clone(), table, &batch)?;
            stats.files += 1;
            if let Some(publisher) = &options.publish {
                publisher.publish(&path)?;
            }
        }
        let queue = Arc::new(ByteQueue::new(options.queue_bytes));
        let worker = Worker::new(lake, &info.run, options, compression, stats)?;
        let worker_queue = queue.clone();
        let worker = std::thread::Builder::new()
            .name(format!("gradlake-writer-{}", info.run))
            .spawn(move || {
                let result = worker.run(&worker_queue);
                // Whatever the outcome, a producer waiting for room must not wait forever.
                worker_queue.close_consumer();
                result
            })
            .map_err(|e| IngestError::io(lake, e))?;
        Ok(Self {
            lake: lake.to_path_buf(),
            run: info.run.clone(),
            params,
            last_step: [None; Kind::ALL.len()],
            queue,
            worker: Some(worker),
            tensors: 0,
        })
    }

    /// The lake directory.
    pub fn lake(&self) -> &Path {
        &self.lake
    }

    /// The run id.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Queues a whole flattened tensor, waiting while the queue is full. It
    /// blocks the calling thread, so an async caller should call it where
    /// blocking is allowed (`spawn_blocking`), though it works anywhere.
    pub fn write_grad_blocking(&mut self, key: GradKey<'_>, data: Vec<f32>) -> Result<()> {
        let (param_id, bytes) = self.validate(&key, data.len())?;
        self.tensors += 1;
        let msg = Msg::Grad { step: key.step, kind: key.kind, sample: key.sample, param_id, data, bytes };
        self.send(msg, bytes)
    }

    /// Queues one scalar (loss, accuracy, ...) of `step`.
    pub fn write_scalar(&mut self, step: i64, name: &str, value: f64) -> Result<()> {
        if step < 0 {
            return Err(IngestError::Negative { what: "step", value: step });
        }
        // Deferred: a scalar does not wake the background thread (see `queue`).
        let msg = Msg::Scalar { step, name: name.to_string(), value };
        self.queue.send_deferred(msg).map_err(|_| self.stopped_error())
    }

    /// Writes everything queued so far into complete, visible files (a
    /// follower such as `gradlake watch` sees them), then returns.
    pub fn flush_blocking(&mut self) -> Result<()> {
        let (reply, done) = mpsc::sync_channel(1);
        self.send(Msg::Flush(reply), 0)?;
        match done.recv() {
            Ok(r) => r,
            Err(_) => Err(self.stopped_error()),
        }
    }

    /// Writes everything queued, closes the last files and returns what was written.
    ///
    /// Its last scalar is [`RUN_FINISHED_SCALAR`] (value: the Unix time in
    /// seconds, step: the highest step written), logged after every gradient,
    /// so a follower that reads it knows the run is complete. A writer dropped
    /// without `finish` (a crash, an error) leaves no marker.
    pub fn finish(mut self) -> Result<WriteStats> {
        // Publish everything first, so the marker cannot reach a file before the last gradients do.
        self.flush_blocking()?;
        let last = self.last_step.iter().flatten().copied().max().unwrap_or(0);
        let now = RunInfo::now_us() as f64 / 1e6;
        self.write_scalar(last, RUN_FINISHED_SCALAR, now)?;
        self.queue.close_producer();
        let worker = self.worker.take().expect("finish is called once");
        let mut stats = join(worker)?;
        stats.tensors = self.tensors;
        Ok(stats)
    }

    /// The param id and the bytes the tensor counts against the queue (its
    /// chunks, padding included: what the buffer will hold).
    fn validate(&mut self, key: &GradKey<'_>, len: usize) -> Result<(i32, usize)> {
        let id = self.params.id_of(key.param).ok_or_else(|| IngestError::UnknownParam(key.param.to_string()))?;
        let spec = &self.params.specs[id];
        if spec.numel() != len {
            return Err(IngestError::ShapeMismatch {
                param: spec.name.clone(),
                shape: spec.shape.clone(),
                expected: spec.numel(),
                got: len,
            });
        }
        if key.step < 0 {
            return Err(IngestError::Negative { what: "step", value: key.step });
        }
        if key.sample < 0 {
            return Err(IngestError::Negative { what: "sample", value: key.sample });
        }
        let last = &mut self.last_step[key.kind.index()];
        if let Some(last) = *last
            && key.step < last
        {
            return Err(IngestError::StepBackwards { kind: key.kind, step: key.step, last });
        }
        *last = Some(key.step);
        Ok((id as i32, len.div_ceil(CHUNK_LEN) * CHUNK_LEN * size_of::<f32>()))
    }

    fn send(&mut self, msg: Msg, bytes: usize) -> Result<()> {
        self.queue.send(msg, bytes).map_err(|_| self.stopped_error())
    }

    /// The worker only hangs up after an error: fetch it.
    fn stopped_error(&mut self) -> IngestError {
        self.queue.close_producer();
        match self.worker.take().map(join) {
            Some(Err(e)) => IngestError::WriterStopped(e.to_string()),
            _ => IngestError::WriterStopped("the background writer exited".into()),
        }
    }
}

impl Drop for LakeWriter {
    fn drop(&mut self) {
        // Write what was queued rather than lose it; errors were the caller's to fetch via finish().
        self.queue.close_producer();
        if let Some(w) = self.worker.take() {
            let _ = join(w);
        }
    }
}

fn join(worker: JoinHandle<Result<WriteStats>>) -> Result<WriteStats> {
    worker.join().unwrap_or_else(|_| Err(IngestError::WriterStopped("the background writer panicked".into())))
}
