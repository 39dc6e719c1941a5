//! The writer's background thread: takes messages off the queue, buffers
//! chunk rows into row groups, hands them to the encoders, appends the
//! encoded ones to files, rolls files by size and age and publishes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::basic::Compression;

use super::encoders::{Encoded, Encoders};
use super::queue::ByteQueue;
use super::{Msg, WriteStats, WriterOptions};
use crate::error::{IngestError, Result};
use crate::grads_buffer::GradsBuffer;
use crate::layout;
use crate::parquet_file::{AtomicParquetFile, encoder_factory, write_whole_file};
use crate::schema::{CHUNK_LEN, Table};

/// The background half: owns the open files.
pub(super) struct Worker {
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
    pub fn new(
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

    /// Processes messages until the producer hangs up, then writes what is
    /// left. On an error the queued messages are dropped (a waiting flush sees
    /// its reply channel close) and the error is returned.
    pub fn run(mut self, queue: &ByteQueue<Msg>) -> Result<WriteStats> {
        while let Some(msg) = queue.recv() {
            match msg {
                Msg::Grad { step, kind, sample, param_id, data, bytes } => {
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
                    // Released once its row group (if full) is with the encoders: a producer
                    // faster than the encoders waits here rather than growing the buffers.
                    queue.release(bytes);
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
