//! [`LakeWriter`]: streams whole gradient tensors of one run into a lake.
//!
//! The producer (a training loop) validates each tensor and hands it to a
//! background thread through a queue bounded in bytes; it waits only when the
//! queue is full. The background thread chunks, sorts, compresses and writes
//! row groups sized in bytes, rolls files by size (and by age, with a
//! [`PublishLag`]), and publishes each file atomically. Dropping the writer
//! without [`LakeWriter::finish`] still writes everything queued so far.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::error::{IngestError, Result};
use crate::grads_buffer::GradsBuffer;
use crate::layout;
use crate::meta::{ParamSpec, ParamTable, RunInfo};
use crate::parquet_file::{AtomicParquetFile, encoder_factory, write_whole_file, zstd};
use crate::publish_lag::PublishLag;
use crate::schema::{CHUNK_LEN, Kind, RUN_FINISHED_SCALAR, Table};

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

enum Msg {
    Grad { step: i64, kind: Kind, sample: i64, param_id: i32, data: Vec<f32>, _permit: OwnedSemaphorePermit },
    Scalar { step: i64, name: String, value: f64 },
    Flush(oneshot::Sender<Result<()>>),
}

/// Writes one run into a lake. See the module docs.
pub struct LakeWriter {
    lake: PathBuf,
    run: String,
    params: ParamTable,
    last_step: [Option<i64>; Kind::ALL.len()],
    budget: Arc<Semaphore>,
    budget_permits: u32,
    tx: Option<mpsc::UnboundedSender<Msg>>,
    worker: Option<JoinHandle<Result<WriteStats>>>,
    tensors: u64,
}

/// Queue budget is counted in KiB so that u32 permits cover any sane queue.
const PERMIT_BYTES: usize = 1024;

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
        let budget_permits = (options.queue_bytes / PERMIT_BYTES).clamp(1, u32::MAX as usize) as u32;
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker::new(lake, &info.run, options, compression, stats)?;
        let worker = std::thread::Builder::new()
            .name(format!("gradlake-writer-{}", info.run))
            .spawn(move || worker.run(rx))
            .map_err(|e| IngestError::io(lake, e))?;
        Ok(Self {
            lake: lake.to_path_buf(),
            run: info.run.clone(),
            params,
            last_step: [None; Kind::ALL.len()],
            budget: Arc::new(Semaphore::new(budget_permits as usize)),
            budget_permits,
            tx: Some(tx),
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

    /// Queues a whole flattened tensor, waiting while the queue is full.
    pub async fn write_grad(&mut self, key: GradKey<'_>, data: Vec<f32>) -> Result<()> {
        let (param_id, permits) = self.validate(&key, data.len())?;
        let permit = self.budget.clone().acquire_many_owned(permits).await.expect("never closed");
        self.send_grad(key, param_id, data, permit)
    }

    /// [`LakeWriter::write_grad`] for synchronous producers (not from inside an async task).
    pub fn write_grad_blocking(&mut self, key: GradKey<'_>, data: Vec<f32>) -> Result<()> {
        let (param_id, permits) = self.validate(&key, data.len())?;
        let budget = self.budget.clone();
        let permit = match budget.clone().try_acquire_many_owned(permits) {
            Ok(p) => p,
            // `unconstrained`: inside a tokio task the coop budget would otherwise defer
            // our wake-up to a scheduler tick that this blocked thread never gives it.
            Err(_) => futures_lite_block_on(tokio::task::unconstrained(budget.acquire_many_owned(permits)))
                .expect("never closed"),
        };
        self.send_grad(key, param_id, data, permit)
    }

    /// Queues one scalar (loss, accuracy, ...) of `step`.
    pub fn write_scalar(&mut self, step: i64, name: &str, value: f64) -> Result<()> {
        if step < 0 {
            return Err(IngestError::Negative { what: "step", value: step });
        }
        self.send(Msg::Scalar { step, name: name.to_string(), value })
    }

    /// Writes everything queued so far into complete, visible files (a
    /// follower such as `gradlake watch` sees them), then returns.
    pub async fn flush(&mut self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send(Msg::Flush(reply))?;
        match done.await {
            Ok(r) => r,
            Err(_) => Err(self.stopped_error()),
        }
    }

    /// [`LakeWriter::flush`] for synchronous producers.
    pub fn flush_blocking(&mut self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.send(Msg::Flush(reply))?;
        // Not `blocking_recv`: that panics when called from a tokio task (finish may be).
        match futures_lite_block_on(tokio::task::unconstrained(done)) {
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
        self.tx = None;
        let worker = self.worker.take().expect("finish is called once");
        let mut stats = join(worker)?;
        stats.tensors = self.tensors;
        Ok(stats)
    }

    fn validate(&mut self, key: &GradKey<'_>, len: usize) -> Result<(i32, u32)> {
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
        let bytes = len.div_ceil(CHUNK_LEN) * CHUNK_LEN * size_of::<f32>();
        let permits = (bytes / PERMIT_BYTES).clamp(1, self.budget_permits as usize) as u32;
        Ok((id as i32, permits))
    }

    fn send_grad(
        &mut self,
        key: GradKey<'_>,
        param_id: i32,
        data: Vec<f32>,
        permit: OwnedSemaphorePermit,
    ) -> Result<()> {
        self.tensors += 1;
        self.send(Msg::Grad { step: key.step, kind: key.kind, sample: key.sample, param_id, data, _permit: permit })
    }

    fn send(&mut self, msg: Msg) -> Result<()> {
        let tx = self.tx.as_ref().expect("not finished");
        if tx.send(msg).is_err() {
            return Err(self.stopped_error());
        }
        Ok(())
    }

    /// The worker only hangs up after an error: fetch it.
    fn stopped_error(&mut self) -> IngestError {
        self.tx = None;
        match self.worker.take().map(join) {
            Some(Err(e)) => IngestError::WriterStopped(e.to_string()),
            _ => IngestError::WriterStopped("the background writer exited".into()),
        }
    }
}

impl Drop for LakeWriter {
    fn drop(&mut self) {
        // Write what was queued rather than lose it; errors were the caller's to fetch via finish().
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = join(w);
        }
    }
}

fn join(worker: JoinHandle<Result<WriteStats>>) -> Result<WriteStats> {
    worker.join().unwrap_or_else(|_| Err(IngestError::WriterStopped("the background writer panicked".into())))
}

/// Waits on a future from synchronous code; the semaphore future needs no runtime.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// The background half: owns the open files.
struct Worker {
    grads_dir: PathBuf,
    scalars_dir: PathBuf,
    options: WriterOptions,
    compression: Compression,
    rows_per_group: usize,
    buffer: GradsBuffer,
    /// Highest step in the buffer (None: empty).
    buffer_max_step: Option<i64>,
    encoders: Encoders,
    file: Option<AtomicParquetFile>,
    next_grads_part: u64,
    next_scalars_part: u64,
    /// Highest step in the open grads file (None: no file open).
    file_max_step: Option<i64>,
    scalars: Vec<(i64, String, f64)>,
    stats: WriteStats,
    started: Instant,
    /// When the oldest data not yet in a published file arrived (None: all published).
    unpublished_since: Option<Instant>,
}

impl Worker {
    fn new(
        lake: &Path,
        run: &str,
        options: WriterOptions,
        compression: Compression,
        stats: WriteStats,
    ) -> Result<Self> {
        let rows_per_group = (options.row_group_bytes / (CHUNK_LEN * size_of::<f32>())).max(1);
        let encoders = Encoders::start(encoder_factory(Table::Grads, compression)?, options.encoder_threads, run)?;
        Ok(Self {
            grads_dir: layout::run_dir(lake, Table::Grads, run),
            scalars_dir: layout::run_dir(lake, Table::Scalars, run),
            options,
            compression,
            rows_per_group,
            buffer: GradsBuffer::default(),
            buffer_max_step: None,
            encoders,
            file: None,
            next_grads_part: 0,
            next_scalars_part: 0,
            file_max_step: None,
            scalars: Vec::new(),
            stats,
            started: Instant::now(),
            unpublished_since: None,
        })
    }

    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> Result<WriteStats> {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Grad { step, kind, sample, param_id, data, _permit } => {
                    // A row group never holds a step that goes back (files declare
                    // themselves sorted by step; see `append`).
                    if self.buffer_max_step.is_some_and(|max| step < max) {
                        self.write_row_group()?;
                    }
                    self.buffer_max_step = Some(self.buffer_max_step.map_or(step, |m| m.max(step)));
                    self.stats.non_finite += self.buffer.push_tensor(step, kind, sample, param_id, &data);
                    self.stats.values += data.len() as u64;
                    drop(data);
                    if self.buffer.rows() >= self.rows_per_group {
                        self.write_row_group()?;
                    }
                }
                Msg::Scalar { step, name, value } => {
                    self.scalars.push((step, name, value));
                    if self.scalars.len() >= self.options.scalar_rows_per_file {
                        self.write_scalars()?;
                    }
                }
                Msg::Flush(reply) => {
                    let result = self.flush_all();
                    let failed = result.as_ref().err().map(|e| e.to_string());
                    let _ = reply.send(result);
                    if let Some(e) = failed {
                        return Err(IngestError::WriterStopped(e));
                    }
                    continue;
                }
            }
            let since = *self.unpublished_since.get_or_insert_with(Instant::now);
            if let Some(lag) = self.options.publish_lag
                && since.elapsed() >= lag.at(self.started.elapsed())
            {
                self.flush_all()?;
            }
        }
        self.flush_all()?;
        Ok(self.stats)
    }

    /// Hands the buffered rows to the encoders as one row group; appends the
    /// oldest encoded one first if all encoders are busy.
    fn write_row_group(&mut self) -> Result<()> {
        self.buffer_max_step = None;
        if self.buffer.rows() == 0 {
            return Ok(());
        }
        let batch = self.buffer.take_sorted_batch();
        if let Some(done) = self.encoders.submit(batch)? {
            self.append(done)?;
        }
        Ok(())
    }

    /// Appends every row group handed to the encoders, in order.
    fn drain(&mut self) -> Result<()> {
        while let Some(done) = self.encoders.next_done()? {
            self.append(done)?;
        }
        Ok(())
    }

    /// Appends an encoded row group to the open file (opening one if needed),
    /// and rolls the file by size.
    fn append(&mut self, group: Encoded) -> Result<()> {
        // Files declare themselves sorted by step: never let a file go back.
        if self.file_max_step.is_some_and(|max| group.min_step < max) {
            self.close_grads_file()?;
        }
        if self.file.is_none() {
            let path = self.grads_dir.join(layout::part_name(self.next_grads_part));
            self.next_grads_part += 1;
            self.file = Some(AtomicParquetFile::create_for_encoded(path, Table::Grads, self.compression)?);
        }
        let file = self.file.as_mut().expect("opened above");
        file.append_row_group(group.chunks)?;
        self.stats.grad_rows += group.rows as u64;
        self.file_max_step = Some(self.file_max_step.map_or(group.max_step, |m| m.max(group.max_step)));
        if file.size_estimate() >= self.options.file_bytes {
            self.close_grads_file()?;
            // Scalars become visible with the gradients they describe.
            self.write_scalars()?;
        }
        Ok(())
    }

    fn close_grads_file(&mut self) -> Result<()> {
        self.file_max_step = None;
        if let Some(file) = self.file.take() {
            let (path, size) = file.finish()?;
            self.stats.files += 1;
            self.stats.bytes += size;
            if let Some(publisher) = &self.options.publish {
                publisher.publish(&path)?;
            }
        }
        Ok(())
    }

    fn write_scalars(&mut self) -> Result<()> {
        if self.scalars.is_empty() {
            return Ok(());
        }
        // Stable: a name logged twice at one step keeps its order.
        self.scalars.sort_by_key(|s| s.0);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(self.scalars.iter().map(|s| s.0))),
            Arc::new(StringArray::from_iter_values(self.scalars.iter().map(|s| s.1.as_str()))),
            Arc::new(Float64Array::from_iter_values(self.scalars.iter().map(|s| s.2))),
        ];
        let batch = RecordBatch::try_new(Table::Scalars.schema(), columns).expect("scalars schema");
        let path = self.scalars_dir.join(layout::part_name(self.next_scalars_part));
        self.next_scalars_part += 1;
        self.stats.bytes += write_whole_file(path.clone(), Table::Scalars, &batch)?;
        self.stats.files += 1;
        if let Some(publisher) = &self.options.publish {
            publisher.publish(&path)?;
        }
        self.stats.scalar_rows += self.scalars.len() as u64;
        self.scalars.clear();
        Ok(())
    }

    fn flush_all(&mut self) -> Result<()> {
        self.write_row_group()?;
        self.drain()?;
        self.close_grads_file()?;
        self.write_scalars()?;
        self.unpublished_since = None;
        Ok(())
    }
}

/// A row group encoded into column chunks, waiting to be appended to a file.
struct Encoded {
    chunks: Vec<ArrowColumnChunk>,
    rows: usize,
    min_step: i64,
    max_step: i64,
}

/// Encodes one sorted `grads` batch into the column chunks of a row group.
fn encode(factory: &ArrowRowGroupWriterFactory, batch: RecordBatch) -> parquet::errors::Result<Encoded> {
    let steps = batch.column(0).as_primitive::<Int64Type>();
    let (min_step, max_step) = (steps.value(0), steps.value(steps.len() - 1));
    let schema = Table::Grads.schema();
    let mut writers = factory.create_column_writers(0)?;
    let mut next = writers.iter_mut();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            next.next().expect("a writer per leaf column").write(&leaf)?;
        }
    }
    let chunks = writers.into_iter().map(|w| w.close()).collect::<parquet::errors::Result<_>>()?;
    Ok(Encoded { chunks, rows: batch.num_rows(), min_step, max_step })
}

type EncodeResult = parquet::errors::Result<Encoded>;

/// Encoder threads, each with at most one row group at a time; row groups are
/// handed out round-robin and collected in the order they were submitted.
struct Encoders {
    factory: Arc<ArrowRowGroupWriterFactory>,
    /// One job channel and its thread per encoder (none: encode on the caller's thread).
    threads: Vec<(std_mpsc::SyncSender<RecordBatch>, std_mpsc::Receiver<EncodeResult>, JoinHandle<()>)>,
    /// Encoders holding a row group, oldest first.
    busy: VecDeque<usize>,
    /// Encoder of the next submission.
    next: usize,
}

impl Encoders {
    fn start(factory: ArrowRowGroupWriterFactory, threads: usize, run: &str) -> Result<Self> {
        let factory = Arc::new(factory);
        let mut this = Self { factory, threads: Vec::new(), busy: VecDeque::new(), next: 0 };
        for i in 0..threads {
            let (job_tx, job_rx) = std_mpsc::sync_channel::<RecordBatch>(1);
            let (done_tx, done_rx) = std_mpsc::sync_channel::<EncodeResult>(1);
            let factory = this.factory.clone();
            let handle = std::thread::Builder::new()
                .name(format!("gradlake-encode-{i}-{run}"))
                .spawn(move || {
                    for batch in job_rx {
                        if done_tx.send(encode(&factory, batch)).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| IngestError::WriterStopped(format!("starting an encoder thread: {e}")))?;
            this.threads.push((job_tx, done_rx, handle));
        }
        Ok(this)
    }

    /// Starts encoding `batch`. If every encoder was busy, first waits for the
    /// oldest row group and returns it.
    fn submit(&mut self, batch: RecordBatch) -> Result<Option<Encoded>> {
        if self.threads.is_empty() {
            let done = encode(&self.factory, batch).map_err(encode_error)?;
            return Ok(Some(done));
        }
        let done = if self.busy.len() == self.threads.len() { self.next_done()? } else { None };
        let i = self.next;
        self.next = (self.next + 1) % self.threads.len();
        if self.threads[i].0.send(batch).is_err() {
            return Err(IngestError::WriterStopped("an encoder thread exited".into()));
        }
        self.busy.push_back(i);
        Ok(done)
    }

    /// The oldest row group still encoding, once done (None: nothing in flight).
    fn next_done(&mut self) -> Result<Option<Encoded>> {
        let Some(i) = self.busy.pop_front() else { return Ok(None) };
        match self.threads[i].1.recv() {
            Ok(r) => r.map(Some).map_err(encode_error),
            Err(_) => Err(IngestError::WriterStopped("an encoder thread panicked".into())),
        }
    }
}

impl Drop for Encoders {
    fn drop(&mut self) {
        for (job_tx, done_rx, handle) in std::mem::take(&mut self.threads) {
            drop(job_tx);
            drop(done_rx);
            let _ = handle.join();
        }
    }
}

fn encode_error(e: parquet::errors::ParquetError) -> IngestError {
    IngestError::WriterStopped(format!("encoding a grads row group: {e}"))
}
