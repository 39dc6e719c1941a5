//! Encoder threads: `grads` row groups encoded and compressed into column
//! chunks in parallel, collected in the order they were submitted (so the
//! files are the same bytes whatever the number of threads).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};

use crate::error::{IngestError, Result};
use crate::schema::Table;

/// A row group encoded into column chunks, waiting to be appended to a file.
pub(super) struct Encoded {
    pub chunks: Vec<ArrowColumnChunk>,
    pub rows: usize,
    pub min_step: i64,
    pub max_step: i64,
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
pub(super) struct Encoders {
    factory: Arc<ArrowRowGroupWriterFactory>,
    /// One job channel and its thread per encoder (none: encode on the caller's thread).
    threads: Vec<(mpsc::SyncSender<RecordBatch>, mpsc::Receiver<EncodeResult>, JoinHandle<()>)>,
    /// Encoders holding a row group, oldest first.
    busy: VecDeque<usize>,
    /// Encoder of the next submission.
    next: usize,
}

impl Encoders {
    pub fn start(factory: ArrowRowGroupWriterFactory, threads: usize, run: &str) -> Result<Self> {
        let factory = Arc::new(factory);
        let mut this = Self { factory, threads: Vec::new(), busy: VecDeque::new(), next: 0 };
        for i in 0..threads {
            let (job_tx, job_rx) = mpsc::sync_channel::<RecordBatch>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<EncodeResult>(1);
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
    pub fn submit(&mut self, batch: RecordBatch) -> Result<Option<Encoded>> {
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
    pub fn next_done(&mut self) -> Result<Option<Encoded>> {
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
